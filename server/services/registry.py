"""RegistryService: model registration, lookup, listing, partial update, soft delete."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from google.protobuf import empty_pb2
from grpc import aio

from ai1net.client.convert import timestamp
from ai1net.server.auth import require_role
from ai1net.server.conformance import Checker, Report, Target
from ai1net.server.errors import InvalidArgument
from ai1net.server.health import Stats
from ai1net.server.money import nanos_to_usd
from ai1net.server.registry import ModelChanges, ModelRecord, Registry, auth_headers
from ai1net.server.routing import NO_RATINGS, Rated, Ratings, quality_of
from ai1net.v1 import registry_pb2, registry_pb2_grpc

Context = aio.ServicerContext[Any, Any]
# Who may change models; ownership is the registry's to check.
PROVIDERS = ("admin", "provider")

# ModelSpec paths an update may name, and the ModelChanges fields each one sets.
UPDATABLE = {
    "name": ("name",), "type": ("type",), "endpoint": ("endpoint",),
    "auth_type": ("auth_type",), "credentials": ("credentials",),
    "pricing": ("input_per_1k_tokens", "output_per_1k_tokens", "per_request_usd"),
    "pricing.input_per_1k_tokens": ("input_per_1k_tokens",),
    "pricing.output_per_1k_tokens": ("output_per_1k_tokens",),
    "pricing.per_request_usd": ("per_request_usd",),
    "capabilities": ("capabilities",), "specialties": ("specialties",),
    "performance": ("avg_latency_ms", "accuracy_score"),
    "performance.avg_latency_ms": ("avg_latency_ms",),
    "performance.accuracy_score": ("accuracy_score",),
    "cost_efficiency": ("cost_efficiency",), "timeout_ms": ("timeout_ms",),
    "first_byte_timeout_ms": ("first_byte_timeout_ms",), "enabled": ("enabled",),
    "max_response_bytes": ("max_response_bytes",), "max_event_bytes": ("max_event_bytes",),
    "max_concurrency": ("max_concurrency",), "api": ("api",),
    "upstream_model": ("upstream_model",), "health_url": ("health_url",),
    "description": ("description",),
}


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, *, registry: Registry, stats: Callable[[str], Stats],
                 checker: Checker, rated: Rated = lambda _name: NO_RATINGS) -> None:
        self._registry = registry
        self._stats = stats
        self._checker = checker
        self._rated = rated

    async def RegisterModel(self, request: registry_pb2.RegisterModelRequest,
                            context: Context) -> registry_pb2.Model:
        """With ``verify``, the conformance check runs first and a failure registers
        nothing (400 naming the failed checks)."""
        caller = require_role(*PROVIDERS)
        changes = changes_from(request.model, paths=None)
        report = None
        if request.model.verify:
            fields = await self._registry.validated(changes)
            report = await self._checker.run(_target(fields))
            if not report.passed:
                raise InvalidArgument("verify", f"the conformance check failed: "
                                                f"{report.summary()}")
        model = await self._registry.register(caller, changes)
        if report is not None:
            model = await self._registry.verified(model.name, passed=True,
                                                  summary=report.summary())
        return self.to_proto(model)

    async def CheckModel(self, request: registry_pb2.CheckModelRequest,
                         context: Context) -> registry_pb2.CheckReport:
        caller = require_role(*PROVIDERS)
        model = self._registry.owned(caller, request.name)
        report = await self._checker.run(Target(
            endpoint=model.endpoint, type=model.type, api=model.api, auth=model.auth_headers,
            upstream_model=model.upstream_model or model.name))
        await self._registry.verified(model.name, passed=report.passed,
                                      summary=report.summary())
        return report_proto(report)

    async def GetModel(self, request: registry_pb2.GetModelRequest,
                       context: Context) -> registry_pb2.Model:
        return self.to_proto(self._registry.get(request.name))

    async def ListModels(self, request: registry_pb2.ListModelsRequest,
                         context: Context) -> registry_pb2.ListModelsResponse:
        models, token = self._registry.list(
            type=request.type, capability=request.capability, specialty=request.specialty,
            page_size=request.page_size, page_token=request.page_token)
        return registry_pb2.ListModelsResponse(models=[self.to_proto(m) for m in models],
                                               next_page_token=token)

    async def UpdateModel(self, request: registry_pb2.UpdateModelRequest,
                          context: Context) -> registry_pb2.Model:
        caller = require_role(*PROVIDERS)
        paths = list(request.update_mask.paths)
        unknown = [p for p in paths if p not in UPDATABLE]
        if unknown:
            raise InvalidArgument("update_mask", f"unknown field {unknown[0]!r}")
        changes = changes_from(request.model, paths=paths)
        model = await self._registry.update(caller, request.name, changes)
        return self.to_proto(model)

    async def DeleteModel(self, request: registry_pb2.DeleteModelRequest,
                          context: Context) -> empty_pb2.Empty:
        caller = require_role(*PROVIDERS)
        await self._registry.delete(caller, request.name)
        return empty_pb2.Empty()

    def to_proto(self, model: ModelRecord) -> registry_pb2.Model:
        stats = self._stats(model.name)
        ratings: Ratings = self._rated(model.name)
        return registry_pb2.Model(
            name=model.name, type=model.type, endpoint=model.endpoint,
            auth_type=model.auth_type,
            pricing=registry_pb2.Pricing(
                input_per_1k_tokens=nanos_to_usd(model.input_price_nanos),
                output_per_1k_tokens=nanos_to_usd(model.output_price_nanos),
                per_request_usd=nanos_to_usd(model.request_price_nanos)),
            capabilities=model.capabilities,
            performance=registry_pb2.Performance(avg_latency_ms=model.avg_latency_ms,
                                                 accuracy_score=model.accuracy_score),
            cost_efficiency=model.cost_efficiency, specialties=model.specialties,
            timeout_ms=model.timeout_ms, first_byte_timeout_ms=model.first_byte_timeout_ms,
            max_response_bytes=model.max_response_bytes, max_event_bytes=model.max_event_bytes,
            max_concurrency=model.max_concurrency, api=model.api,
            upstream_model=model.upstream_model, health_url=model.health_url,
            description=model.description,
            owner=model.owner, enabled=model.enabled,
            created_at=timestamp(model.created_at), updated_at=timestamp(model.updated_at),
            stats=registry_pb2.ModelStats(
                requests=stats.requests, error_rate=stats.error_rate,
                p50_latency_ms=stats.p50_latency_ms, ttft_p50_ms=stats.ttft_p50_ms,
                health=stats.health, feedback_count=ratings.count,
                observed_quality=quality_of(model, ratings)),
            has_credentials=model.has_credentials,
            verification=registry_pb2.Verification(
                verified_at=timestamp(model.verification.verified_at),
                passed=model.verification.passed, summary=model.verification.summary)
            if model.verification is not None else None)


def changes_from(spec: registry_pb2.ModelSpec, *, paths: list[str] | None) -> ModelChanges:
    """ModelChanges from a spec: every field given (register) or those in ``paths``."""
    changes = ModelChanges(
        name=spec.name or None, type=spec.type or None, endpoint=spec.endpoint or None,
        auth_type=spec.auth_type or None, credentials=dict(spec.credentials) or None,
        input_per_1k_tokens=spec.pricing.input_per_1k_tokens,
        output_per_1k_tokens=spec.pricing.output_per_1k_tokens,
        per_request_usd=spec.pricing.per_request_usd,
        capabilities=list(spec.capabilities), specialties=list(spec.specialties),
        avg_latency_ms=spec.performance.avg_latency_ms,
        accuracy_score=spec.performance.accuracy_score,
        cost_efficiency=spec.cost_efficiency or None,
        timeout_ms=spec.timeout_ms if spec.HasField("timeout_ms") else None,
        first_byte_timeout_ms=spec.first_byte_timeout_ms
        if spec.HasField("first_byte_timeout_ms") else None,
        max_response_bytes=_optional(spec, "max_response_bytes"),
        max_event_bytes=_optional(spec, "max_event_bytes"),
        max_concurrency=_optional(spec, "max_concurrency"),
        enabled=spec.enabled if spec.HasField("enabled") else None,
        description=spec.description or None,
        api=spec.api or None, upstream_model=spec.upstream_model or None,
        health_url=spec.health_url or None,
    )
    if paths is None:
        return changes
    chosen = {field for path in paths for field in UPDATABLE[path]}
    for field in dataclasses.fields(changes):
        if field.name not in chosen:
            setattr(changes, field.name, None)
    # An update naming a field clears it when the new value is empty.
    if "credentials" in chosen and changes.credentials is None:
        changes.credentials = {}
    if "description" in chosen and changes.description is None:
        changes.description = ""
    if "upstream_model" in chosen and changes.upstream_model is None:
        changes.upstream_model = ""
    if "health_url" in chosen and changes.health_url is None:
        changes.health_url = ""
    return changes


def _optional(spec: registry_pb2.ModelSpec, name: str) -> int | None:
    value: int = getattr(spec, name)
    return value if spec.HasField(name) else None


def _target(fields: dict[str, object]) -> Target:
    """The conformance target of a registration's checked fields."""
    credentials = fields.get("credentials") or {}
    assert isinstance(credentials, dict)
    name, api = str(fields["name"]), str(fields.get("api") or "ai1net")
    return Target(endpoint=str(fields["endpoint"]), type=str(fields["type"]), api=api,
                  auth=auth_headers(str(fields.get("auth_type") or "none"), credentials),
                  upstream_model=str(fields.get("upstream_model") or name))


def report_proto(report: Report) -> registry_pb2.CheckReport:
    return registry_pb2.CheckReport(
        endpoint=report.endpoint, passed=report.passed, summary=report.summary(),
        checks=[registry_pb2.CheckResult(name=c.name, result=c.result, detail=c.detail)
                for c in report.checks],
        latency_p50_ms=report.p50_ms, latency_p95_ms=report.p95_ms)
