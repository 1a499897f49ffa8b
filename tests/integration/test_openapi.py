"""GET /openapi.json: a valid OpenAPI 3.1 document that covers every route the bridge serves."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from yarl import URL

from ai1net.bridge.app import build_app
from ai1net.bridge.errors import ERROR_TYPES
from ai1net.bridge.openapi import openapi_document
from tests.conftest import Harness
from tests.support.document import DocumentMismatch, check_response, check_stream_event

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/console", "/console/{path}"}


def served_routes() -> set[tuple[str, str]]:
    """(path, method) of every route on the bridge, less the HEAD aiohttp adds to each GET."""
    app = build_app(target="127.0.0.1:1")
    return {(route.resource.canonical, route.method.lower())
            for route in app.router.routes()
            if route.resource is not None and route.method != "HEAD"}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): operation for path, item in document["paths"].items()
            for method, operation in item.items()}


async def test_served_without_a_key_and_valid(harness: Harness):
    async with harness.http.get(f"{harness.http_url}/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        document = await resp.json()
    assert document["openapi"].startswith("3.")
    validate(document)
    assert document == openapi_document()


def test_every_route_is_documented_and_nothing_else():
    assert set(operations(openapi_document())) == served_routes()


def test_security_either_header_and_public_operations():
    document = openapi_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                     "description": "`Authorization: Bearer <key>`"}
    assert schemes["apiKeyAuth"]["name"] == "x-api-key"
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    for (path, _method), operation in operations(document).items():
        assert (operation.get("security") == []) == (path in PUBLIC), path


def test_errors_share_one_envelope():
    document = openapi_document()
    detail = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert detail["properties"]["type"]["enum"] == list(ERROR_TYPES.values())
    responses = document["components"]["responses"]
    assert "Retry-After" in responses["RateLimitExceeded"]["headers"]
    for (path, _method), operation in operations(document).items():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["$ref"].startswith("#/components/responses/"), (path, status)


def test_generate_streams_and_credentials_are_write_only():
    document = openapi_document()
    ok = document["paths"]["/v1/generate"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "application/x-ndjson",
                                  "text/event-stream"}
    assert "402" in document["paths"]["/v1/generate"]["post"]["responses"]
    assert "409" in document["paths"]["/v1/models"]["post"]["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["ModelSpec"]["properties"]["credentials"]["writeOnly"] is True
    assert "credentials" not in schemas["Model"]["properties"]
    assert "key" not in schemas["Key"]["properties"]


def test_the_response_check_refuses_what_the_document_does_not_say():
    """The middleware every integration test's client runs (tests/support/document.py)."""
    request = ("GET", URL("http://127.0.0.1:1/v1/models/x"))
    envelope = b'{"error": {"message": "x", "code": 404, "type": "not_found", "request_id": "r"}}'
    check_response(*request, 404, {"x-request-id": "r"}, "application/json", envelope)
    with pytest.raises(DocumentMismatch):  # no such status for this operation
        check_response(*request, 402, {"x-request-id": "r"}, "application/json", envelope)
    with pytest.raises(DocumentMismatch):  # the envelope without its type
        check_response(*request, 404, {"x-request-id": "r"}, "application/json",
                       b'{"error": {"message": "x", "code": 404, "request_id": "r"}}')
    with pytest.raises(DocumentMismatch):  # every answer carries x-request-id
        check_response(*request, 404, {}, "application/json", envelope)
    check_stream_event(b'{"delta": "x"}\n')
    with pytest.raises(DocumentMismatch):
        check_stream_event(b'data: {"delta": 5}\n')
