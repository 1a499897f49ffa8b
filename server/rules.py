"""The API's enums, bounds and defaults, written once.

The server validates with these rules (``Rule.check``) and ``/openapi.json`` is derived
from them (``Rule.schema``), so the document cannot drift from what the server accepts. A
new field is one line in its table: the registry checks it, the bridge reads it by its
JSON type, and the document describes it.

Tables are keyed by the field's JSON path (``pricing.input_per_1k_tokens``): the path is
also the name every error message starts with.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ai1net.server.errors import InvalidArgument

Kind = Literal["string", "integer", "number", "boolean", "strings", "object"]

MODEL_TYPES = ("text", "image", "audio")
AUTH_TYPES = ("bearer", "api_key", "none")
APIS = ("ai1net", "openai")  # the wire format a provider speaks (CONTRACT §3)
COST_EFFICIENCIES = ("low", "medium", "high")
STRATEGIES = ("balanced", "latency", "cost", "quality")
ROLES = ("admin", "provider", "consumer")
GROUP_BY = ("model", "key", "hour", "day")
HEALTH = ("healthy", "degraded", "ejected")
# Why a provider stopped, in OpenAI's words: what a finish_reason may say (others are dropped).
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls", "function_call")

UINT32_MAX = 2**32 - 1  # proto uint32 fields, and rate limits
INT64_MAX = 2**63 - 1  # counts over a period
# Far above any real price, and low enough that nano-dollar costs fit a BIGINT.
MAX_PRICE_PER_1K_USD = 1000.0
# A budget above this would overflow the BIGINT column of nano-dollars.
MAX_BUDGET_USD = 1e9
MAX_TIMEOUT_MS = 600_000
# The most a model may ask for of what one provider answer may hold (CONTRACT §3), and of
# calls in flight to it on one process; the defaults are the columns' (tables.py).
MAX_RESPONSE_BYTES = 256 << 20
MAX_EVENT_BYTES = 16 << 20
MIN_LIMIT_BYTES = 1024
MAX_CONCURRENCY = 10_000
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Rule:
    """One field: its JSON type and what the server accepts in it."""

    kind: Kind
    doc: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    above: float | None = None  # an exclusive minimum
    maximum: float | None = None
    min_length: int = 0
    max_length: int | None = None
    pattern: str | None = None
    max_items: int | None = None  # strings: entries; object: properties
    item_max_length: int | None = None  # strings and object: each entry's length
    item_min_length: int = 0
    # number: at most this many decimal places (money in whole nano-dollars). JSON Schema's
    # multipleOf cannot say it of binary floats (3.3 / 1e-9 is not whole), so the document
    # says it in words and the fuzz hooks know it (tests/fuzz/hooks.py).
    decimals: int | None = None
    default: Any = None
    nullable: bool = False
    write_only: bool = False  # accepted, never returned
    format: str | None = None
    # What the schema cannot say (a URL's reachability, an order between fields).
    message: str = ""
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False,
                                              compare=False)

    def __post_init__(self) -> None:
        if self.pattern:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))

    # -- the server's check -----------------------------------------------------------

    def check(self, name: str, value: object) -> None:
        """Raise InvalidArgument naming ``name`` unless ``value`` obeys the rule."""
        if value is None and self.nullable:
            return
        if not self.accepts(value):
            raise InvalidArgument(name, self.explain())

    def accepts(self, value: object) -> bool:
        return _ACCEPTS[self.kind](self, value) and (
            self.decimals is None or round(value, self.decimals) == value)  # type: ignore[call-overload]

    def explain(self) -> str:
        """What a valid value looks like, as error messages say it."""
        if self.message:
            return self.message
        if self.choices:
            return f"must be one of {', '.join(self.choices)}"
        what = {"string": "a string", "integer": "an integer", "number": "a number",
                "boolean": "true or false", "strings": "a list of strings",
                "object": "an object of strings"}[self.kind]
        return f"must be {what}{self._bounds()}"

    def _bounds(self) -> str:
        if self.kind in ("integer", "number"):
            low, high = self.minimum, self.maximum
            opening = "["
            if self.above is not None:
                low, opening = self.above, "("
            if low is not None and high is not None:
                return f" in {opening}{_num(low)}, {_num(high)}]"
            if low is not None:
                return f" ≥ {_num(low)}" if opening == "[" else f" > {_num(low)}"
            return ""
        if self.kind == "string" and self.max_length is not None:
            return f" of {self.min_length}-{self.max_length} characters"
        if self.kind in ("strings", "object") and self.max_items is not None:
            return (f" (at most {self.max_items}, each of {self.item_min_length}-"
                    f"{self.item_max_length} characters)")
        return ""

    # -- the document ----------------------------------------------------------------

    def schema(self) -> dict[str, Any]:
        """The JSON Schema (OpenAPI 3.1) of exactly the values ``check`` accepts."""
        out: dict[str, Any] = _SCHEMAS[self.kind](self)
        if self.nullable:
            out["type"] = [out["type"], "null"]
        if self.doc:
            out["description"] = self.doc
        if self.default is not None:
            out["default"] = self.default
        if self.write_only:
            out["writeOnly"] = True
        return out


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _string_ok(rule: Rule, value: object) -> bool:
    if not isinstance(value, str):
        return False
    if rule.choices:
        return value in rule.choices
    if len(value) < rule.min_length or (rule.max_length is not None
                                        and len(value) > rule.max_length):
        return False
    return rule._compiled is None or rule._compiled.fullmatch(value) is not None


def _in_range(rule: Rule, value: float) -> bool:
    return (rule.minimum is None or value >= rule.minimum) \
        and (rule.above is None or value > rule.above) \
        and (rule.maximum is None or value <= rule.maximum)


def _integer_ok(rule: Rule, value: object) -> bool:
    """JSON's integers: 5 and 5.0 alike (google.protobuf.Struct carries every number as a
    double)."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return whole and not isinstance(value, bool) and _in_range(rule, value)  # type: ignore[arg-type]


