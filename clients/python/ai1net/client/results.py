"""Typed answers: the API's messages as frozen dataclasses of plain Python values.

Whole numbers are ``int``; money is an exact ``int`` of nano-dollars (``*_nanos``) with the
dollar figure as a ``float`` property beside it; times are aware ``datetime`` objects.
Fields a newer gateway sends that this client does not know yet land in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from ai1net.client.convert import value_to_python
from ai1net.client.money import nanos_to_usd, usd_to_nanos
from ai1net.v1 import generate_pb2, keys_pb2, registry_pb2, usage_pb2

# -- generate -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    # True when the provider sent no counts and the gateway estimated them.
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the gateway reports about one answered call."""

    id: str
    model: str
    usage: TokenUsage
    latency_ms: int
    cost_nanos: int
    ttft_ms: int = 0
    attempts: int = 0
    route: str = ""
    # Why the provider stopped ("stop", "length", …), when it said.
    finish_reason: str = ""

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation(Outcome):
    """A unary answer; ``output`` is a string (text) or a dict (``image_url``, ``audio_url``)."""

    output: Any


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of streamed text."""

    text: str


@dataclass(frozen=True, slots=True)
class Output:
    """The whole output of an image or audio model, streamed as one event."""

    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Outcome):
    """The last event of a stream."""


StreamEvent = Delta | Output | Done


def generation(message: generate_pb2.GenerateResponse) -> Generation:
    return Generation(output=value_to_python(message.output), **_outcome(message))


def stream_event(message: generate_pb2.GenerateStreamResponse) -> StreamEvent:
    if message.done:
        return Done(**_outcome(message))
    if message.HasField("delta"):
        return Delta(message.delta)
    return Output(value_to_python(message.output))


def _outcome(message: generate_pb2.GenerateResponse | generate_pb2.GenerateStreamResponse,
             ) -> dict[str, Any]:
    usage = message.usage
    return {"id": message.id, "model": message.model,
            "usage": TokenUsage(usage.input_tokens, usage.output_tokens, usage.estimated),
            "latency_ms": message.latency_ms,
            "cost_nanos": _nanos(message.cost_nanos, message.cost_usd),
            "ttft_ms": message.ttft_ms, "attempts": message.attempts, "route": message.route,
            "finish_reason": message.finish_reason}


# -- registry -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pricing:
    input_per_1k_nanos: int = 0
    output_per_1k_nanos: int = 0
    per_request_nanos: int = 0

    @property
    def per_request_usd(self) -> float:
        return nanos_to_usd(self.per_request_nanos)

    @property
    def input_per_1k_tokens(self) -> float:
        return nanos_to_usd(self.input_per_1k_nanos)

    @property
    def output_per_1k_tokens(self) -> float:
        return nanos_to_usd(self.output_per_1k_nanos)


@dataclass(frozen=True, slots=True)
class Performance:
    avg_latency_ms: float = 0.0
    accuracy_score: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelStats:
    """What the gateway observed of a model."""

    requests: int = 0
    error_rate: float = 0.0
    p50_latency_ms: float = 0.0
    ttft_p50_ms: float = 0.0
    health: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    name: str
    type: str
    endpoint: str
    auth_type: str
    pricing: Pricing
    capabilities: tuple[str, ...]
    performance: Performance
    cost_efficiency: str
    specialties: tuple[str, ...]
    timeout_ms: int
    first_byte_timeout_ms: int
    description: str
    owner: str
    enabled: bool
    created_at: datetime | None
    updated_at: datetime | None
    stats: ModelStats
    # Whether a credential is stored; its value is never returned.
    has_credentials: bool
    # What the gateway accepts from the provider, and how many calls at once.
    max_response_bytes: int = 0
    max_event_bytes: int = 0
    max_concurrency: int = 0
    # "ai1net", or "openai" for an OpenAI-compatible server asked for upstream_model.
    api: str = "ai1net"
    upstream_model: str = ""
    # A URL the gateway GETs on a schedule; "" when none.
    health_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_MODEL_FIELDS = frozenset(Model.__dataclass_fields__) - {"extra"}


def model(message: registry_pb2.Model) -> Model:
    stats = message.stats
    return Model(
        name=message.name, type=message.type, endpoint=message.endpoint,
        auth_type=message.auth_type,
        pricing=Pricing(usd_to_nanos(message.pricing.input_per_1k_tokens),
                        usd_to_nanos(message.pricing.output_per_1k_tokens),
                        usd_to_nanos(message.pricing.per_request_usd)),
        capabilities=tuple(message.capabilities),
        performance=Performance(message.performance.avg_latency_ms,
                                message.performance.accuracy_score),
        cost_efficiency=message.cost_efficiency, specialties=tuple(message.specialties),
        timeout_ms=message.timeout_ms, first_byte_timeout_ms=message.first_byte_timeout_ms,
        description=message.description, owner=message.owner, enabled=message.enabled,
        created_at=_time(message, "created_at"), updated_at=_time(message, "updated_at"),
        stats=ModelStats(stats.requests, stats.error_rate, stats.p50_latency_ms,
                         stats.ttft_p50_ms, stats.health),
        has_credentials=message.has_credentials,
        max_response_bytes=message.max_response_bytes, max_event_bytes=message.max_event_bytes,
        max_concurrency=message.max_concurrency, api=message.api or "ai1net",
        upstream_model=message.upstream_model, health_url=message.health_url,
        extra=_extra(message, _MODEL_FIELDS))


# -- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per minute; 0 means unlimited."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    id: str
    name: str
    role: str
    # First characters of the secret, to recognise it.
    prefix: str
    rate_limit: RateLimit
    # None: no budget.
    budget_nanos: int | None
    spent_nanos: int
    created_at: datetime | None
    revoked: bool
    # The secret itself: set only on the answer to create_key, shown this once.
    key: str | None = None

    @property
    def budget_usd(self) -> float | None:
        return None if self.budget_nanos is None else nanos_to_usd(self.budget_nanos)

    @property
    def spent_usd(self) -> float:
        return nanos_to_usd(self.spent_nanos)


def key(message: keys_pb2.Key) -> Key:
    limit = message.rate_limit
    return Key(
        id=message.id, name=message.name, role=message.role, prefix=message.prefix,
        rate_limit=RateLimit(limit.requests_per_minute, limit.tokens_per_minute),
        budget_nanos=usd_to_nanos(message.budget_usd) if message.HasField("budget_usd")
        else None,
        spent_nanos=usd_to_nanos(message.spent_usd), created_at=_time(message, "created_at"),
        revoked=message.revoked, key=message.key or None)


# -- usage ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    tokens_processed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    # For a provider: its earnings.
    cost_nanos: int = 0

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


@dataclass(frozen=True, slots=True)
class UsageGroup:
    group: str
    usage: UsageTotals


@dataclass(frozen=True, slots=True)
class UsageSummary:
    usage: UsageTotals
    groups: tuple[UsageGroup, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageCounts:
    requests: int = 0
    tokens_processed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    """The gateway's count beside the provider's; ``difference`` is provider minus gateway."""

    model: str
    gateway: UsageCounts
    provider: UsageCounts
    difference: UsageCounts
    start: datetime | None
    end: datetime | None


def usage_summary(message: usage_pb2.GetUsageResponse) -> UsageSummary:
    return UsageSummary(_totals(message.usage),
                        tuple(UsageGroup(g.group, _totals(g.usage)) for g in message.groups))


def reconciliation(message: usage_pb2.GetReconciliationResponse) -> Reconciliation:
    return Reconciliation(
        model=message.model, gateway=_counts(message.gateway),
        provider=_counts(message.provider), difference=_counts(message.difference),
        start=_rfc3339(getattr(message, "from")), end=_rfc3339(message.to))


def _totals(message: usage_pb2.UsageTotals) -> UsageTotals:
    return UsageTotals(message.requests, message.tokens_processed, message.input_tokens,
                       message.output_tokens, message.errors,
                       _nanos(message.cost_nanos, message.cost_usd))


def _counts(message: usage_pb2.UsageCounts) -> UsageCounts:
    return UsageCounts(message.requests, message.tokens_processed)


# -- helpers --------------------------------------------------------------------------------


def _nanos(nanos: int, usd: float) -> int:
    """The exact figure when the gateway sent it, else the dollars converted."""
    return nanos if nanos or not usd else usd_to_nanos(usd)


def _time(message: Message, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def _rfc3339(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _extra(message: Message, known: frozenset[str]) -> dict[str, Any]:
    """Fields set on ``message`` that this client has no attribute for."""
    return {descriptor.name: _plain(descriptor, value)
            for descriptor, value in message.ListFields() if descriptor.name not in known}


def _plain(descriptor: Any, value: Any) -> Any:
    """A field's value as plain Python: messages as dicts, 64-bit integers still ints."""
    if descriptor.message_type is None:
        return list(value) if descriptor.is_repeated else value
    if descriptor.message_type.GetOptions().map_entry:
        return {k: _message(v) if isinstance(v, Message) else v for k, v in value.items()}
    if descriptor.is_repeated:
        return [_message(item) for item in value]
    return _message(value)


def _message(message: Message) -> Any:
    if isinstance(message, timestamp_pb2.Timestamp):
        return message.ToDatetime(tzinfo=UTC)
    return _extra(message, frozenset())
