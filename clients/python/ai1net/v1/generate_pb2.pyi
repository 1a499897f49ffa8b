from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Routing(_message.Message):
    __slots__ = ("type", "capabilities", "specialties", "strategy", "max_latency_ms", "max_price_per_1k_tokens", "hedge_ms")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SPECIALTIES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_PER_1K_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HEDGE_MS_FIELD_NUMBER: _ClassVar[int]
    type: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    specialties: _containers.RepeatedScalarFieldContainer[str]
    strategy: str
    max_latency_ms: float
    max_price_per_1k_tokens: float
    hedge_ms: int
    def __init__(self, type: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., specialties: _Optional[_Iterable[str]] = ..., strategy: _Optional[str] = ..., max_latency_ms: _Optional[float] = ..., max_price_per_1k_tokens: _Optional[float] = ..., hedge_ms: _Optional[int] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "input", "parameters", "routing", "fallbacks", "parameters_json")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    model: str
    input: str
    parameters: _struct_pb2.Struct
    routing: Routing
    fallbacks: _containers.RepeatedScalarFieldContainer[str]
    parameters_json: bytes
    def __init__(self, model: _Optional[str] = ..., input: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., routing: _Optional[_Union[Routing, _Mapping]] = ..., fallbacks: _Optional[_Iterable[str]] = ..., parameters_json: _Optional[bytes] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "estimated")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    estimated: bool
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("id", "model", "output", "usage", "latency_ms", "cost_usd", "cost_nanos", "ttft_ms", "attempts", "route", "finish_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_NANOS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    output: _struct_pb2.Value
    usage: Usage
    latency_ms: int
    cost_usd: float
    cost_nanos: int
    ttft_ms: int
    attempts: int
    route: str
    finish_reason: str
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., latency_ms: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cost_nanos: _Optional[int] = ..., ttft_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., route: _Optional[str] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("delta", "output", "done", "id", "model", "usage", "latency_ms", "cost_usd", "cost_nanos", "ttft_ms", "attempts", "route", "finish_reason")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_NANOS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    delta: str
    output: _struct_pb2.Value
    done: bool
    id: str
    model: str
    usage: Usage
    latency_ms: int
    cost_usd: float
    cost_nanos: int
    ttft_ms: int
    attempts: int
    route: str
    finish_reason: str
    def __init__(self, delta: _Optional[str] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., done: _Optional[bool] = ..., id: _Optional[str] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., latency_ms: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cost_nanos: _Optional[int] = ..., ttft_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., route: _Optional[str] = ..., finish_reason: _Optional[str] = ...) -> None: ...
