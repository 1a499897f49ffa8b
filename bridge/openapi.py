"""The OpenAPI 3.1 document of the HTTP surface (CONTRACT §2), served at GET /openapi.json.

Every enum, bound and default comes from the rules the server validates with
(``ai1net.server.rules``); error types come from the one status table in ``errors.py``.
The document is plain data built by small helpers, section by section: schemas, headers,
shared error responses, then the paths.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import version
from typing import Any

from ai1net.bridge.errors import ERROR_TYPES
from ai1net.server import rules
from ai1net.server.rules import FINISH_REASONS, HEALTH, MODEL_TYPES, ROLES

Schema = dict[str, Any]
# Every operation with a key answers these; one reading a body adds BODY_ERRORS.
AUTHED_ERRORS = (401, 405, 429, 500, 503)
BODY_ERRORS = (400, 413, 415)
ERROR_DESCRIPTIONS = {
    400: "Invalid JSON, a wrong field type or value (`field` names it), or no model fits",
    401: "Missing, unknown or revoked key",
    402: "The key's budget is spent",
    403: "Known key, but the wrong role or not the owner",
    404: "No such model or key",
    405: "The path exists but does not take this method (`Allow` lists those it does)",
    409: "A model of that name exists",
    413: "The body is over the limit (default 1 MiB)",
    415: "The body is not JSON",
    429: "Over a rate limit (the key's or the provider's); retry after `Retry-After` seconds",
    499: "The client closed the connection; the provider call was cancelled",
    500: "An unexpected failure in the gateway",
    501: "Not implemented by this gateway",
    502: "The provider failed, broke a limit (`max_response_bytes`, `max_event_bytes`, the "
         "header block) or sent malformed HTTP, and no fallback succeeded; the message names "
         "the model and the limit or fault",
    503: "The gRPC backend or the database does not answer, or the gateway shed the call "
         "(a model at its `max_concurrency`, the process at its in-flight limit, a model "
         "whose breaker is open); retry after `Retry-After` seconds when it is given",
    504: "No answer in time (`x-request-timeout-ms`, `grpc-timeout` or the model's timeout)",
}


# -- schema helpers ------------------------------------------------------------------------


def _ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _t(kind: str | list[str], doc: str = "", **extra: Any) -> Schema:
    """A schema of JSON type ``kind``, with a description when ``doc`` is given."""
    schema: Schema = {"type": kind, **extra}
    if doc:
        schema["description"] = doc
    return schema


def _enum(choices: tuple[str, ...], doc: str = "", **extra: Any) -> Schema:
    return _t("string", doc, enum=list(choices), **extra)


def _strings(doc: str = "") -> Schema:
    return _t("array", doc, items={"type": "string"})


def _obj(properties: Schema, *required: str, doc: str = "", **extra: Any) -> Schema:
    schema = _t("object", doc, properties=properties, **extra)
    if required:
        schema["required"] = list(required)
    return schema


def _count(doc: str = "") -> Schema:
    return _t("integer", doc, minimum=0)


def _time() -> Schema:
    return _t("string", "RFC 3339", format="date-time")


def _usd() -> Schema:
    return _t("number", minimum=0)


# -- schemas -------------------------------------------------------------------------------


def _generate_schemas() -> Schema:
    finished = {"id": _t("string", examples=["gen_8f3a"]), "model": _t("string"),
                "usage": _ref("TokenUsage"), "latency_ms": _count("Gateway end-to-end time"),
                "cost_usd": _usd(),
                "finish_reason": _enum(FINISH_REASONS, "Why the provider stopped, when it "
                                                       "said")}
    request = rules.nested(rules.GENERATE, required=("input",))
    return {
        "Routing": {**request.pop("routing"),
                    "description": "Constrains and ranks the candidates when `model` is absent"},
        "GenerateParameters": {**request.pop("parameters"), "additionalProperties": True,
                               "description": "Passed through to the provider; the known "
                                              "ones are checked"},
        "GenerateRequest": _obj({**request, "parameters": _ref("GenerateParameters"),
                                 "routing": _ref("Routing")}, "input"),
        "TokenUsage": _obj({
            "input_tokens": _count(), "output_tokens": _count(),
            "estimated": _t("boolean", "Present (true) when the provider sent no usage"),
        }, "input_tokens", "output_tokens"),
        "Output": {"description": "A string for text models, an object for image and audio",
                   "anyOf": [_t("string"),
                             _obj({"image_url": _t("string", format="uri")}, "image_url"),
                             _obj({"audio_url": _t("string", format="uri")}, "audio_url")]},
        "GenerateResponse": _obj({**finished, "output": _ref("Output")},
                                 "id", "model", "output", "usage", "latency_ms", "cost_usd"),
        "StreamDelta": _obj({"delta": _t("string")}, "delta", doc="A piece of text output"),
        "StreamOutput": _obj({"output": _ref("Output")}, "output",
                             doc="The whole output of an image or audio model"),
        "StreamDone": _obj({"done": {"const": True}, **finished,
                            "ttft_ms": _count("Time to the first delta")},
                           "done", "id", "model", "usage", "latency_ms", "cost_usd",
                           doc="The last object of a successful stream"),
        "StreamEvent": {"description": "One NDJSON line or SSE `data:` event. A failure after "
                                       "the first byte ends the stream with an `Error` object",
                        "anyOf": [_ref("StreamDelta"), _ref("StreamOutput"),
                                  _ref("StreamDone"), _ref("Error")]},
    }


REGISTRATION_REQUIRED = ("name", "type", "endpoint")


def _model_schemas() -> Schema:
    stats = _obj({"requests": _count(), "error_rate": _t("number", minimum=0, maximum=1),
                  "p50_latency_ms": _t("number"), "ttft_p50_ms": _t("number"),
                  "health": _enum(HEALTH), "feedback_count": _count("Ratings received"),
                  "observed_quality": _t("number", "The ratings blended with the registered "
                                         "accuracy_score; what quality routing uses",
                                         minimum=0, maximum=1)},
                 doc="What the gateway observed")
    spec = {**rules.nested(rules.MODEL),
            "verify": _t("boolean", "At registration: run the conformance check first and "
                         "register only if it passes (400 naming the failed checks); not "
                         "stored", writeOnly=True)}
    model = {**rules.nested(rules.MODEL, responses=True),
             "owner": _t("string", "Key id of the provider"), "has_credentials": _t("boolean"),
             "created_at": _time(), "updated_at": _time(), "stats": stats,
             "verification": _ref("Verification")}
    return {
        "ModelSpec": _obj(spec, doc="Registration body; a PATCH sends any subset"),
        "ModelRegistration": {"allOf": [
            _ref("ModelSpec"), rules.credentials_rule(),
            {"required": list(REGISTRATION_REQUIRED),
             "properties": {name: {"type": "string"} for name in REGISTRATION_REQUIRED}}]},
        "Model": _obj(model, *model),
        "Verification": _t(["object", "null"], "The last conformance check; null before one",
                           properties={"verified_at": _time(), "passed": _t("boolean"),
                                       "summary": _t("string")},
                           required=["verified_at", "passed", "summary"],
                           additionalProperties=False),
        "CheckReport": _obj({
            "endpoint": _t("string"), "passed": _t("boolean", "Nothing failed"),
            "summary": _t("string"),
            "checks": _t("array", items=_obj({
                "name": _t("string"), "result": _enum(("pass", "warn", "fail")),
                "detail": _t("string")}, "name", "result", "detail")),
            "latency_ms": _obj({"p50": _t("number"), "p95": _t("number")}, "p50", "p95")},
            "endpoint", "passed", "summary", "checks", "latency_ms",
            doc="One line per check of CONTRACT §3.1, then the latency over the calls"),
        "ModelList": _obj({"models": _t("array", items=_ref("Model")),
                           "next_page_token": _t("string", "Empty on the last page")},
                          "models", "next_page_token"),
    }


def _key_schemas() -> Schema:
    fields = rules.nested(rules.KEY, required=("role",))
    shown = rules.nested(rules.KEY, responses=True)
    changes = {name: fields[name] for name in ("name", "rate_limit", "budget_usd")}
    key = {"id": _t("string"), "name": _t("string"), "role": _enum(ROLES),
           "prefix": _t("string", "First characters of the key, to recognise it"),
           "rate_limit": _ref("RateLimit"), "budget_usd": shown["budget_usd"],
           "created_at": _time(), "revoked": _t("boolean")}
    return {
        "RateLimit": shown["rate_limit"],
        "CreateKey": _obj({"role": fields["role"], **changes}, "role"),
        "UpdateKey": _obj(changes, doc="Only the fields present change"),
        "Key": _obj(key, *key, doc="A key as listed: the secret is never shown"),
        "CreatedKey": {"allOf": [_ref("Key"), _obj(
            {"key": _t("string", "The secret, shown this once only")}, "key")]},
        "KeyList": _obj({"keys": _t("array", items=_ref("Key"))}, "keys"),
        "CurrentKey": {"allOf": [_ref("Key"), _obj(
            {"spent_usd": _t("number", "What the key has spent so far", minimum=0)},
            "spent_usd")]},
    }


def _usage_schemas() -> Schema:
    totals = {"requests": _count("Every call accounted, failures included"),
              "tokens_processed": _count("input_tokens + output_tokens"),
              "input_tokens": _count(), "output_tokens": _count(), "errors": _count(),
              "cost_usd": _t("number", "Spent; for a provider, its earnings", minimum=0)}
    counts = _obj({"requests": _t("integer"), "tokens_processed": _t("integer")},
                  "requests", "tokens_processed")
    usage = rules.nested(rules.USAGE, required=("model",))
    period = {"model": _t("string"), "from": _time(), "to": _time()}
    return {
        "UsageTotals": _obj(totals, *totals),
        "UsageReport": _obj({"usage": _ref("UsageTotals"), "groups": _t("array", items=_obj(
            {"group": _t("string"), "usage": _ref("UsageTotals")}, "group", "usage"))},
            "usage", "groups"),
        "UsageCounts": counts,
        "ProviderUsageReport": _obj({**period, "model": usage["model"], "usage": usage["usage"]},
                                    "model", "from", "to",
                                    doc="A provider's own count for one of its models; `to` "
                                        "must be later than `from`"),
        "UsageReportAccepted": _obj({"id": _t("string"), "status": {"const": "accepted"}},
                                    "id", "status"),
        "Statement": _obj({"month": rules.STATEMENT["month"].schema(),
                           "provider": _t("string", "Empty: every provider (admin)"),
                           "from": _time(), "to": _time(),
                           "models": _t("array", items=_obj(
                               {"model": _t("string"), "requests": _count(),
                                "tokens_processed": _count(), "earnings_usd": _usd(),
                                "reported": _ref("UsageCounts"),
                                "difference": _ref("UsageCounts")},
                               "model", "requests", "tokens_processed", "earnings_usd",
                               "reported", "difference"))},
                          "month", "provider", "from", "to", "models",
                          doc="`reported`: the provider's reports for periods overlapping "
                              "the month; `difference`: reported minus counted"),
        "FeedbackRequest": _obj(rules.nested(rules.FEEDBACK,
                                             required=("generation_id", "score")),
                                "generation_id", "score"),
        "Feedback": _obj({**rules.nested(rules.FEEDBACK, responses=True),
                          "model": _t("string", "The model that answered"),
                          "created_at": _time()},
                         "generation_id", "model", "score", "comment", "created_at"),
        "Reconciliation": _obj({**period, "gateway": _ref("UsageCounts"),
                                "provider": _ref("UsageCounts"),
                                "difference": _ref("UsageCounts")},
                               "model", "gateway", "provider", "difference",
                               doc="`difference` is provider minus gateway"),
    }


def _audit_schemas() -> Schema:
    event = {"id": _t("string"), "at": _time(), "actor_key_id": rules.AUDIT["actor"].schema(),
             "action": rules.AUDIT["action"].schema(),
             "target": _t("string", "The key id, or the model's name"),
             "request_id": _t("string", "The x-request-id of the call that made the change"),
             "changes": _t("object", "The fields set, by their JSON names; a credential only "
                           "as `(changed)`, never a key")}
    return {"AuditEvent": _obj(event, *event),
            "AuditPage": _obj({"events": _t("array", items=_ref("AuditEvent")),
                               "next_page_token": _t("string", "Empty on the last page")},
                              "events", "next_page_token", doc="Newest first")}


def _other_schemas() -> Schema:
    detail = _obj({"message": _t("string"), "code": _t("integer", "Equals the HTTP status"),
                   "type": _enum(tuple(ERROR_TYPES.values())),
                   "request_id": _t("string"),
                   "field": _t("string", "The offending field, for a 400 about one")},
                  "message", "code", "type", "request_id")
    return {"Error": _obj({"error": detail}, "error"),
            "Status": _obj({"status": _t("string")}, "status")}


def _openai_request_schemas() -> Schema:
    parts = _t("array", items=_obj({"type": {"const": "text"}, "text": _t("string")},
                                   "type", "text"), doc="Only `text` parts are understood")
    content = {"anyOf": [_t("string"), parts]}
    sampling = {
        "model": _t("string", "A registered model; `auto` or absent: routed by `ai1net`"),
        "max_tokens": _t("integer", minimum=1, maximum=2**32 - 1),
        "temperature": _t("number", minimum=0, maximum=2),
        "top_p": _t("number", minimum=0, maximum=1),
        "stop": {"anyOf": [_t("string"), _t("array", items=_t("string"), maxItems=4)]},
        "seed": _t("integer", minimum=-(2**53) + 1, maximum=2**53 - 1),
        "user": _t("string"), "response_format": _t("object"),
        "n": {"const": 1, "description": "Only 1"},
        "stream": _t("boolean", "Answer as SSE chunks, ending with `data: [DONE]`",
                     default=False),
        "stream_options": _obj({"include_usage": _t("boolean", "A last chunk with `usage`")}),
        "ai1net": _ref("OpenAIHints"),
    }
    return {
        "OpenAIHints": _obj({"routing": _ref("Routing"), "fallbacks": _strings(
            "Models to try, in order, when `model` fails retryably")},
            doc="AI1NET's routing hints (as in /v1/generate)"),
        "ChatMessage": {"anyOf": [
            _obj({"role": _enum(("system", "developer", "user")), "content": content},
                 "role", "content"),
            _obj({"role": {"const": "assistant"},
                  "content": {"anyOf": [_t("string"), parts, _t("null")]}}, "role")]},
        "ChatCompletionRequest": _obj({
            **sampling, "messages": _t("array", minItems=1, items=_ref("ChatMessage")),
            "max_completion_tokens": _t("integer", "Wins over `max_tokens`", minimum=1,
                                        maximum=2**32 - 1)}, "messages",
            doc="The provider gets the conversation as text and these fields as parameters"),
        "CompletionRequest": _obj({**sampling, "prompt": {"anyOf": [
            _t("string", minLength=1),
            _t("array", items=_t("string", minLength=1), minItems=1, maxItems=1)]}},
            "prompt"),
        "ImageRequest": _obj({
            "model": sampling["model"], "prompt": _t("string", minLength=1),
            "n": sampling["n"], "size": _t("string"), "quality": _t("string"),
            "style": _t("string"), "user": _t("string"),
            "response_format": _enum(("url", "b64_json"), default="url"),
            "stream": {"const": False}, "ai1net": _typed_hints("image")}, "prompt"),
        "SpeechRequest": _obj({
            "model": sampling["model"], "input": _t("string", minLength=1),
            "voice": _t("string"), "response_format": _t("string", "Passed on as `format`"),
            "speed": _t("number", minimum=0.25, maximum=4), "instructions": _t("string"),
            "stream_format": {"const": "audio"}, "ai1net": _typed_hints("audio")}, "input"),
    }


def _typed_hints(kind: str) -> Schema:
    """Hints on an endpoint of one model type: routing asks for that type or none."""
    return {"allOf": [_ref("OpenAIHints"), {"properties": {"routing": {
        "properties": {"type": {"const": kind}}}}}]}


def _openai_answer_schemas() -> Schema:
    finish = _t(["string", "null"], enum=[*FINISH_REASONS, None],
                doc="The provider's reason; without one, `length` when the answer used "
                    "every token allowed, else `stop`")
    usage = _obj({"prompt_tokens": _count(), "completion_tokens": _count(),
                  "total_tokens": _count()}, "prompt_tokens", "completion_tokens",
                 "total_tokens")
    extras = _obj({"generation_id": _t("string"), "cost_usd": _usd(),
                   "latency_ms": _count(), "ttft_ms": _count(),
                   "usage_estimated": {"const": True}}, "generation_id", "cost_usd",
                  "latency_ms", doc="AI1NET's figures for the call")
    head = {"id": _t("string", examples=["chatcmpl-gen_8f3a"]), "created": _count(),
            "model": _t("string", "The model that answered")}

    def answer(kind: str, choice: Schema, *, chunk: bool = False) -> Schema:
        body = {**head, "object": {"const": kind},
                "choices": _t("array", items=_obj({"index": {"const": 0}, **choice,
                                                   "logprobs": _t("null"),
                                                   "finish_reason": finish},
                                                  "index", *choice, "finish_reason"),
                              maxItems=1),
                "usage": usage, "ai1net": extras}
        return _obj(body, "id", "object", "created", "model", "choices",
                    *(() if chunk else ("usage",)))
    model = {"id": _t("string"), "object": {"const": "model"}, "created": _count(),
             "owned_by": _t("string", "Key id of the provider"), "type": _enum(MODEL_TYPES),
             "pricing": _obj({"input_per_1k_tokens": _usd(), "output_per_1k_tokens": _usd(),
                              "per_request_usd": _usd()}),
             "capabilities": _strings(), "specialties": _strings(),
             "description": _t("string")}
    detail = _obj({"message": _t("string"), "type": _enum(tuple(ERROR_TYPES.values())),
                   "param": _t(["string", "null"], "The body's offending field"),
                   "code": _t("string", "Equals `type`")}, "message", "type", "param", "code")
    return {
        "ChatCompletion": answer("chat.completion", {"message": _obj(
            {"role": {"const": "assistant"}, "content": _t("string")}, "role", "content")}),
        "ChatCompletionChunk": answer("chat.completion.chunk", {"delta": _obj(
            {"role": {"const": "assistant"}, "content": _t("string")})}, chunk=True),
        "Completion": answer("text_completion", {"text": _t("string")}),
        "CompletionChunk": answer("text_completion", {"text": _t("string")}, chunk=True),
        "OpenAIModel": _obj(model, *model),
        "OpenAIModelList": _obj({"object": {"const": "list"},
                                 "data": _t("array", items=_ref("OpenAIModel"))},
                                "object", "data"),
        "ImagesResponse": _obj({"created": _count(), "output_format": _t("string"),
                                "data": _t("array", minItems=1, maxItems=1, items={"anyOf": [
                                    _obj({"url": _t("string", format="uri")}, "url"),
                                    _obj({"b64_json": _t("string")}, "b64_json")]})},
                               "created", "data"),
        "OpenAIError": _obj({"error": detail}, "error",
                            doc="OpenAI's error shape; the status codes are those of `Error`"),
    }


def _schemas() -> Schema:
    return {**_generate_schemas(), **_model_schemas(), **_key_schemas(), **_usage_schemas(),
            **_audit_schemas(), **_other_schemas(), **_openai_request_schemas(),
            **_openai_answer_schemas()}


# -- headers, parameters and shared responses -----------------------------------------------


def _headers() -> Schema:
    headers = {
        "x-request-id": ("string", "The caller's (if safe) or a new `req_...` id"),
        "x-ai1net-model": ("string", "The model that answered"),
        "x-ai1net-attempts": ("integer", "How many candidates were tried"),
        "x-ai1net-route": ("string", "Why the answering model was chosen"),
        "x-ai1net-generation-id": ("string", "Streams: the generation's id, as the last "
                                   "event will carry it"),
        "Retry-After": ("integer", "Seconds to wait before retrying"),
        "Allow": ("string", "The methods the path takes"),
    }
    for kind in ("requests", "tokens"):
        headers[f"x-ratelimit-limit-{kind}"] = ("integer", f"The key's {kind} per minute")
        headers[f"x-ratelimit-remaining-{kind}"] = ("integer", f"{kind.title()} left now")
        headers[f"x-ratelimit-reset-{kind}"] = ("number", "Seconds until the limit is full")
    return {name: {"description": doc, "schema": _t(kind), **(
                {"required": True} if name == "x-request-id" else {})}
            for name, (kind, doc) in headers.items()}


OPENAI_ERRORS = "OpenAI"  # prefix of the OpenAI-shaped twins of the error responses
RATE_HEADERS = tuple(f"x-ratelimit-{what}-{kind}" for kind in ("requests", "tokens")
                     for what in ("limit", "remaining", "reset"))


def _header_refs(*names: str) -> Schema:
    return {name: _ref(name, "headers") for name in ("x-request-id", *names)}


def _parameters() -> Schema:
    def header(name: str, doc: str, **schema: Any) -> Schema:
        return {"name": name, "in": "header", "description": doc, "schema": _t("string",
                                                                                **schema)}
    return {
        "x-request-id": header("x-request-id", "Echoed back and passed to the backend when "
                               "it is 1-64 of `A-Za-z0-9._:-`; otherwise a new id is made"),
        "traceparent": header("traceparent", "W3C trace context, passed on"),
        "x-request-timeout-ms": {"name": "x-request-timeout-ms", "in": "header",
                                 "schema": rules.REQUEST_TIMEOUT_MS.schema()},
        "grpc-timeout": header("grpc-timeout", "Deadline, gRPC style: `500m`, `2S`, `1M` "
                               "(ignored when x-request-timeout-ms is set)",
                               pattern=r"^\d{1,8}[HMSmun]$"),
    }


def _error_name(status: int) -> str:
    kind: str = ERROR_TYPES[status]
    return kind.title().replace("_", "")


def _error_responses(prefix: str = "", schema: str = "Error") -> Schema:
    extra = {429: ("Retry-After", *RATE_HEADERS), 503: ("Retry-After",), 405: ("Allow",)}
    return {prefix + _error_name(status): {
        "description": ERROR_DESCRIPTIONS[status],
        "headers": _header_refs(*extra.get(status, ())),
        "content": {"application/json": {"schema": _ref(schema)}},
    } for status in ERROR_TYPES}


def _components() -> Schema:
    return {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "`Authorization: Bearer <key>`"},
            "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        },
        "schemas": _schemas(), "headers": _headers(), "parameters": _parameters(),
        "responses": {**_error_responses(),
                      **_error_responses(OPENAI_ERRORS, "OpenAIError")},
    }


# -- operations ------------------------------------------------------------------------------


def _response(doc: str, schema: Schema | None = None, *headers: str,
              media: str = "application/json", links: Schema | None = None) -> Schema:
    out: Schema = {"description": doc, "headers": _header_refs(*headers)}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    if links:
        out["links"] = links
    return out


def _links(field: str, *targets: tuple[str, str]) -> Schema:
    """Links from a created resource to the operations that take its ``field``: each target
    is (operationId, the parameter that receives it)."""
    return {f"{op_id[0].upper()}{op_id[1:]}": {
        "operationId": op_id, "parameters": {parameter: f"$response.body#/{field}"}}
        for op_id, parameter in targets}


def _query(name: str, schema: Schema, *, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _in_path(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": _t("string")}


def _operation(op_id: str, tag: str, summary: str, ok: Schema, *, errors: tuple[int, ...] = (),
               body: str | None = None, params: tuple[Schema, ...] = (),
               public: bool = False) -> Schema:
    codes = set(errors) | ({405, 500} if public else set(AUTHED_ERRORS))
    if body:
        codes |= set(BODY_ERRORS)
    shared = ("x-request-id",) if public else ("x-request-id", "traceparent")
    operation: Schema = {
        "operationId": op_id, "tags": [tag], "summary": summary,
        "parameters": [*params, *(_ref(name, "parameters") for name in shared)],
        "responses": {**ok, **{str(code): _ref(_error_name(code), "responses")
                               for code in sorted(codes)}},
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(body)}}}
    if public:
        operation["security"] = []
    return operation


ANSWER_HEADERS = ("x-ai1net-model", "x-ai1net-attempts", "x-ai1net-route",
                  "x-ai1net-generation-id", *RATE_HEADERS)
TIMEOUTS = (_ref("x-request-timeout-ms", "parameters"), _ref("grpc-timeout", "parameters"))


def _sse(item: str, *, done: bool = False) -> Schema:
    """An event stream: in OpenAPI 3.1 ``schema`` describes one event (field by field, as
    an SSE parser reads it); ``x-item-schema`` is what its ``data`` holds, as JSON."""
    data = f"One `{item}` as JSON" + (", or `[DONE]` at the end" if done else "")
    event = _obj({"data": _t("string", data), "event": _t("string"), "id": _t("string"),
                  "retry": _t("integer", minimum=0)}, "data", doc=f"SSE events `data: <{item}>`")
    return {"schema": event, "x-item-schema": _ref(item)}


def _generate_paths() -> Schema:
    ok = _response("The answer; with `stream: true`, a stream of StreamEvent objects",
                   _ref("GenerateResponse"), *ANSWER_HEADERS)
    # OpenAPI 3.1 has no item schema for sequential media (3.2's itemSchema): the extension
    # carries it; the NDJSON schema is that of one line.
    ok["content"] |= {
        "application/x-ndjson": {"schema": _ref("StreamEvent"),
                                 "x-item-schema": _ref("StreamEvent")},
        "text/event-stream": _sse("StreamEvent"),
    }
    return {"/v1/generate": {"post": _operation(
        "generate", "generate", "Call a model, by name or by routing", {"200": ok},
        errors=(402, 403, 404, 499, 502, 504), body="GenerateRequest", params=TIMEOUTS)}}


MODEL_LINKS = _links("name", ("getModel", "path.name"), ("updateModel", "path.name"),
                     ("deleteModel", "path.name"), ("getUsage", "query.model"),
                     ("getReconciliation", "query.model"))
KEY_LINKS = _links("id", ("updateKey", "path.id"), ("revokeKey", "path.id"))


def _model_paths() -> Schema:
    model = _ref("Model")
    name = (_in_path("name"),)
    listing = (_query("type", _enum(MODEL_TYPES)), _query("capability", _t("string")),
               _query("specialty", _t("string")), _query("page_size", rules.PAGE_SIZE.schema()),
               _query("page_token", rules.PAGE_CURSOR.schema()))
    return {
        "/v1/models": {
            "post": _operation("registerModel", "models", "Register a model (provider, admin)",
                               {"201": _response("Registered; the caller owns it", model,
                                                 links=MODEL_LINKS)},
                               errors=(403, 409), body="ModelRegistration"),
            "get": _operation("listModels", "models", "List enabled models",
                              {"200": _response("A page of models", _ref("ModelList"))},
                              errors=(400,), params=listing),
        },
        "/v1/models/{name}": {
            "get": _operation("getModel", "models", "Read a model",
                              {"200": _response("The model", model)}, errors=(404,),
                              params=name),
            "patch": _operation("updateModel", "models", "Change a model (owner, admin)",
                                {"200": _response("The model after the change", model)},
                                errors=(403, 404, 409), body="ModelSpec", params=name),
            "delete": _operation("deleteModel", "models",
                                 "Take a model out of traffic; its usage history stays",
                                 {"204": _response("Deleted")}, errors=(403, 404),
                                 params=name),
        },
        "/v1/models/{name}/check": {
            "post": _operation("checkModel", "models",
                               "Run the conformance check against the model's endpoint (owner, "
                               "admin); the result is stored as its verification",
                               {"200": _response("The conformance report",
                                                 _ref("CheckReport"))},
                               errors=(403, 404), params=name),
        },
    }


def _key_paths() -> Schema:
    key_id = (_in_path("id"),)
    revoked = _query("include_revoked", _t("boolean", "`true` or `1` also lists revoked keys",
                                           default=False))
    return {
        "/v1/keys": {
            "post": _operation("createKey", "keys", "Create a key (admin)",
                               {"201": _response("The key and its secret, shown once",
                                                 _ref("CreatedKey"), links=KEY_LINKS)},
                               errors=(403,), body="CreateKey"),
            "get": _operation("listKeys", "keys", "List keys, never their secrets (admin)",
                              {"200": _response("The keys", _ref("KeyList"))},
                              errors=(400, 403), params=(revoked,)),
        },
        "/v1/keys/me": {"get": _operation(
            "getCurrentKey", "keys", "The key this call is made with (any role): its limits, "
            "budget and spend", {"200": _response("The caller's key", _ref("CurrentKey"))})},
        "/v1/keys/{id}": {
            "patch": _operation("updateKey", "keys",
                                "Change a key's name, rate limit or budget (admin)",
                                {"200": _response("The key after the change", _ref("Key"))},
                                errors=(403, 404), body="UpdateKey", params=key_id),
            "delete": _operation("revokeKey", "keys", "Revoke a key at once (admin)",
                                 {"204": _response("Revoked")}, errors=(403, 404),
                                 params=key_id),
        },
    }


def _usage_paths() -> Schema:
    period = (_query("from", _time()), _query("to", _time()))
    return {
        "/v1/usage": {"get": _operation(
            "getUsage", "usage", "Usage totals within the caller's scope",
            {"200": _response("Totals, and groups when `group_by` is set",
                              _ref("UsageReport"))},
            errors=(400, 403), params=(_query("model", _t("string")), *period,
                                       _query("group_by", rules.USAGE["group_by"].schema())))},
        "/v1/usage/reports": {"post": _operation(
            "reportUsage", "usage", "A provider's own count for one of its models",
            {"202": _response("Kept for reconciliation", _ref("UsageReportAccepted"))},
            errors=(403, 404), body="ProviderUsageReport")},
        "/v1/usage/reconciliation": {"get": _operation(
            "getReconciliation", "usage", "The gateway's count beside the provider's "
            "(owner, admin)", {"200": _response("Both counts", _ref("Reconciliation"))},
            errors=(400, 403, 404),
            params=(_query("model", rules.USAGE["model"].schema(), required=True),
                    *period))},
        "/v1/usage/statement": {"get": _operation(
            "getStatement", "usage", "A provider's earnings for one month, per model, beside "
            "its reports (a provider: its own; admin: any)",
            {"200": {**_response("The statement", _ref("Statement")),
                     "content": {"application/json": {"schema": _ref("Statement")},
                                 "text/csv": {"schema": {
                                     "description": "With `Accept: text/csv`: a header line "
                                     "(model, requests, tokens_processed, earnings_usd, "
                                     "reported_…, difference_…), then a line per model"}}}}},
            errors=(400, 403),
            params=(_query("month", rules.STATEMENT["month"].schema(), required=True),
                    _query("provider", rules.STATEMENT["provider"].schema())))},
        "/v1/feedback": {"post": _operation(
            "submitFeedback", "usage", "Rate a generation of the caller's (or any, admin); "
            "one rating each", {"201": _response("Stored", _ref("Feedback"))},
            errors=(400, 404, 409), body="FeedbackRequest")},
    }


def _audit_paths() -> Schema:
    params = (_query("from", _time()), _query("to", _time()),
              _query("actor", _t("string", "Only changes by this key id")),
              _query("action", rules.AUDIT["action"].schema()),
              _query("page_size", rules.PAGE_SIZE.schema()),
              _query("page_token", rules.PAGE_CURSOR.schema()))
    return {"/v1/audit": {"get": _operation(
        "listAuditEvents", "audit", "Every key, model and usage-report change (admin)",
        {"200": _response("A page of events, newest first", _ref("AuditPage"))},
        errors=(400, 403), params=params)}}


def _operations_paths() -> Schema:
    def get(op_id: str, summary: str, ok: Schema, *errors: int) -> Schema:
        return {"get": _operation(op_id, "operations", summary, {"200": ok}, errors=errors,
                                  public=True)}
    status = _ref("Status")
    return {
        "/healthz": get("healthz", "The process is alive", _response("Alive", status)),
        "/readyz": get("readyz", "The gRPC backend and the database answer",
                       _response("Ready", status), 503),
        "/metrics": get("metrics", "Prometheus metrics",
                        _response("Prometheus text format", _t("string"),
                                  media="text/plain")),
        "/openapi.json": get("openapi", "This document",
                             _response("OpenAPI 3.1", _t("object"))),
        "/console": get("console", "The web console (a page that calls this API)",
                        _response("The console page", _t("string"), media="text/html")),
        "/console/{path}": {"get": _operation(
            "consoleFile", "operations", "A script, style sheet or image of the web console",
            {"200": _console_file()}, errors=(404,), params=(_in_path("path"),),
            public=True)},
    }


def _openai_operation(op_id: str, summary: str, ok: Schema, **options: Any) -> Schema:
    """An operation under /openai/v1: its errors in OpenAI's shape, same statuses."""
    operation = _operation(op_id, "openai", summary, ok, **options)
    for status in operation["responses"]:
        if int(status) >= 400:
            operation["responses"][status] = _ref(
                OPENAI_ERRORS + _error_name(int(status)), "responses")
    return operation


