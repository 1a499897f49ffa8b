"""The AI1NET Python client: ``Client`` (blocking) and ``AsyncClient`` (asyncio) over gRPC.

    from ai1net.client import Client
    with Client("127.0.0.1:50051", api_key="ai1_...") as client:
        print(client.generate("Hello", model="demo-text").output)
"""

from ai1net.client.aio import AsyncClient
from ai1net.client.calls import UNSET
from ai1net.client.errors import (
    Ai1netError,
    AlreadyExists,
    AuthenticationError,
    BudgetExceeded,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UpstreamError,
)
from ai1net.client.results import (
    Delta,
    Done,
    Generation,
    Key,
    Model,
    ModelStats,
    Outcome,
    Output,
    Performance,
    Pricing,
    RateLimit,
    Reconciliation,
    StreamEvent,
    TokenUsage,
    UsageCounts,
    UsageGroup,
    UsageSummary,
    UsageTotals,
)
from ai1net.client.retry import RetryPolicy
from ai1net.client.sync import Client
from ai1net.client.version import __version__

__all__ = [
    "UNSET",
    "Ai1netError",
    "AlreadyExists",
    "AsyncClient",
    "AuthenticationError",
    "BudgetExceeded",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "Delta",
    "Done",
    "FailedPrecondition",
    "Generation",
    "InvalidArgument",
    "Key",
    "Model",
    "ModelStats",
    "NotFound",
    "Outcome",
    "Output",
    "Performance",
    "PermissionDenied",
    "Pricing",
    "RateLimit",
    "RateLimited",
    "Reconciliation",
    "RetryPolicy",
    "StreamEvent",
    "TokenUsage",
    "Unavailable",
    "UpstreamError",
    "UsageCounts",
    "UsageGroup",
    "UsageSummary",
    "UsageTotals",
    "__version__",
]
