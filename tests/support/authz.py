"""Who may call what, as CONTRACT §1 says it — written here on its own, not read from the
server's table (server/auth.py METHOD_ROLES), so that a widened entry there fails a test.

``owned``: the method acts on a model, and a provider may only touch its own.
"""

from __future__ import annotations

from dataclasses import dataclass

ANY = frozenset({"admin", "provider", "consumer"})
PROVIDERS = frozenset({"admin", "provider"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Rule:
    method: str  # /package.Service/Method
    roles: frozenset[str]
    owned: bool = False

    @property
    def name(self) -> str:
        return self.method.rsplit("/", 1)[1]


CONTRACT_ROLES = [
    Rule("/ai1net.v1.GenerateService/Generate", ANY),
    Rule("/ai1net.v1.GenerateService/GenerateStream", ANY),
    Rule("/ai1net.v1.RegistryService/RegisterModel", PROVIDERS),
    Rule("/ai1net.v1.RegistryService/GetModel", ANY),
    Rule("/ai1net.v1.RegistryService/ListModels", ANY),
    Rule("/ai1net.v1.RegistryService/UpdateModel", PROVIDERS, owned=True),
    Rule("/ai1net.v1.RegistryService/DeleteModel", PROVIDERS, owned=True),
    Rule("/ai1net.v1.RegistryService/CheckModel", PROVIDERS, owned=True),
    Rule("/ai1net.v1.UsageService/GetUsage", ANY),
    Rule("/ai1net.v1.UsageService/ReportUsage", PROVIDERS, owned=True),
    Rule("/ai1net.v1.UsageService/GetReconciliation", PROVIDERS, owned=True),
    Rule("/ai1net.v1.UsageService/GetStatement", PROVIDERS),  # its own (admin: any)
    Rule("/ai1net.v1.UsageService/SubmitFeedback", ANY),  # of the caller's own generation
    Rule("/ai1net.v1.KeyService/CreateKey", ADMIN),
    Rule("/ai1net.v1.KeyService/ListKeys", ADMIN),
    Rule("/ai1net.v1.KeyService/UpdateKey", ADMIN),
    Rule("/ai1net.v1.KeyService/RevokeKey", ADMIN),
    Rule("/ai1net.v1.KeyService/GetCurrentKey", ANY),  # a key reads itself
    Rule("/ai1net.v1.AuditService/ListAuditEvents", ADMIN),
]
BY_METHOD = {rule.method: rule for rule in CONTRACT_ROLES}

# The callers of the table: a role, the owner of the model acted on, or a key that must not
# get in at all (absent, revoked, or sent with a scheme other than Bearer).
CALLERS = ("admin", "owner", "other-provider", "consumer", "no-key", "revoked", "basic")
UNAUTHENTICATED = frozenset({"no-key", "revoked", "basic"})


def allowed(rule: Rule, caller: str) -> bool | None:
    """True: served; False: 403; None: 401."""
    if caller in UNAUTHENTICATED:
        return None
    role = {"owner": "provider", "other-provider": "provider"}.get(caller, caller)
    if role not in rule.roles:
        return False
    return not (rule.owned and caller == "other-provider")