def _openai_paths() -> Schema:
    generating = (402, 403, 404, 499, 502, 504)

    def text(op_id: str, summary: str, answer: str, body: str) -> Schema:
        ok = _response(f"The answer; with `stream: true`, SSE `{answer}Chunk` events, then "
                       "`data: [DONE]` (a failure after the first event: an `OpenAIError` "
                       "event, no `[DONE]`)", _ref(answer), *ANSWER_HEADERS)
        ok["content"]["text/event-stream"] = _sse(f"{answer}Chunk", done=True)
        return {"post": _openai_operation(op_id, summary, {"200": ok}, errors=generating,
                                          body=body, params=TIMEOUTS)}
    audio = _response("The audio bytes of the answer's `data:` URL", _t(
        "string", format="binary"), *ANSWER_HEADERS, media="audio/*")
    return {
        "/openai/v1/chat/completions": text(
            "openaiChatCompletions", "OpenAI chat completions over any text model",
            "ChatCompletion", "ChatCompletionRequest"),
        "/openai/v1/completions": text("openaiCompletions", "OpenAI legacy completions",
                                       "Completion", "CompletionRequest"),
        "/openai/v1/models": {"get": _openai_operation(
            "openaiListModels", "Every enabled model, as OpenAI lists them",
            {"200": _response("The models", _ref("OpenAIModelList"))})},
        "/openai/v1/models/{id}": {"get": _openai_operation(
            "openaiGetModel", "One model, as OpenAI shows it",
            {"200": _response("The model", _ref("OpenAIModel"))}, errors=(404,),
            params=(_in_path("id"),))},
        "/openai/v1/images/generations": {"post": _openai_operation(
            "openaiImages", "OpenAI image generation over any image model",
            {"200": _response("The image, as a URL or base64", _ref("ImagesResponse"),
                              *ANSWER_HEADERS)},
            errors=(*generating, 501), body="ImageRequest", params=TIMEOUTS)},
        "/openai/v1/audio/speech": {"post": _openai_operation(
            "openaiSpeech", "OpenAI text to speech over any audio model: the audio "
            "decoded from a data: URL, or fetched from its link with GET through the "
            "provider client (SSRF guard, the model's max_response_bytes and time-outs; "
            "502 when the link fails or breaks a limit, 504 when it does not answer in time)",
            {"200": audio}, errors=generating, body="SpeechRequest", params=TIMEOUTS)},
    }


