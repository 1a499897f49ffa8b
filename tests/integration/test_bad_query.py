"""Query parameters and headers that look numeric but are not (a superscript digit passes
``str.isdigit`` and then fails ``int``) get a 400 naming the parameter, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, Harness, bearer

BAD_QUERIES = [
    ("/v1/models", "page_size", "¹"),
    ("/v1/models", "page_size", "٣"),
    ("/v1/models", "page_size", "-1"),
    ("/v1/models", "page_size", "1.5"),
    ("/v1/models", "page_size", " 5"),
    ("/v1/models", "page_size", "0x10"),
    ("/v1/usage", "from", "٢٠٢٥-01-31T12:00:00Z"),
    ("/v1/usage", "to", "2025-01-31T12:00:00²"),
    ("/v1/usage/reconciliation", "from", "2025-¹1-31T12:00:00Z"),
]


@pytest.mark.parametrize(("path", "name", "value"), BAD_QUERIES)
async def test_a_malformed_query_parameter_is_a_400_naming_it(harness: Harness, path: str,
                                                              name: str, value: str):
    params = {name: value, **({"model": "m"} if "reconciliation" in path else {})}
    async with harness.http.get(harness.http_url + path, params=params,
                                headers=bearer(ADMIN_KEY)) as resp:
        body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["type"] == "invalid_request"
    assert name in body["error"]["message"], body


BAD_HEADERS = [
    ("x-request-timeout-ms", "¹"),
    ("x-request-timeout-ms", "\u0661\u0660\u0660"),  # Arabic-Indic 100
    ("x-request-timeout-ms", "nan"),
    ("x-request-timeout-ms", "1e309"),
    ("grpc-timeout", "٣S"),
    ("grpc-timeout", "¹S"),
]


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
async def test_a_malformed_header_is_a_400_naming_it(harness: Harness, name: str, value: str):
    consumer = await harness.key("consumer")
    async with harness.http.post(f"{harness.http_url}/v1/generate", json={"input": "hi"},
                                 headers={**bearer(consumer), name: value}) as resp:
        body = await resp.json()
    assert resp.status == 400, body
    assert name in body["error"]["message"], body


async def test_a_well_formed_page_size_still_pages(harness: Harness):
    async with harness.http.get(f"{harness.http_url}/v1/models", params={"page_size": "2"},
                                headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 200
