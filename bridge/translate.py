"""JSON bodies ↔ protobuf messages. Type errors become 400s naming the field;
the server checks meaning (ranges, choices), so gRPC callers get the same checks."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import field_mask_pb2, timestamp_pb2

from ai1net.bridge.errors import invalid
from ai1net.client.convert import MAX_DEPTH, struct_to_dict, value_to_python
from ai1net.server import rules
from ai1net.v1 import audit_pb2, generate_pb2, keys_pb2, registry_pb2, usage_pb2

JSON = dict[str, Any]


# -- type checks ---------------------------------------------------------------------------


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(field, "must be a number")
    return float(value)


def _integer(value: Any, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
            or value >= 2**32:
        raise invalid(field, f"must be an integer ≥ {minimum}")
    return value


def _count(value: Any, field: str) -> int:
    """A whole count ≥ 0 that fits an int64 (usage over a period may pass 2^32)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integer: 5.0 and 5e3 are integers too
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise invalid(field, "must be an integer ≥ 0")
    return value


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def _object(value: Any, field: str) -> JSON:
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object")
    return value


def _strings(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(field, "must be a list of strings")
    return value


def _take(body: JSON, name: str, check: Callable[[Any, str], Any], prefix: str = "") -> Any:
    """The checked value of ``body[name]``, or None when absent or null."""
    value = body.get(name)
    return None if value is None else check(value, prefix + name)


# -- generate ------------------------------------------------------------------------------


def parameters_json(parameters: JSON) -> bytes:
    """Parameters as the server reads them (``GenerateRequest.parameters_json``); a value
    too deep for the encoder is the caller's 400, as the server's depth limit is."""
    try:
        return orjson.dumps(parameters)
    except orjson.JSONEncodeError as exc:
        raise invalid("parameters", f"nested more than {MAX_DEPTH} levels deep") from exc


def generate_request(body: JSON) -> tuple[generate_pb2.GenerateRequest, bool]:
    """The request and whether the caller asked to stream."""
    request = generate_pb2.GenerateRequest()
    if "input" not in body or body["input"] is None:
        raise invalid("input", "is required")
    request.input = _string(body["input"], "input")
    if not request.input:
        raise invalid("input", "must not be empty")
    request.model = _take(body, "model", _string) or ""
    parameters = _take(body, "parameters", _object)
    if parameters:
        request.parameters_json = parameters_json(parameters)
    routing = _take(body, "routing", _object)
    if routing:
        _fill_routing(request.routing, routing)
    request.fallbacks.extend(_take(body, "fallbacks", _strings) or ())
    stream = _take(body, "stream", _boolean) or False
    return request, stream


def _fill_routing(routing: generate_pb2.Routing, body: JSON) -> None:
    p = "routing."
    for name in ("type", "strategy"):  # "" would read as the default: refuse it here
        value = _take(body, name, _string, p)
        if value is not None and not rules.GENERATE[p + name].accepts(value):
            raise invalid(p + name, rules.GENERATE[p + name].explain())
        setattr(routing, name, value or "")
    routing.capabilities.extend(_take(body, "capabilities", _strings, p) or ())
    routing.specialties.extend(_take(body, "specialties", _strings, p) or ())
    for name in ("max_latency_ms", "max_price_per_1k_tokens"):
        value = _take(body, name, _number, p)
        if value is not None:
            setattr(routing, name, value)
    hedge = _take(body, "hedge_ms", _integer, p)
    if hedge is not None:
        routing.hedge_ms = hedge


def usage_json(usage: generate_pb2.Usage) -> JSON:
    out: JSON = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.estimated:
        out["estimated"] = True
    return out


def generate_json(response: generate_pb2.GenerateResponse) -> JSON:
    answer = {"id": response.id, "model": response.model,
              "output": value_to_python(response.output), "usage": usage_json(response.usage),
              "latency_ms": response.latency_ms, "cost_usd": response.cost_usd}
    if response.finish_reason:
        answer["finish_reason"] = response.finish_reason
    return answer


# -- registry ------------------------------------------------------------------------------

_SPEC_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "name": _string, "type": _string, "endpoint": _string, "auth_type": _string,
    "cost_efficiency": _string, "description": _string, "api": _string,
    "upstream_model": _string, "health_url": _string,
    "capabilities": _strings, "specialties": _strings,
}


