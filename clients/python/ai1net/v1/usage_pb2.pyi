import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageTotals(_message.Message):
    __slots__ = ("requests", "tokens_processed", "input_tokens", "output_tokens", "errors", "cost_usd", "cost_nanos")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_NANOS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    tokens_processed: int
    input_tokens: int
    output_tokens: int
    errors: int
    cost_usd: float
    cost_nanos: int
    def __init__(self, requests: _Optional[int] = ..., tokens_processed: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., errors: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cost_nanos: _Optional[int] = ...) -> None: ...

class UsageGroup(_message.Message):
    __slots__ = ("group", "usage")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    group: str
    usage: UsageTotals
    def __init__(self, group: _Optional[str] = ..., usage: _Optional[_Union[UsageTotals, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("model", "to", "group_by")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    model: str
    to: str
    group_by: str
    def __init__(self, model: _Optional[str] = ..., to: _Optional[str] = ..., group_by: _Optional[str] = ..., **kwargs) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("usage", "groups")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    usage: UsageTotals
    groups: _containers.RepeatedCompositeFieldContainer[UsageGroup]
    def __init__(self, usage: _Optional[_Union[UsageTotals, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[UsageGroup, _Mapping]]] = ...) -> None: ...

class UsageCounts(_message.Message):
    __slots__ = ("requests", "tokens_processed")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    requests: int
    tokens_processed: int
    def __init__(self, requests: _Optional[int] = ..., tokens_processed: _Optional[int] = ...) -> None: ...

class ReportUsageRequest(_message.Message):
    __slots__ = ("model", "to", "usage")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    model: str
    to: str
    usage: UsageCounts
    def __init__(self, model: _Optional[str] = ..., to: _Optional[str] = ..., usage: _Optional[_Union[UsageCounts, _Mapping]] = ..., **kwargs) -> None: ...

class ReportUsageResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetReconciliationRequest(_message.Message):
    __slots__ = ("model", "to")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    model: str
    to: str
    def __init__(self, model: _Optional[str] = ..., to: _Optional[str] = ..., **kwargs) -> None: ...

class GetReconciliationResponse(_message.Message):
    __slots__ = ("model", "gateway", "provider", "difference", "to")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    model: str
    gateway: UsageCounts
    provider: UsageCounts
    difference: UsageCounts
    to: str
    def __init__(self, model: _Optional[str] = ..., gateway: _Optional[_Union[UsageCounts, _Mapping]] = ..., provider: _Optional[_Union[UsageCounts, _Mapping]] = ..., difference: _Optional[_Union[UsageCounts, _Mapping]] = ..., to: _Optional[str] = ..., **kwargs) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("generation_id", "score", "comment")
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    score: float
    comment: str
    def __init__(self, generation_id: _Optional[str] = ..., score: _Optional[float] = ..., comment: _Optional[str] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("generation_id", "model", "score", "comment", "created_at")
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    model: str
    score: float
    comment: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, generation_id: _Optional[str] = ..., model: _Optional[str] = ..., score: _Optional[float] = ..., comment: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("month", "provider")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    month: str
    provider: str
    def __init__(self, month: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class StatementLine(_message.Message):
    __slots__ = ("model", "gateway", "earnings_usd", "earnings_nanos", "reported", "difference")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    EARNINGS_USD_FIELD_NUMBER: _ClassVar[int]
    EARNINGS_NANOS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    gateway: UsageCounts
    earnings_usd: float
    earnings_nanos: int
    reported: UsageCounts
    difference: UsageCounts
    def __init__(self, model: _Optional[str] = ..., gateway: _Optional[_Union[UsageCounts, _Mapping]] = ..., earnings_usd: _Optional[float] = ..., earnings_nanos: _Optional[int] = ..., reported: _Optional[_Union[UsageCounts, _Mapping]] = ..., difference: _Optional[_Union[UsageCounts, _Mapping]] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("month", "provider", "to", "models")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    month: str
    provider: str
    to: str
    models: _containers.RepeatedCompositeFieldContainer[StatementLine]
    def __init__(self, month: _Optional[str] = ..., provider: _Optional[str] = ..., to: _Optional[str] = ..., models: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ..., **kwargs) -> None: ...
