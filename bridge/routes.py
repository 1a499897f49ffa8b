"""The /v1 handlers: parse JSON, call the server over gRPC, answer JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from ai1net.bridge import translate
from ai1net.bridge.backend import BACKEND, Backend, call_metadata, call_timeout
from ai1net.bridge.errors import HttpError, invalid
from ai1net.bridge.streaming import native_framing, relay
from ai1net.server import rules
from ai1net.server.rules import Rule
from ai1net.v1 import audit_pb2, generate_pb2, keys_pb2, registry_pb2, usage_pb2

JSON_TYPES = ("application/json",)
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
# gRPC metadata the bridge passes on as HTTP response headers.
FORWARDED_HEADERS = ("x-ai1net-", "x-ratelimit-")


def json_response(data: Any, *, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: 415 if it says it is not JSON, 400 if it is not valid."""
    media = request.content_type
    if request.headers.get("Content-Type") and media not in JSON_TYPES \
            and not media.endswith("+json"):
        raise HttpError(415, f"Content-Type must be application/json, not {media!r}")
    body = await request.read()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise HttpError(400, "body must be a JSON object")
    return document


def query_integer(query: Mapping[str, str], name: str, rule: Rule) -> int:
    """An integer query parameter (0 when absent), checked by the server's rule."""
    raw = query.get(name, "0")
    # ASCII digits only: int() would also take "¹²", "٣" or " 5 ".
    value = int(raw) if raw.isascii() and raw.isdigit() else -1
    if not rule.accepts(value):
        raise invalid(name, rule.explain())
    return value


def query_choice(query: Mapping[str, str], name: str, rule: Rule) -> str:
    """A query parameter with a fixed set of values ("" when absent)."""
    if name not in query:
        return ""
    if not rule.accepts(query[name]):
        raise invalid(name, rule.explain())
    return query[name]


def query_boolean(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "false")
    if raw not in BOOLEANS:
        raise invalid(name, "must be true or false")
    return BOOLEANS[raw]


def _backend(request: web.Request) -> Backend:
    return request.app[BACKEND]


# -- generate ------------------------------------------------------------------------------


async def generate(request: web.Request) -> web.StreamResponse:
    message, stream = translate.generate_request(await read_json(request))
    if stream:
        return await relay(request, open_stream(request, message), native_framing(request))
    response, headers = await call_generate(request, message)
    return json_response(translate.generate_json(response), headers=headers)


async def call_generate(request: web.Request, message: generate_pb2.GenerateRequest,
                        ) -> tuple[generate_pb2.GenerateResponse, dict[str, str]]:
    """One unary Generate with the caller's key and deadline; the headers to pass on."""
    call = _backend(request).generate.Generate(message, metadata=call_metadata(request),
                                               timeout=call_timeout(request))
    try:
        response = await call
    except asyncio.CancelledError:
        call.cancel()  # the client went away: stop the provider call too
        raise
    headers = {k: v for k, v in (await call.trailing_metadata() or ())
               if k.startswith(FORWARDED_HEADERS) and isinstance(v, str)}
    return response, headers


def open_stream(request: web.Request, message: generate_pb2.GenerateRequest) -> Any:
    """A GenerateStream call with the caller's key and deadline, for ``relay``."""
    return _backend(request).generate.GenerateStream(
        message, metadata=call_metadata(request), timeout=call_timeout(request))


# -- models --------------------------------------------------------------------------------


async def register_model(request: web.Request) -> web.Response:
    spec, _paths = translate.model_spec(await read_json(request))
    model = await _backend(request).registry.RegisterModel(
        registry_pb2.RegisterModelRequest(model=spec), metadata=call_metadata(request))
    return json_response(translate.model_json(model), status=201)


def _whole(query: Mapping[str, str], name: str) -> int:
    """A query parameter that must be a whole number written in ASCII digits (``str.isdigit``
    alone takes "¹", which ``int`` then refuses); 0 when absent."""
    raw = query.get(name, "0")
    if not (raw.isascii() and raw.isdigit()):
        raise invalid(name, "must be a non-negative integer")
    return int(raw)


async def list_models(request: web.Request) -> web.Response:
    query = request.query
    response = await _backend(request).registry.ListModels(
        registry_pb2.ListModelsRequest(
            type=query_choice(query, "type", rules.MODEL["type"]),
            capability=query.get("capability", ""),
            specialty=query.get("specialty", ""),
            page_size=query_integer(query, "page_size", rules.PAGE_SIZE),
            page_token=query.get("page_token", "")),
        metadata=call_metadata(request))
    return json_response({"models": [translate.model_json(m) for m in response.models],
                          "next_page_token": response.next_page_token})


async def get_model(request: web.Request) -> web.Response:
    model = await _backend(request).registry.GetModel(
        registry_pb2.GetModelRequest(name=request.match_info["name"]),
        metadata=call_metadata(request))
    return json_response(translate.model_json(model))


async def update_model(request: web.Request) -> web.Response:
    spec, paths = translate.model_spec(await read_json(request))
    model = await _backend(request).registry.UpdateModel(
        registry_pb2.UpdateModelRequest(name=request.match_info["name"], model=spec,
                                        update_mask=translate.update_mask(paths)),
        metadata=call_metadata(request))
    return json_response(translate.model_json(model))


async def delete_model(request: web.Request) -> web.Response:
    await _backend(request).registry.DeleteModel(
        registry_pb2.DeleteModelRequest(name=request.match_info["name"]),
        metadata=call_metadata(request))
    return web.Response(status=204)


