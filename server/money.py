"""Money: integer nano-dollars inside, dollars only at the edges."""

from __future__ import annotations

import math
from decimal import Decimal

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(value: float) -> int:
    """Exact for any price written with up to nine decimals (0.002 → 2_000_000)."""
    return int((Decimal(repr(value)) * NANOS_PER_USD).to_integral_value())


def nanos_to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def call_cost_nanos(*, input_tokens: int, output_tokens: int,
                    input_per_1k: int, output_per_1k: int) -> int:
    """Cost of one call from prices per 1k tokens, rounded up to a whole nano-dollar."""
    return math.ceil((input_tokens * input_per_1k + output_tokens * output_per_1k) / 1000)


def is_valid_usd(value: float) -> bool:
    return math.isfinite(value) and value >= 0
