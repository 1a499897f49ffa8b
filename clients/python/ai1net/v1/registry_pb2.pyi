import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Pricing(_message.Message):
    __slots__ = ("input_per_1k_tokens", "output_per_1k_tokens", "per_request_usd")
    INPUT_PER_1K_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_1K_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PER_REQUEST_USD_FIELD_NUMBER: _ClassVar[int]
    input_per_1k_tokens: float
    output_per_1k_tokens: float
    per_request_usd: float
    def __init__(self, input_per_1k_tokens: _Optional[float] = ..., output_per_1k_tokens: _Optional[float] = ..., per_request_usd: _Optional[float] = ...) -> None: ...

class Performance(_message.Message):
    __slots__ = ("avg_latency_ms", "accuracy_score")
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_SCORE_FIELD_NUMBER: _ClassVar[int]
    avg_latency_ms: float
    accuracy_score: float
    def __init__(self, avg_latency_ms: _Optional[float] = ..., accuracy_score: _Optional[float] = ...) -> None: ...

class ModelStats(_message.Message):
    __slots__ = ("requests", "error_rate", "p50_latency_ms", "ttft_p50_ms", "health", "feedback_count", "observed_quality")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_QUALITY_FIELD_NUMBER: _ClassVar[int]
    requests: int
    error_rate: float
    p50_latency_ms: float
    ttft_p50_ms: float
    health: str
    feedback_count: int
    observed_quality: float
    def __init__(self, requests: _Optional[int] = ..., error_rate: _Optional[float] = ..., p50_latency_ms: _Optional[float] = ..., ttft_p50_ms: _Optional[float] = ..., health: _Optional[str] = ..., feedback_count: _Optional[int] = ..., observed_quality: _Optional[float] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("name", "type", "endpoint", "auth_type", "credentials", "pricing", "capabilities", "performance", "cost_efficiency", "specialties", "timeout_ms", "first_byte_timeout_ms", "enabled", "description", "max_response_bytes", "max_event_bytes", "max_concurrency", "api", "upstream_model", "verify", "health_url")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    COST_EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    SPECIALTIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_BYTE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    endpoint: str
    auth_type: str
    credentials: _containers.ScalarMap[str, str]
    pricing: Pricing
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    performance: Performance
    cost_efficiency: str
    specialties: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    first_byte_timeout_ms: int
    enabled: bool
    description: str
    max_response_bytes: int
    max_event_bytes: int
    max_concurrency: int
    api: str
    upstream_model: str
    verify: bool
    health_url: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., endpoint: _Optional[str] = ..., auth_type: _Optional[str] = ..., credentials: _Optional[_Mapping[str, str]] = ..., pricing: _Optional[_Union[Pricing, _Mapping]] = ..., capabilities: _Optional[_Iterable[str]] = ..., performance: _Optional[_Union[Performance, _Mapping]] = ..., cost_efficiency: _Optional[str] = ..., specialties: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ..., first_byte_timeout_ms: _Optional[int] = ..., enabled: _Optional[bool] = ..., description: _Optional[str] = ..., max_response_bytes: _Optional[int] = ..., max_event_bytes: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., api: _Optional[str] = ..., upstream_model: _Optional[str] = ..., verify: _Optional[bool] = ..., health_url: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "type", "endpoint", "auth_type", "pricing", "capabilities", "performance", "cost_efficiency", "specialties", "timeout_ms", "first_byte_timeout_ms", "description", "owner", "enabled", "created_at", "updated_at", "stats", "has_credentials", "max_response_bytes", "max_event_bytes", "max_concurrency", "api", "upstream_model", "verification", "health_url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    PERFORMANCE_FIELD_NUMBER: _ClassVar[int]
    COST_EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    SPECIALTIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_BYTE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    HAS_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    endpoint: str
    auth_type: str
    pricing: Pricing
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    performance: Performance
    cost_efficiency: str
    specialties: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    first_byte_timeout_ms: int
    description: str
    owner: str
    enabled: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    stats: ModelStats
    has_credentials: bool
    max_response_bytes: int
    max_event_bytes: int
    max_concurrency: int
    api: str
    upstream_model: str
    verification: Verification
    health_url: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., endpoint: _Optional[str] = ..., auth_type: _Optional[str] = ..., pricing: _Optional[_Union[Pricing, _Mapping]] = ..., capabilities: _Optional[_Iterable[str]] = ..., performance: _Optional[_Union[Performance, _Mapping]] = ..., cost_efficiency: _Optional[str] = ..., specialties: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ..., first_byte_timeout_ms: _Optional[int] = ..., description: _Optional[str] = ..., owner: _Optional[str] = ..., enabled: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stats: _Optional[_Union[ModelStats, _Mapping]] = ..., has_credentials: _Optional[bool] = ..., max_response_bytes: _Optional[int] = ..., max_event_bytes: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., api: _Optional[str] = ..., upstream_model: _Optional[str] = ..., verification: _Optional[_Union[Verification, _Mapping]] = ..., health_url: _Optional[str] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("verified_at", "passed", "summary")
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    verified_at: _timestamp_pb2.Timestamp
    passed: bool
    summary: str
    def __init__(self, verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., passed: _Optional[bool] = ..., summary: _Optional[str] = ...) -> None: ...

class CheckModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CheckResult(_message.Message):
    __slots__ = ("name", "result", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    result: str
    detail: str
    def __init__(self, name: _Optional[str] = ..., result: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckReport(_message.Message):
    __slots__ = ("endpoint", "passed", "summary", "checks", "latency_p50_ms", "latency_p95_ms")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    passed: bool
    summary: str
    checks: _containers.RepeatedCompositeFieldContainer[CheckResult]
    latency_p50_ms: float
    latency_p95_ms: float
    def __init__(self, endpoint: _Optional[str] = ..., passed: _Optional[bool] = ..., summary: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[CheckResult, _Mapping]]] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ...) -> None: ...

class RegisterModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelSpec
    def __init__(self, model: _Optional[_Union[ModelSpec, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("type", "capability", "specialty", "page_size", "page_token")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    SPECIALTY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    type: str
    capability: str
    specialty: str
    page_size: int
    page_token: str
    def __init__(self, type: _Optional[str] = ..., capability: _Optional[str] = ..., specialty: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateModelRequest(_message.Message):
    __slots__ = ("name", "model", "update_mask")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: ModelSpec
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, name: _Optional[str] = ..., model: _Optional[_Union[ModelSpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