async def check_model(request: web.Request) -> web.Response:
    report = await _backend(request).registry.CheckModel(
        registry_pb2.CheckModelRequest(name=request.match_info["name"]),
        metadata=call_metadata(request))
    return json_response(translate.check_report_json(report))


# -- keys ----------------------------------------------------------------------------------


async def create_key(request: web.Request) -> web.Response:
    message = keys_pb2.CreateKeyRequest()
    translate.key_request(await read_json(request), message)
    key = await _backend(request).keys.CreateKey(message, metadata=call_metadata(request))
    return json_response(translate.key_json(key), status=201)


async def list_keys(request: web.Request) -> web.Response:
    include = query_boolean(request.query, "include_revoked")
    response = await _backend(request).keys.ListKeys(
        keys_pb2.ListKeysRequest(include_revoked=include), metadata=call_metadata(request))
    return json_response({"keys": [translate.key_json(k) for k in response.keys]})


async def update_key(request: web.Request) -> web.Response:
    message = keys_pb2.UpdateKeyRequest(id=request.match_info["id"])
    paths = translate.key_request(await read_json(request), message)
    message.update_mask.paths.extend(paths)
    key = await _backend(request).keys.UpdateKey(message, metadata=call_metadata(request))
    return json_response(translate.key_json(key))


async def current_key(request: web.Request) -> web.Response:
    key = await _backend(request).keys.GetCurrentKey(keys_pb2.GetCurrentKeyRequest(),
                                                     metadata=call_metadata(request))
    return json_response({**translate.key_json(key), "spent_usd": key.spent_usd})


async def revoke_key(request: web.Request) -> web.Response:
    await _backend(request).keys.RevokeKey(keys_pb2.RevokeKeyRequest(id=request.match_info["id"]),
                                           metadata=call_metadata(request))
    return web.Response(status=204)


# -- usage ---------------------------------------------------------------------------------


async def get_usage(request: web.Request) -> web.Response:
    query = request.query
    response = await _backend(request).usage.GetUsage(
        usage_pb2.GetUsageRequest(model=query.get("model", ""),
                                  group_by=query_choice(query, "group_by",
                                                        rules.USAGE["group_by"]),
                                  **_period(query)),
        metadata=call_metadata(request))
    return json_response(translate.usage_report_json(response))


async def report_usage(request: web.Request) -> web.Response:
    message = translate.report_request(await read_json(request))
    response = await _backend(request).usage.ReportUsage(message, metadata=call_metadata(request))
    return json_response({"id": response.id, "status": "accepted"}, status=202)


async def reconciliation(request: web.Request) -> web.Response:
    query = request.query
    response = await _backend(request).usage.GetReconciliation(
        usage_pb2.GetReconciliationRequest(model=query.get("model", ""), **_period(query)),
        metadata=call_metadata(request))
    return json_response(translate.reconciliation_json(response))


async def statement(request: web.Request) -> web.Response:
    query = request.query
    response = await _backend(request).usage.GetStatement(
        usage_pb2.GetStatementRequest(month=query.get("month", ""),
                                      provider=query.get("provider", "")),
        metadata=call_metadata(request))
    if "text/csv" in request.headers.get("Accept", ""):
        return web.Response(text=translate.statement_csv(response), content_type="text/csv")
    return json_response(translate.statement_json(response))


async def submit_feedback(request: web.Request) -> web.Response:
    message = translate.feedback_request(await read_json(request))
    response = await _backend(request).usage.SubmitFeedback(message,
                                                            metadata=call_metadata(request))
    return json_response(translate.feedback_json(response), status=201)


def _period(query: Mapping[str, str]) -> dict[str, str]:
    """The ``from``/``to`` query parameters (``from`` is a Python keyword: passed by name)."""
    for name in ("from", "to"):
        if name in query and not query[name].strip():
            raise invalid(name, "must be an RFC 3339 time when given")
    return {"from": query.get("from", ""), "to": query.get("to", "")}


# -- audit ---------------------------------------------------------------------------------


async def list_audit(request: web.Request) -> web.Response:
    query = request.query
    response = await _backend(request).audit.ListAuditEvents(
        audit_pb2.ListAuditEventsRequest(
            actor=query.get("actor", ""), action=query_choice(query, "action",
                                                              rules.AUDIT["action"]),
            page_size=query_integer(query, "page_size", rules.PAGE_SIZE),
            page_token=query.get("page_token", ""), **_period(query)),
        metadata=call_metadata(request))
    return json_response({"events": [translate.audit_event_json(e) for e in response.events],
                          "next_page_token": response.next_page_token})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/generate", generate)
    app.router.add_post("/v1/models", register_model)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name}", get_model)
    app.router.add_patch("/v1/models/{name}", update_model)
    app.router.add_delete("/v1/models/{name}", delete_model)
    app.router.add_post("/v1/models/{name}/check", check_model)
    app.router.add_post("/v1/keys", create_key)
    app.router.add_get("/v1/keys", list_keys)
    app.router.add_get("/v1/keys/me", current_key)
    app.router.add_patch("/v1/keys/{id}", update_key)
    app.router.add_delete("/v1/keys/{id}", revoke_key)
    app.router.add_get("/v1/usage", get_usage)
    app.router.add_post("/v1/usage/reports", report_usage)
    app.router.add_get("/v1/usage/reconciliation", reconciliation)
    app.router.add_get("/v1/usage/statement", statement)
    app.router.add_get("/v1/audit", list_audit)
    app.router.add_post("/v1/feedback", submit_feedback)


