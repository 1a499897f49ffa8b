"""server/money.py: dollars at the edges, exact nano-dollars inside."""

from __future__ import annotations

import math

import pytest

from ai1net.server.money import (
    call_cost_nanos,
    is_valid_usd,
    nanos_to_usd,
    usd_to_nanos,
)

NANOS_PER_USD = 1_000_000_000


@pytest.mark.parametrize(("usd", "nanos"), [
    (0.0, 0), (0.002, 2_000_000), (1.0, NANOS_PER_USD), (0.000000001, 1),
    (0.00000001, 10), (1000.0, 1000 * NANOS_PER_USD), (0.1 + 0.2, 300_000_000),
    (2.5e-9, 2), (3.5e-9, 4),  # halves round to even, like Decimal
])
def test_usd_to_nanos_is_exact_to_nine_decimals(usd: float, nanos: int):
    assert usd_to_nanos(usd) == nanos


def test_nanos_to_usd():
    assert nanos_to_usd(2_000_000) == 0.002
    assert nanos_to_usd(NANOS_PER_USD) == 1.0
    assert nanos_to_usd(0) == 0.0


@pytest.mark.parametrize(("tokens_in", "tokens_out", "price_in", "price_out", "cost"), [
    (1000, 0, 2_000_000, 4_000_000, 2_000_000),
    (0, 1000, 2_000_000, 4_000_000, 4_000_000),
    (8, 120, 2_000_000, 4_000_000, 496_000),  # the contract's example: $0.000496
    (1, 0, 1, 0, 1),  # a thousandth of a nano-dollar rounds up to one
    (1, 1, 1, 1, 1), (1000, 0, 1, 0, 1), (1001, 0, 1, 0, 2),
    (0, 0, 5, 5, 0),
])
def test_a_calls_cost_rounds_up_to_a_whole_nano(tokens_in: int, tokens_out: int,
                                                price_in: int, price_out: int, cost: int):
    assert call_cost_nanos(input_tokens=tokens_in, output_tokens=tokens_out,
                           input_per_1k=price_in, output_per_1k=price_out) == cost


@pytest.mark.parametrize(("tokens_in", "tokens_out", "price", "fee", "cost"), [
    (0, 0, 2_000_000, 20_000_000, 20_000_000),  # an image: the fee alone
    (8, 120, 2_000_000, 1, 256_001),  # tokens and fee add
    (1, 0, 1, 7, 8),  # the tokens round up first, then the fee is added whole
])
def test_a_calls_cost_adds_its_flat_fee(tokens_in: int, tokens_out: int, price: int, fee: int,
                                        cost: int):
    assert call_cost_nanos(input_tokens=tokens_in, output_tokens=tokens_out,
                           input_per_1k=price, output_per_1k=price, per_request=fee) == cost


@pytest.mark.parametrize(("value", "valid"), [
    (0.0, True), (1e-9, True), (5.0, True), (-1e-9, False), (-0.0, True),
    (math.inf, False), (math.nan, False), (-math.inf, False),
])
def test_is_valid_usd(value: float, valid: bool):
    assert is_valid_usd(value) is valid
