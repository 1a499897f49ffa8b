"""schemathesis hooks for `make api-fuzz` (scripts/api_fuzz.py).

JSON Schema cannot state a rule that spans two fields or depends on what is stored, so the
few such rules the document states in words are taught to schemathesis here. Each drops a
"schema-valid request rejected" failure only when the 400 names that very rule; every other
failure stands.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
from collections import Counter
from typing import Any

import schemathesis

# (the start of "METHOD path", a pattern the 400's message starts with): rules the document
# states in words.
STATED_RULES = (
    # A period is [from, to): `to` must come after `from` (ProviderUsageReport, the queries).
    (None, "to: must be later than from"),
    # Routing depends on which models are registered and enabled at the time.
    ("POST /v1/generate", "no enabled model"),
    ("POST /openai/v1/", "no enabled model"),
    # The named model is of another type than the endpoint serves (a stored model's type).
    ("POST /openai/v1/", r"model: \S+ is an? \w+ model; this endpoint needs"),
    # The model's own provider refused the input or parameters (CONTRACT §3: 400/422 → 400).
    ("POST /v1/generate", "the provider rejected the request"),
    ("POST /openai/v1/", "the provider rejected the request"),
    # `verify: true` runs the conformance check first; a failing one registers nothing
    # (CONTRACT §2.6) — and a generated endpoint answers nothing.
    ("POST /v1/models", "verify: the conformance check failed"),
    # Money is a whole number of nano-dollars: JSON Schema cannot say "at most 9 decimals"
    # of binary floats (rules.Rule.decimals).
    (None, r"pricing\.per_request_usd: must be a number in \[0, 1000\] with at most 9 decimal"),
    # A PATCH is checked merged with the stored model: auth_type needs stored credentials.
    ("PATCH /v1/models/{name}", "credentials: an api_key is required"),
)


DROPPED: Counter[str] = Counter()


@atexit.register
def _report() -> None:
    for rule, count in DROPPED.most_common():
        print(f"dropped as a stated rule ({rule!r}): {count}", file=sys.stderr)


def _message(response: Any) -> str:
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message", "")) if isinstance(error, dict) else ""


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a 400 that a stated cross-field or stateful rule explains."""
    if failure.code != "ST202" or response.status_code != 400:
        return True
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    message = _message(response)
    for where, start in STATED_RULES:
        if (where is None or operation.startswith(where)) and re.match(start, message):
            DROPPED[start] += 1
            return False
    return True


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Never revoke or change the admin key the run itself calls with."""
    protected = os.environ.get("AI1NET_FUZZ_ADMIN_KEY_ID", "")
    return not protected or (case.path_parameters or {}).get("id") != protected
