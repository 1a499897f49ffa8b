"""The API's rules (server/rules.py): what the server accepts is exactly what the document
says, the registry checks every field it has, and the protos' comments agree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ai1net.server import rules
from ai1net.server.errors import InvalidArgument
from ai1net.server.registry import ModelChanges

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"MODEL": rules.MODEL, "KEY": rules.KEY, "GENERATE": rules.GENERATE,
          "USAGE": rules.USAGE}
EVERY_RULE = [pytest.param(rule, id=f"{table}:{path}") for table, entries in TABLES.items()
              for path, rule in entries.items()] + [
    pytest.param(rules.PAGE_SIZE, id="page_size"), pytest.param(rules.PAGE_CURSOR, id="cursor"),
    pytest.param(rules.REQUEST_TIMEOUT_MS, id="x-request-timeout-ms")]
# Values on and around every kind of bound.
PROBES: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, 1.0, 2, 2.5, 1000, 1000.5, 2**32 - 1, 2**32, 2**63 - 1,
    2**63, 600_000, 600_001, 1e9, 1e9 + 1, 3_600_000, 3_600_001, -0.0001, "", "x", "text",
    "video", "bearer", "none", "medium", "balanced", "admin", "day", "a" * 100, "a" * 101,
    "a" * 200, "a" * 201, "a" * 2000, "a" * 2001, "abcd", "abcde", "ab", "ab=", "-_-_",
    "http://127.0.0.1:9/v1", "https://api.example.com/v1/generate?x=1", "http://[::1]:8080/",
    "http://[00]", "http://a:99999", "ftp://a", "http://é/", "http://user:pw@h/p", "1bad!",
    "m-1", [], [""], ["a"], ["a" * 101], ["a"] * 64, ["a"] * 65, [1], {}, {"api_key": "k"},
    {"a": 1}, {str(i): "v" for i in range(17)}, {"k": "v" * 4097},
]


@pytest.mark.parametrize("rule", EVERY_RULE)
def test_the_server_accepts_exactly_what_the_document_says(rule: rules.Rule):
    validator = jsonschema.Draft202012Validator(rule.schema(),
                                                format_checker=jsonschema.FormatChecker())
    for value in PROBES:
        assert rule.accepts(value) == validator.is_valid(value) \
            or (value is None and rule.nullable), value


@pytest.mark.parametrize("rule", EVERY_RULE)
def test_a_refusal_names_the_field(rule: rules.Rule):
    refused = next(v for v in PROBES if v is not None and not rule.accepts(v))
    with pytest.raises(InvalidArgument) as caught:
        rule.check("some.field", refused)
    assert caught.value.field == "some.field"
    assert caught.value.message == f"some.field: {rule.explain()}"


def test_every_registration_field_has_a_rule():
    """A field added to ModelChanges without a rule would be neither checked nor
    documented: each must be a leaf of a path in rules.MODEL."""
    leaves = {rules.leaf(path) for path in rules.MODEL}
    assert {field.name for field in dataclasses.fields(ModelChanges)} == leaves


def test_explanations_state_the_bounds():
    assert rules.MODEL["timeout_ms"].explain() == "must be an integer in [1, 600000]"
    assert rules.MODEL["type"].explain() == "must be one of text, image, audio"
    assert rules.KEY["budget_usd"].explain() == "must be a number in [0, 1e+09]"
    assert rules.GENERATE["routing.max_latency_ms"].explain() == "must be a number ≥ 0"
    assert rules.REQUEST_TIMEOUT_MS.explain() == \
        "must be a number of milliseconds in (0, 3600000]"


def test_null_reads_as_absent_in_requests_but_not_in_answers():
    request = rules.nested(rules.KEY, required=("role",))
    answer = rules.nested(rules.KEY, responses=True)
    assert request["role"] == {"type": "string", "enum": list(rules.ROLES)}
    assert request["name"]["type"] == ["string", "null"]
    assert request["rate_limit"]["type"] == ["object", "null"]
    assert answer["rate_limit"]["type"] == "object"
    assert "credentials" not in rules.nested(rules.MODEL, responses=True)


@pytest.mark.parametrize(("credentials", "auth_type", "valid"), [
    ({"api_key": "k"}, "bearer", True), ({"token": "k"}, "api_key", True),
    ({"other": "k"}, "bearer", True), ({"a": "k", "b": "k"}, "bearer", False),
    ({"api_key": ""}, "bearer", False), ({}, "bearer", False), (None, "bearer", False),
    ({}, None, True), ({"other": ""}, None, False), ({"x": "k"}, None, True),
    ({}, "none", True), ({"a": "", "b": ""}, "none", True),
])
def test_the_credentials_rule_as_json_schema(credentials: Any, auth_type: Any, valid: bool):
    body = {name: value for name, value in (("credentials", credentials),
                                             ("auth_type", auth_type)) if value is not None}
    assert jsonschema.Draft202012Validator(rules.credentials_rule()).is_valid(body) == valid


# (proto file, message, field, the values its comment must quote, the default it names)
PROTO_COMMENTS = [
    ("registry.proto", "ModelSpec", "type", rules.MODEL_TYPES, None),
    ("registry.proto", "ModelSpec", "auth_type", rules.AUTH_TYPES, None),
    ("registry.proto", "ModelSpec", "cost_efficiency", rules.COST_EFFICIENCIES, None),
    ("registry.proto", "ModelSpec", "timeout_ms", (), rules.MODEL["timeout_ms"].default),
    ("registry.proto", "ModelSpec", "first_byte_timeout_ms", (),
     rules.MODEL["first_byte_timeout_ms"].default),
    ("registry.proto", "ModelStats", "health", rules.HEALTH, None),
    ("generate.proto", "Routing", "type", rules.MODEL_TYPES,
     rules.GENERATE["routing.type"].default),
    ("generate.proto", "Routing", "strategy", rules.STRATEGIES,
     rules.GENERATE["routing.strategy"].default),
    ("keys.proto", "Key", "role", rules.ROLES, None),
    ("usage.proto", "GetUsageRequest", "group_by", ("", *rules.GROUP_BY), None),
]


def field_comment(file: str, message: str, field: str) -> str:
    text = (ROOT / "protos" / "ai1net" / "v1" / file).read_text()
    body = re.search(rf"message {message} \{{(.*?)\n\}}", text, re.S)
    assert body, message
    found = re.search(rf"((?:\n\s*//[^\n]*)+)\n\s*[\w.<>, ]+ {field} = \d+;", body[1])
    assert found, f"{message}.{field} has no comment"
    return found[1]


@pytest.mark.parametrize(("file", "message", "field", "choices", "default"), PROTO_COMMENTS)
def test_proto_comments_agree_with_the_rules(file: str, message: str, field: str,
                                             choices: tuple[str, ...], default: Any):
    comment = field_comment(file, message, field)
    if choices:
        assert re.findall(r'"([^"]*)"', comment) == list(choices), comment
    if default is not None:
        assert re.search(rf'"?{default}"? \(default\)|\(default {default}\)', comment), comment


@pytest.mark.parametrize(("value", "valid"), [
    (0, True), (0.02, True), (3.3, True), (0.123456789, True), (1e-9, True), (999.999999999, True),
    (1e-10, False), (0.0123456789, False), (1.0000000001, False), (-0.01, False), (1000.5, False),
])
def test_a_flat_price_is_a_whole_number_of_nano_dollars(value: float, valid: bool):
    assert rules.MODEL["pricing.per_request_usd"].accepts(value) is valid


def test_the_fuzz_hooks_know_the_nano_dollar_rule_by_its_message():
    """tests/fuzz/hooks.py forgives a 400 the document states only in words: it must be
    the message the rule gives."""
    from tests.fuzz.hooks import STATED_RULES
    message = f"pricing.per_request_usd: {rules.MODEL['pricing.per_request_usd'].explain()}"
    assert any(re.match(start, message) for _, start in STATED_RULES)
