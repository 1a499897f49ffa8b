"""Money: integer nano-dollars (10^-9 USD), dollars as a float only for reading."""

from __future__ import annotations

from decimal import Decimal

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(value: float) -> int:
    """Exact for any amount written with up to nine decimals (0.002 → 2_000_000)."""
    return int((Decimal(repr(value)) * NANOS_PER_USD).to_integral_value())


def nanos_to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD
