"""Every API call as data: its method, its request built from Python arguments, and how its
reply becomes a typed result. ``Client`` and ``AsyncClient`` only carry these out."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from google.protobuf import field_mask_pb2, json_format, message_factory
from google.protobuf.message import Message

from ai1net.client import results
from ai1net.client.errors import InvalidArgument
from ai1net.client.results import RateLimit
from ai1net.v1 import generate_pb2, keys_pb2, registry_pb2, usage_pb2

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    reply: type[Message]
    # Safe to send again: it reads and changes nothing.
    idempotent: bool = False


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    method: Method
    request: Message
    convert: Callable[[Any], R]


def _method(module: Any, service: str, name: str, *, idempotent: bool = False) -> Method:
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    return Method(f"/{descriptor.containing_service.full_name}/{name}",
                  message_factory.GetMessageClass(descriptor.output_type), idempotent)


GENERATE = _method(generate_pb2, "GenerateService", "Generate")
GENERATE_STREAM = _method(generate_pb2, "GenerateService", "GenerateStream")
REGISTER_MODEL = _method(registry_pb2, "RegistryService", "RegisterModel")
GET_MODEL = _method(registry_pb2, "RegistryService", "GetModel", idempotent=True)
LIST_MODELS = _method(registry_pb2, "RegistryService", "ListModels", idempotent=True)
UPDATE_MODEL = _method(registry_pb2, "RegistryService", "UpdateModel")
DELETE_MODEL = _method(registry_pb2, "RegistryService", "DeleteModel")
CREATE_KEY = _method(keys_pb2, "KeyService", "CreateKey")
LIST_KEYS = _method(keys_pb2, "KeyService", "ListKeys", idempotent=True)
UPDATE_KEY = _method(keys_pb2, "KeyService", "UpdateKey")
REVOKE_KEY = _method(keys_pb2, "KeyService", "RevokeKey")
GET_USAGE = _method(usage_pb2, "UsageService", "GetUsage", idempotent=True)
REPORT_USAGE = _method(usage_pb2, "UsageService", "ReportUsage")
GET_RECONCILIATION = _method(usage_pb2, "UsageService", "GetReconciliation", idempotent=True)


class Unset(enum.Enum):
    """An argument not given: a budget left as it is, the client's own timeout."""

    UNSET = "unset"


UNSET = Unset.UNSET
# Seconds; None: no deadline; UNSET: the client's.
Timeout = float | Unset | None
# An aware datetime, or RFC 3339 text; None: unbounded.
Time = datetime | str | None


def _none(_reply: Any) -> None:
    return None


# -- generate -------------------------------------------------------------------------------


def generate_request(input: str, *, model: str | None, parameters: Mapping[str, Any] | None,
                     routing: Mapping[str, Any] | None, fallbacks: Sequence[str],
                     ) -> generate_pb2.GenerateRequest:
    request = generate_pb2.GenerateRequest(input=input, model=model or "",
                                           fallbacks=list(fallbacks))
    if parameters:
        _parse({"parameters": dict(parameters)}, request, "parameters")
    if routing is not None:
        _parse({"routing": dict(routing)}, request, "routing")
    return request


def generate(request: generate_pb2.GenerateRequest) -> Call[results.Generation]:
    return Call(GENERATE, request, results.generation)


def generate_stream(request: generate_pb2.GenerateRequest) -> Call[results.StreamEvent]:
    return Call(GENERATE_STREAM, request, results.stream_event)


# -- registry -------------------------------------------------------------------------------


def register_model(spec: Mapping[str, Any]) -> Call[results.Model]:
    """``spec`` reads like the HTTP body of ``POST /v1/models``."""
    request = registry_pb2.RegisterModelRequest()
    _parse(spec, request.model, "model")
    return Call(REGISTER_MODEL, request, results.model)


def get_model(name: str) -> Call[results.Model]:
    return Call(GET_MODEL, registry_pb2.GetModelRequest(name=name), results.model)


def list_models(*, type: str, capability: str, specialty: str, page_size: int,
                page_token: str) -> Call[tuple[list[results.Model], str]]:
    request = registry_pb2.ListModelsRequest(type=type, capability=capability,
                                             specialty=specialty, page_size=page_size,
                                             page_token=page_token)
    return Call(LIST_MODELS, request, _model_page)


def _model_page(reply: registry_pb2.ListModelsResponse) -> tuple[list[results.Model], str]:
    return [results.model(m) for m in reply.models], reply.next_page_token


