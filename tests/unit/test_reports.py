"""The usage query helpers that need no database: times, periods, totals."""

from __future__ import annotations

import pytest

from ai1net.server.errors import InvalidArgument
from ai1net.server.reports import Counts, Period, Totals, format_time, parse_period, parse_time

JAN_1 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@pytest.mark.parametrize(("text", "ms"), [
    ("2025-01-01T00:00:00Z", JAN_1),
    ("2025-01-01t00:00:00z", JAN_1),
    ("2025-01-01 00:00:00Z", JAN_1),
    ("2025-01-01T02:00:00+02:00", JAN_1),
    ("2025-01-01T02:00:00 02:00", JAN_1),  # "+" decoded as a space in a query string
    ("2024-12-31T19:00:00-05:00", JAN_1),
    ("2025-01-01T00:00:00.123Z", JAN_1 + 123),
    ("2025-01-01T00:00:00.123456789Z", JAN_1 + 123),
    ("", None),
])
def test_parse_time(text: str, ms: int | None):
    assert parse_time(text, "from") == ms


@pytest.mark.parametrize("text", [
    "yesterday", "2025-01-01", "2025-01-01T00:00:00", "2025-01-01T00:00Z",
    "2025-02-30T00:00:00Z", "2025-01-01T24:00:00Z", "1735689600000",
])
def test_parse_time_refuses_what_is_not_rfc3339(text: str):
    with pytest.raises(InvalidArgument) as raised:
        parse_time(text, "to")
    assert raised.value.field == "to"


def test_period_must_run_forward():
    assert parse_period("2025-01-01T00:00:00Z", "") == Period(JAN_1, None)
    with pytest.raises(InvalidArgument) as raised:
        parse_period("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
    assert raised.value.field == "to"


def test_format_time():
    assert format_time(JAN_1) == "2025-01-01T00:00:00Z"
    assert format_time(JAN_1 + 5) == "2025-01-01T00:00:00.005Z"
    assert format_time(None) == ""


def test_totals_and_counts_are_exact_integers():
    total = Totals(1, 0, 3, 5, 13_704) + Totals(2, 1, 10**12, 10**12, 10**15)
    assert total == Totals(3, 1, 10**12 + 3, 10**12 + 5, 10**15 + 13_704)
    assert total.tokens_processed == 2 * 10**12 + 8
    assert Counts(5, 40) - Counts(7, 48) == Counts(-2, -8)
