"""Money: integer nano-dollars inside, dollars only at the edges."""

from __future__ import annotations

import math

# The conversions are the client's (the wire carries both forms); re-exported for the server.
from ai1net.client.money import NANOS_PER_USD, nanos_to_usd, usd_to_nanos

__all__ = ["NANOS_PER_USD", "call_cost_nanos", "is_valid_usd", "nanos_to_usd", "usd_to_nanos"]


def call_cost_nanos(*, input_tokens: int, output_tokens: int,
                    input_per_1k: int, output_per_1k: int, per_request: int = 0) -> int:
    """Cost of one call: its tokens at the prices per 1k tokens, rounded up to a whole
    nano-dollar, plus the flat fee of a successful call (``per_request``; 0 for a failed
    one, which pays only for what was delivered)."""
    tokens = math.ceil((input_tokens * input_per_1k + output_tokens * output_per_1k) / 1000)
    return tokens + per_request


def is_valid_usd(value: float) -> bool:
    return math.isfinite(value) and value >= 0