def model_spec(body: JSON) -> tuple[registry_pb2.ModelSpec, list[str]]:
    """The spec and the paths the body sets (the update mask of a PATCH)."""
    spec = registry_pb2.ModelSpec()
    paths: list[str] = []
    for name, check in _SPEC_FIELDS.items():
        value = _take(body, name, check)
        if value is not None:
            field = getattr(spec, name)
            field.extend(value) if isinstance(value, list) else setattr(spec, name, value)
            paths.append(name)
    credentials = _take(body, "credentials", _object)
    if credentials is not None:
        for key, value in credentials.items():
            spec.credentials[key] = _string(value, f"credentials.{key}")
        paths.append("credentials")
    _fill_numbers(body, "pricing", spec.pricing,
                  ("input_per_1k_tokens", "output_per_1k_tokens", "per_request_usd"), paths)
    _fill_numbers(body, "performance", spec.performance,
                  ("avg_latency_ms", "accuracy_score"), paths)
    for name in ("timeout_ms", "first_byte_timeout_ms", "max_response_bytes",
                 "max_event_bytes", "max_concurrency"):
        value = _take(body, name, _integer)
        if value is not None:
            setattr(spec, name, value)
            paths.append(name)
    enabled = _take(body, "enabled", _boolean)
    if enabled is not None:
        spec.enabled = enabled
        paths.append("enabled")
    spec.verify = bool(_take(body, "verify", _boolean))  # an instruction, not a field
    return spec, paths


def _fill_numbers(body: JSON, group: str, target: Any, names: tuple[str, ...],
                  paths: list[str]) -> None:
    values = _take(body, group, _object)
    if values is None:
        return
    for name in names:
        value = _take(values, name, _number, f"{group}.")
        if value is not None:
            setattr(target, name, value)
            paths.append(f"{group}.{name}")


def model_json(model: registry_pb2.Model) -> JSON:
    stats = model.stats
    return {
        "name": model.name, "type": model.type, "endpoint": model.endpoint,
        "auth_type": model.auth_type,
        "pricing": pricing_json(model.pricing),
        "capabilities": list(model.capabilities),
        "performance": {"avg_latency_ms": model.performance.avg_latency_ms,
                        "accuracy_score": model.performance.accuracy_score},
        "cost_efficiency": model.cost_efficiency, "specialties": list(model.specialties),
        "timeout_ms": model.timeout_ms, "first_byte_timeout_ms": model.first_byte_timeout_ms,
        "max_response_bytes": model.max_response_bytes,
        "max_event_bytes": model.max_event_bytes, "max_concurrency": model.max_concurrency,
        "api": model.api or "ai1net", "upstream_model": model.upstream_model,
        "health_url": model.health_url,
        "description": model.description, "owner": model.owner, "enabled": model.enabled,
        "has_credentials": model.has_credentials,
        "created_at": _rfc3339(model.created_at), "updated_at": _rfc3339(model.updated_at),
        "stats": {"requests": stats.requests, "error_rate": stats.error_rate,
                  "p50_latency_ms": stats.p50_latency_ms, "ttft_p50_ms": stats.ttft_p50_ms,
                  "health": stats.health or "healthy", "feedback_count": stats.feedback_count,
                  "observed_quality": stats.observed_quality},
        "verification": {"verified_at": _rfc3339(model.verification.verified_at),
                         "passed": model.verification.passed,
                         "summary": model.verification.summary}
        if model.HasField("verification") else None,
    }


def check_report_json(report: registry_pb2.CheckReport) -> JSON:
    return {"endpoint": report.endpoint, "passed": report.passed, "summary": report.summary,
            "checks": [{"name": c.name, "result": c.result, "detail": c.detail}
                       for c in report.checks],
            "latency_ms": {"p50": report.latency_p50_ms, "p95": report.latency_p95_ms}}


def pricing_json(pricing: registry_pb2.Pricing) -> JSON:
    return {"input_per_1k_tokens": pricing.input_per_1k_tokens,
            "output_per_1k_tokens": pricing.output_per_1k_tokens,
            "per_request_usd": pricing.per_request_usd}


def update_mask(paths: list[str]) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


# -- keys ----------------------------------------------------------------------------------


def key_request(body: JSON, into: keys_pb2.CreateKeyRequest | keys_pb2.UpdateKeyRequest,
                ) -> list[str]:
    """Fill a create/update request from JSON; the paths set (for an update mask)."""
    paths: list[str] = []
    if isinstance(into, keys_pb2.CreateKeyRequest):
        into.role = _take(body, "role", _string) or ""
    name = _take(body, "name", _string)
    if name is not None:
        into.name = name
        paths.append("name")
    limit = _take(body, "rate_limit", _object)
    if limit is not None:
        for field in ("requests_per_minute", "tokens_per_minute"):
            value = _take(limit, field, _integer, "rate_limit.")
            if value is not None:
                setattr(into.rate_limit, field, value)
        paths.append("rate_limit")
    if "budget_usd" in body:
        if body["budget_usd"] is not None:
            into.budget_usd = _number(body["budget_usd"], "budget_usd")
        paths.append("budget_usd")
    return paths


