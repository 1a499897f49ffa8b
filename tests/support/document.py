"""Every response a test receives is checked against GET /openapi.json (CONTRACT §2.5).

`checked_session()` is an aiohttp client whose middleware validates each answer from a
documented operation with openapi-core: its status is one the operation lists, its headers
and its JSON body match their schemas. A stream (NDJSON or SSE) is checked for its status
and headers as it starts, then line by line as the test reads it, each event against the
stream's item schema. Answers for paths the document does not have (an unknown path's 404)
are left alone.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import aiohttp
import orjson
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS31Validator
from yarl import URL

from ai1net.bridge.openapi import openapi_document, path_pattern

STREAMS = ("application/x-ndjson", "text/event-stream")


class DocumentMismatch(AssertionError):
    """A response the document does not describe."""


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(openapi_document())


@cache
def _stream_event_validator() -> OAS31Validator:
    document = openapi_document()
    schema = {"$ref": "#/components/schemas/StreamEvent", "components": document["components"]}
    return OAS31Validator(schema)


def check_response(method: str, url: URL, status: int, headers: dict[str, str],
                   content_type: str, body: bytes) -> None:
    """Raise DocumentMismatch unless the document describes this answer."""
    request = MockRequest(f"{url.scheme}://{url.authority}", method, url.path,
                          args=dict(url.query))
    # A text answer that is not JSON (the console's files) is a string to the document.
    data: bytes | str = body if "json" in content_type or not _textual(content_type) \
        else body.decode("utf-8", "replace")
    mock = MockResponse(data, status_code=status, headers=headers, content_type=content_type)
    try:
        _openapi().validate_response(request, mock)
    except (PathNotFound, OperationNotFound):
        return  # not a documented operation: an unknown path or method
    except Exception as exc:
        raise DocumentMismatch(f"{method} {url.path} → {status}: "
                               f"{exc!r} {getattr(exc, '__cause__', '')!r}\n{body[:500]!r}"
                               ) from exc


def check_stream_event(line: bytes) -> None:
    """One NDJSON line or SSE ``data:`` payload against the StreamEvent schema."""
    text = line.strip()
    if text.startswith(b"data:"):
        text = text[5:].strip()
    if not text or text.startswith((b":", b"event:", b"id:", b"retry:")):
        return
    event = orjson.loads(text)
    errors = sorted(_stream_event_validator().iter_errors(event), key=str)
    if errors:
        raise DocumentMismatch(f"stream event {event!r} is not a StreamEvent: {errors[0]}")


class _CheckedStream:
    """The response's content, each line checked as the test reads it."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def readline(self) -> bytes:
        line = await self._content.readline()
        check_stream_event(line)
        return line

    def __aiter__(self) -> _CheckedStream:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)


def _textual(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type in (
        "application/javascript", "image/svg+xml")


async def _check(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    response = await handler(request)
    headers = dict(response.headers.items())
    if response.content_type in STREAMS and response.status == 200:
        _check_opaque(request, response)
        response.content = _CheckedStream(response.content)  # type: ignore[assignment]
        return response
    if "Content-Type" not in response.headers:  # no body at all (204): aiohttp says
        check_response(request.method, request.url, response.status, headers, "",
                       await response.read())  # octet-stream, the document says nothing
        return response
    if not _textual(response.content_type) and "json" not in response.content_type \
            and response.content_type != "":  # audio bytes: the status, media and headers
        _check_opaque(request, response)
        return response
    body = await response.read()  # kept: the test reads the same bytes
    check_response(request.method, request.url, response.status, headers,
                   response.content_type, body)
    return response


def _check_opaque(request: ClientRequest, response: ClientResponse) -> None:
    """An answer whose body is not read as a value (a stream, audio): the operation documents this
    status with this media (or any of its type, `audio/*`), and a request id."""
    path = request.url.path
    paths = openapi_document()["paths"]
    item = paths.get(path) or next((item for template, item in paths.items()
                                    if path_pattern(template).fullmatch(path)), None)
    operation = (item or {}).get(request.method.lower())
    if operation is None:
        return
    documented = operation["responses"].get(str(response.status), {}).get("content", {})
    media = response.content_type
    if media not in documented and f"{media.partition('/')[0]}/*" not in documented:
        raise DocumentMismatch(f"{request.url.path}: {response.content_type} is not documented")
    if "x-request-id" not in response.headers:
        raise DocumentMismatch(f"{request.url.path}: an answer without x-request-id")


def checked_session(**options: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(middlewares=(_check,), **options)