def _number_ok(rule: Rule, value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and _in_range(rule, value)


def _item_ok(rule: Rule, item: object) -> bool:
    return isinstance(item, str) and rule.item_min_length <= len(item) \
        and (rule.item_max_length is None or len(item) <= rule.item_max_length)


def _strings_ok(rule: Rule, value: object) -> bool:
    return isinstance(value, list | tuple) \
        and (rule.max_items is None or len(value) <= rule.max_items) \
        and all(_item_ok(rule, item) for item in value)


def _object_ok(rule: Rule, value: object) -> bool:
    return isinstance(value, Mapping) \
        and (rule.max_items is None or len(value) <= rule.max_items) \
        and all(_item_ok(rule, item) for item in value.values())


_ACCEPTS = {"string": _string_ok, "integer": _integer_ok, "number": _number_ok,
            "boolean": lambda _rule, value: isinstance(value, bool),
            "strings": _strings_ok, "object": _object_ok}


def _string_schema(rule: Rule) -> dict[str, Any]:
    if rule.choices:
        return {"type": "string", "enum": list(rule.choices)}
    out: dict[str, Any] = {"type": "string"}
    if rule.min_length:
        out["minLength"] = rule.min_length
    if rule.max_length is not None:
        out["maxLength"] = rule.max_length
    if rule.pattern:
        out["pattern"] = f"^{rule.pattern}$"
    if rule.format:
        out["format"] = rule.format
    return out


def _range_schema(kind: str) -> Any:
    def schema(rule: Rule) -> dict[str, Any]:
        out: dict[str, Any] = {"type": kind}
        if rule.minimum is not None:
            out["minimum"] = rule.minimum
        if rule.above is not None:
            out["exclusiveMinimum"] = rule.above
        if rule.maximum is not None:
            out["maximum"] = rule.maximum
        return out
    return schema


def _item_schema(rule: Rule) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"}
    if rule.item_min_length:
        item["minLength"] = rule.item_min_length
    if rule.item_max_length is not None:
        item["maxLength"] = rule.item_max_length
    return item


def _strings_schema(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": _item_schema(rule)}
    if rule.max_items is not None:
        out["maxItems"] = rule.max_items
    return out


def _object_schema(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": _item_schema(rule)}
    if rule.max_items is not None:
        out["maxProperties"] = rule.max_items
    return out


_SCHEMAS = {"string": _string_schema, "integer": _range_schema("integer"),
            "number": _range_schema("number"), "boolean": lambda _rule: {"type": "boolean"},
            "strings": _strings_schema, "object": _object_schema}


def one_of(choices: tuple[str, ...], doc: str = "", **extra: Any) -> Rule:
    return Rule("string", doc, choices=choices, **extra)


def _tags(doc: str = "") -> Rule:
    return Rule("strings", doc, max_items=64, item_min_length=1, item_max_length=100)


def _price(doc: str) -> Rule:
    return Rule("number", doc, minimum=0, maximum=MAX_PRICE_PER_1K_USD)


def _fee(doc: str) -> Rule:
    """A flat price in USD: a whole number of nano-dollars."""
    return Rule("number", f"{doc}; at most 9 decimal places (whole nano-dollars)", minimum=0,
                maximum=MAX_PRICE_PER_1K_USD, decimals=9,
                message=f"must be a number in [0, {_num(MAX_PRICE_PER_1K_USD)}] with at most "
                        "9 decimal places (a whole number of nano-dollars)")


def _timeout(doc: str, default: int) -> Rule:
    return Rule("integer", doc, minimum=1, maximum=MAX_TIMEOUT_MS, default=default)


# -- models (CONTRACT §2.2) ---------------------------------------------------------------

MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}"
# An absolute http(s) URL as RFC 3986 spells it, ASCII only (IDNs in their xn-- form).
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join((f"({_HEX}:){{7}}{_HEX}", f"({_HEX}:){{1,7}}:",
                  *(f"({_HEX}:){{1,{7 - n}}}(:{_HEX}){{1,{n}}}" for n in range(1, 7)),
                  f":((:{_HEX}){{1,7}}|:)"))
_HOST = rf"(\[({_IPV6})\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
ENDPOINT = rf"https?://([A-Za-z0-9._~%!$&'()*+,;=:-]*@)?{_HOST}(:{_PORT})?([/?#][!-~]*)?"
# Every registration field, by JSON path. `Model` answers show all but the write-only ones.
MODEL: dict[str, Rule] = {
    "name": Rule("string", pattern=MODEL_NAME, min_length=1, max_length=200,
                 message="must be 1-200 letters, digits or . _ : @ + -, "
                         "starting with a letter or digit"),
    "type": one_of(MODEL_TYPES),
    "endpoint": Rule("string", "Absolute http(s) URL the gateway POSTs to",
                     pattern=ENDPOINT, max_length=2048,
                     message="must be an absolute http(s) URL of at most 2048 characters"),
    "auth_type": one_of(AUTH_TYPES, "`api_key` is sent as `x-api-key`; default `bearer` "
                        "with credentials, `none` without"),
    "credentials": Rule("object", "Write-only: never returned, logged or traced",
                        max_items=16, item_max_length=4096, write_only=True),
    "pricing.input_per_1k_tokens": _price("USD per 1000 input tokens"),
    "pricing.output_per_1k_tokens": _price("USD per 1000 output tokens"),
    "pricing.per_request_usd": _fee("USD per successful call (an image, a clip), added to "
                                    "the token prices"),
    "capabilities": _tags("Every capability a routed call asks for must be here"),
    "performance.avg_latency_ms": Rule("number", minimum=0),
    "performance.accuracy_score": Rule("number", minimum=0, maximum=1),
    "cost_efficiency": one_of(COST_EFFICIENCIES, default="medium"),
    "specialties": _tags("Routing prefers models matching more of a call's specialties"),
    "timeout_ms": _timeout("Total time for one provider call", 60_000),
    "first_byte_timeout_ms": _timeout("Time until the provider's first byte", 30_000),
    "max_response_bytes": Rule("integer", "Most bytes one provider answer may hold, on the "
                               "wire and after decompression", minimum=MIN_LIMIT_BYTES,
                               maximum=MAX_RESPONSE_BYTES, default=16 << 20),
    "max_event_bytes": Rule("integer", "Most bytes one streamed line or event may hold",
                            minimum=MIN_LIMIT_BYTES, maximum=MAX_EVENT_BYTES, default=1 << 20),
    "max_concurrency": Rule("integer", "Most calls in flight to the model on one gateway "
                            "process; more fall back or are refused (503)", minimum=1,
                            maximum=MAX_CONCURRENCY, default=256),
    "api": one_of(APIS, "`openai`: `endpoint` is an OpenAI-compatible base URL (ending in "
                  "`/v1`) called at `{endpoint}/chat/completions`", default="ai1net"),
    "upstream_model": Rule("string", "With `api: openai`, the model name to ask for",
                           max_length=200),
    "health_url": Rule("string", "A URL the gateway GETs on a schedule with the model's auth "
                       "(AI1NET_HEALTH_PROBE_S): a 2xx keeps the model in traffic, anything "
                       "else takes it out until a probe passes; empty: none",
                       pattern=f"({ENDPOINT})?", max_length=2048,
                       message="must be an absolute http(s) URL of at most 2048 characters, "
                               "or empty"),
    "description": Rule("string", max_length=2000),
    "enabled": Rule("boolean", "Cleared to take the model out of traffic", default=True),
}

# An auth_type that sends a credential needs one: the first non-empty of these names, or
# the only entry. Without auth_type, credentials given mean `bearer`.
CREDENTIAL_NAMES = ("api_key", "token", "key", "secret")
AUTH_WITH_CREDENTIAL = ("bearer", "api_key")


def credentials_rule() -> dict[str, Any]:
    """The registration rule above as JSON Schema (``if``/``then`` over two fields)."""
    filled = {"type": "string", "minLength": 1}
    usable = {"type": "object", "anyOf": [
        *({"required": [name], "properties": {name: filled}} for name in CREDENTIAL_NAMES),
        {"minProperties": 1, "maxProperties": 1, "additionalProperties": filled}]}
    sends = {"anyOf": [
        {"required": ["auth_type"], "properties": {"auth_type": {"enum": list(
            AUTH_WITH_CREDENTIAL)}}},
        {"required": ["credentials"],  # auth_type absent (or null): credentials mean bearer
         "properties": {"auth_type": {"type": "null"},
                        "credentials": {"type": "object", "minProperties": 1}}}]}
    return {"if": sends, "then": {"required": ["credentials"],
                                  "properties": {"credentials": usable}}}


# -- keys (CONTRACT §2.4) -------------------------------------------------------------------

PER_MINUTE = Rule("integer", "0 means unlimited", minimum=0, maximum=UINT32_MAX)
KEY: dict[str, Rule] = {
    "role": one_of(ROLES),
    "name": Rule("string", max_length=200),
    "rate_limit.requests_per_minute": PER_MINUTE,
    "rate_limit.tokens_per_minute": PER_MINUTE,
    "budget_usd": Rule("number", "USD; null means no budget", minimum=0,
                       maximum=MAX_BUDGET_USD, nullable=True),
}

# -- generate (CONTRACT §2.1) -------------------------------------------------------------

MAX_INPUT_CHARS = 1_000_000
GENERATE: dict[str, Rule] = {
    "model": Rule("string", "Registered model name; absent or empty means route by "
                  "`routing`"),
    "input": Rule("string", min_length=1, max_length=MAX_INPUT_CHARS),
    "stream": Rule("boolean", "Answer as NDJSON (or SSE with `Accept: text/event-stream`)",
                   default=False),
    "fallbacks": Rule("strings", "Models to try, in order, when `model` fails retryably"),
    "routing.type": one_of(MODEL_TYPES, default="text"),
    "routing.capabilities": Rule("strings", "Every one must be offered by the model"),
    "routing.specialties": Rule("strings", "Preferred: models matching more of them rank "
                                "higher"),
    "routing.strategy": one_of(STRATEGIES, default="balanced"),
    "routing.max_latency_ms": Rule("number", minimum=0),
    "routing.max_price_per_1k_tokens": Rule("number", minimum=0),
    "routing.hedge_ms": Rule("integer", "Unary only: after this long without an answer, "
                             "also ask the next candidate and take the first answer",
                             minimum=0, maximum=UINT32_MAX),
    "parameters.max_tokens": Rule("integer", minimum=1, message="must be a positive integer"),
    "parameters.temperature": Rule("number", minimum=0, maximum=2),
    "parameters.size": Rule("string"),
    "parameters.voice": Rule("string"),
    "parameters.format": Rule("string"),
}

# -- usage (CONTRACT §2.3) ------------------------------------------------------------------

COUNT = Rule("integer", minimum=0, maximum=INT64_MAX)
USAGE: dict[str, Rule] = {
    "model": Rule("string", min_length=1),
    "group_by": one_of(GROUP_BY),
    "usage.requests": COUNT,
    "usage.tokens_processed": COUNT,
}

STATEMENT: dict[str, Rule] = {
    "month": Rule("string", "A calendar month (UTC), 1970-01 or later",
                  pattern=r"(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])",
                  message="must be a month as YYYY-MM, 1970-01 or later, like 2026-11"),
    "provider": Rule("string", "Key id of the provider (admin; a provider: its own)",
                     max_length=40),
}

# -- feedback (CONTRACT §2.6) --------------------------------------------------------------

MAX_COMMENT_CHARS = 1000
FEEDBACK: dict[str, Rule] = {
    "generation_id": Rule("string", "The `id` of a generate answer of the caller's",
                          min_length=1, max_length=40),
    "score": Rule("number", "0 (useless) to 1 (perfect)", minimum=0, maximum=1),
    "comment": Rule("string", max_length=MAX_COMMENT_CHARS),
}

# -- the audit trail (CONTRACT §2.6) -------------------------------------------------------

AUDIT_ACTIONS = ("key.create", "key.update", "key.revoke", "model.register", "model.update",
                 "model.delete", "usage.report")
AUDIT: dict[str, Rule] = {
    "action": one_of(AUDIT_ACTIONS),
    "actor": Rule("string", "Key id of who made the change (`system`: start-up; `cli`: the "
                  "command line writing to the database)", max_length=40),
}

# -- listing and headers ------------------------------------------------------------------

PAGE_SIZE = Rule("integer", f"0 means {DEFAULT_PAGE_SIZE}", minimum=0, maximum=MAX_PAGE_SIZE)
# Page tokens are base64url without padding; any such token is a position in the list.
PAGE_CURSOR = Rule("string", "The `next_page_token` of the previous page",
                   pattern=r"([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?",
                   message="is not a token this server issued")


def encode_cursor(position: str) -> str:
    """A page token: where the next page starts, base64url without padding."""
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The position a token names; any well-formed token is a position, issued or not."""
    PAGE_CURSOR.check("page_token", token)
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode(errors="replace")


MAX_REQUEST_TIMEOUT_MS = 3_600_000
REQUEST_TIMEOUT_MS = Rule("number", "Deadline in milliseconds", above=0,
                          maximum=MAX_REQUEST_TIMEOUT_MS,
                          message=f"must be a number of milliseconds in (0, "
                                  f"{MAX_REQUEST_TIMEOUT_MS}]")


def leaf(path: str) -> str:
    """The last part of a JSON path: ``pricing.input_per_1k_tokens`` → ``input_per_1k_tokens``."""
    return path.rpartition(".")[2]


def nested(rules: Mapping[str, Rule], *, responses: bool = False,
           required: tuple[str, ...] = ()) -> dict[str, Any]:
    """JSON Schema ``properties`` for a table: dotted paths become nested objects.

    In requests, ``null`` reads as "absent" (the bridge drops it), so every field but the
    ``required`` ones also takes null. ``responses`` leaves out write-only fields and
    defaults."""
    out: dict[str, Any] = {}
    for path, rule in rules.items():
        if responses and rule.write_only:
            continue
        schema = rule.schema()
        if responses:
            schema.pop("default", None)
        elif path not in required:
            _or_null(schema)
        group, _, name = path.rpartition(".")
        if group:
            holder = out.setdefault(group, {"type": "object" if responses else ["object", "null"],
                                            "properties": {}})
            holder["properties"][name] = schema
        else:
            out[path] = schema
    return out


def _or_null(schema: dict[str, Any]) -> None:
    kind = schema["type"]
    if "null" not in kind:
        schema["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