def key_json(key: keys_pb2.Key) -> JSON:
    out: JSON = {"id": key.id, "name": key.name, "role": key.role, "prefix": key.prefix,
                 "rate_limit": {"requests_per_minute": key.rate_limit.requests_per_minute,
                                "tokens_per_minute": key.rate_limit.tokens_per_minute},
                 "budget_usd": key.budget_usd if key.HasField("budget_usd") else None,
                 "created_at": _rfc3339(key.created_at), "revoked": key.revoked}
    if key.key:
        out["key"] = key.key
    return out


# -- usage ---------------------------------------------------------------------------------


def totals_json(totals: usage_pb2.UsageTotals) -> JSON:
    return {"requests": totals.requests, "tokens_processed": totals.tokens_processed,
            "input_tokens": totals.input_tokens, "output_tokens": totals.output_tokens,
            "errors": totals.errors, "cost_usd": totals.cost_usd}


def usage_report_json(response: usage_pb2.GetUsageResponse) -> JSON:
    return {"usage": totals_json(response.usage),
            "groups": [{"group": g.group, "usage": totals_json(g.usage)}
                       for g in response.groups]}


def report_request(body: JSON) -> usage_pb2.ReportUsageRequest:
    """A provider's own count (POST /v1/usage/reports); the server checks the period."""
    message = usage_pb2.ReportUsageRequest()
    for name in ("model", "from", "to"):
        value = _take(body, name, _string)
        if value is not None:
            setattr(message, name, value)
    counts = _take(body, "usage", _object) or {}
    for name in ("requests", "tokens_processed"):
        value = _take(counts, name, _count, "usage.")
        if value is not None:
            setattr(message.usage, name, value)
    return message


def reconciliation_json(response: usage_pb2.GetReconciliationResponse) -> JSON:
    out = {"model": response.model, "gateway": counts_json(response.gateway),
           "provider": counts_json(response.provider),
           "difference": counts_json(response.difference)}
    # An unbounded end of the period is left out.
    for name in ("from", "to"):
        if getattr(response, name):
            out[name] = getattr(response, name)
    return out


def statement_json(statement: usage_pb2.Statement) -> JSON:
    return {"month": statement.month, "provider": statement.provider,
            "from": getattr(statement, "from"), "to": statement.to,
            "models": [{"model": line.model, "requests": line.gateway.requests,
                        "tokens_processed": line.gateway.tokens_processed,
                        "earnings_usd": line.earnings_usd,
                        "reported": counts_json(line.reported),
                        "difference": counts_json(line.difference)}
                       for line in statement.models]}


STATEMENT_COLUMNS = ("model", "requests", "tokens_processed", "earnings_usd",
                     "reported_requests", "reported_tokens_processed",
                     "difference_requests", "difference_tokens_processed")


def statement_csv(statement: usage_pb2.Statement) -> str:
    """The statement as CSV: a header line, then one line per model."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    for line in statement.models:
        writer.writerow((line.model, line.gateway.requests, line.gateway.tokens_processed,
                         f"{line.earnings_nanos / 1e9:.9f}", line.reported.requests,
                         line.reported.tokens_processed, line.difference.requests,
                         line.difference.tokens_processed))
    return out.getvalue()


def counts_json(counts: usage_pb2.UsageCounts) -> JSON:
    return {"requests": counts.requests, "tokens_processed": counts.tokens_processed}


def feedback_request(body: JSON) -> usage_pb2.SubmitFeedbackRequest:
    """A rating (POST /v1/feedback); the server checks the bounds."""
    message = usage_pb2.SubmitFeedbackRequest()
    for name, check in (("generation_id", _string), ("comment", _string)):
        value = _take(body, name, check)
        if value is not None:
            setattr(message, name, value)
    if body.get("score") is None:
        raise invalid("score", "is required")
    message.score = _number(body["score"], "score")
    return message


def feedback_json(feedback: usage_pb2.Feedback) -> JSON:
    return {"generation_id": feedback.generation_id, "model": feedback.model,
            "score": feedback.score, "comment": feedback.comment,
            "created_at": _rfc3339(feedback.created_at)}


def audit_event_json(event: audit_pb2.AuditEvent) -> JSON:
    return {"id": event.id, "at": _rfc3339(event.at), "actor_key_id": event.actor_key_id,
            "action": event.action, "target": event.target, "request_id": event.request_id,
            "changes": struct_to_dict(event.changes)}


def _rfc3339(stamp: timestamp_pb2.Timestamp) -> str:
    return stamp.ToJsonString()