def _console_file() -> Schema:
    return {"description": "The file", "headers": _header_refs(),
            "content": {media: {"schema": _t("string")}
                        for media in ("text/javascript", "text/css", "image/svg+xml")}}


def documented_methods(path: str) -> str:
    """``Allow`` for a path as the document has it: its own entry, else the first template
    that matches (as OpenAPI ranks a concrete path above a template); "" if none."""
    paths = openapi_document()["paths"]
    item = paths.get(path) or next(
        (item for template, item in paths.items() if path_pattern(template).fullmatch(path)), None)
    if item is None:
        return ""
    methods = [m.upper() for m in item if m in HTTP_METHODS]
    return ", ".join([*methods, "HEAD"] if "GET" in methods else methods)


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def path_pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))


@cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI1NET gateway", "version": version("ai1net"),
                 "description": "One API over registered AI models: generate, registry, "
                                "usage and keys. Every non-2xx answer is an `Error`."},
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],  # either header
        "tags": [{"name": name} for name in ("generate", "models", "keys", "usage",
                                              "audit", "operations", "openai")],
        "paths": {**_generate_paths(), **_model_paths(), **_key_paths(), **_usage_paths(),
                  **_audit_paths(), **_operations_paths(), **_openai_paths()},
        "components": _components(),
    }