def update_model(name: str, changes: Mapping[str, Any]) -> Call[results.Model]:
    """Only the fields in ``changes`` change; a nested object changes only the keys it has."""
    request = registry_pb2.UpdateModelRequest(name=name)
    _parse(changes, request.model, "model")
    request.update_mask.CopyFrom(field_mask_pb2.FieldMask(
        paths=_paths(changes, registry_pb2.ModelSpec.DESCRIPTOR)))
    return Call(UPDATE_MODEL, request, results.model)


def delete_model(name: str) -> Call[None]:
    return Call(DELETE_MODEL, registry_pb2.DeleteModelRequest(name=name), _none)


def _paths(changes: Mapping[str, Any], descriptor: Any, prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, value in changes.items():
        field = descriptor.fields_by_name.get(name)
        nested = field is not None and field.message_type is not None \
            and not field.message_type.GetOptions().map_entry and isinstance(value, Mapping)
        if nested and value:
            paths.extend(_paths(value, field.message_type, f"{prefix}{name}."))
        else:
            paths.append(prefix + name)
    return paths


# -- keys -----------------------------------------------------------------------------------


def create_key(role: str, *, name: str, rate_limit: RateLimit | None,
               budget_usd: float | None) -> Call[results.Key]:
    request = keys_pb2.CreateKeyRequest(role=role, name=name)
    if rate_limit is not None:
        request.rate_limit.CopyFrom(_rate_limit(rate_limit))
    if budget_usd is not None:
        request.budget_usd = budget_usd
    return Call(CREATE_KEY, request, results.key)


def list_keys(*, include_revoked: bool) -> Call[list[results.Key]]:
    return Call(LIST_KEYS, keys_pb2.ListKeysRequest(include_revoked=include_revoked),
                _key_list)


def _key_list(reply: keys_pb2.ListKeysResponse) -> list[results.Key]:
    return [results.key(k) for k in reply.keys]


def update_key(id: str, *, name: str | None, rate_limit: RateLimit | None,
               budget_usd: float | Unset | None) -> Call[results.Key]:
    """``budget_usd=None`` removes the budget; UNSET leaves it."""
    request = keys_pb2.UpdateKeyRequest(id=id)
    if name is not None:
        request.name = name
        request.update_mask.paths.append("name")
    if rate_limit is not None:
        request.rate_limit.CopyFrom(_rate_limit(rate_limit))
        request.update_mask.paths.append("rate_limit")
    if budget_usd is not UNSET:
        if budget_usd is not None:
            request.budget_usd = budget_usd
        request.update_mask.paths.append("budget_usd")
    return Call(UPDATE_KEY, request, results.key)


def revoke_key(id: str) -> Call[None]:
    return Call(REVOKE_KEY, keys_pb2.RevokeKeyRequest(id=id), _none)


def _rate_limit(limit: RateLimit) -> keys_pb2.RateLimit:
    return keys_pb2.RateLimit(requests_per_minute=limit.requests_per_minute,
                              tokens_per_minute=limit.tokens_per_minute)


# -- usage ----------------------------------------------------------------------------------


def get_usage(*, model: str, group_by: str, start: Time,
              end: Time) -> Call[results.UsageSummary]:
    request = usage_pb2.GetUsageRequest(model=model, group_by=group_by, to=_rfc3339(end),
                                        **{"from": _rfc3339(start)})
    return Call(GET_USAGE, request, results.usage_summary)


def report_usage(model: str, *, start: Time, end: Time, requests: int,
                 tokens_processed: int) -> Call[str]:
    request = usage_pb2.ReportUsageRequest(
        model=model, to=_rfc3339(end), **{"from": _rfc3339(start)},
        usage=usage_pb2.UsageCounts(requests=requests, tokens_processed=tokens_processed))
    return Call(REPORT_USAGE, request, _report_id)


def _report_id(reply: usage_pb2.ReportUsageResponse) -> str:
    return reply.id


def get_reconciliation(model: str, *, start: Time,
                       end: Time) -> Call[results.Reconciliation]:
    request = usage_pb2.GetReconciliationRequest(model=model, to=_rfc3339(end),
                                                 **{"from": _rfc3339(start)})
    return Call(GET_RECONCILIATION, request, results.reconciliation)


def _rfc3339(moment: Time) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.isoformat()


# -- helpers --------------------------------------------------------------------------------


def _parse(data: Mapping[str, Any], into: Message, field: str) -> None:
    """JSON-shaped ``data`` into a message; a misfit is InvalidArgument before any call."""
    try:
        json_format.ParseDict(dict(data), into)
    except json_format.ParseError as exc:
        raise InvalidArgument(f"{field}: {exc}", metadata={"field": field}) from exc
