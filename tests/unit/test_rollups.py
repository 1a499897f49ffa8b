"""How a period is cut into roll-up buckets and raw edges, and a batch into deltas."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from ai1net.server.rollups import DAY_MS, HOUR_MS, deltas, split
from ai1net.server.usage import UsageEvent

H, D = HOUR_MS, DAY_MS


def test_a_period_of_whole_days_is_read_from_the_daily_roll_up():
    assert split(2 * D, 5 * D, [D, H]) == [(D, (2 * D, 5 * D))]


def test_partial_days_are_whole_hours_and_partial_hours_raw():
    start, end = 2 * D + 3 * H + 5, 4 * D + 2 * H + 7
    assert split(start, end, [D, H]) == [
        (None, (start, 2 * D + 4 * H)), (H, (2 * D + 4 * H, 3 * D)), (D, (3 * D, 4 * D)),
        (H, (4 * D, 4 * D + 2 * H)), (None, (4 * D + 2 * H, end))]


def test_within_one_hour_everything_is_raw():
    assert split(H + 1, 2 * H - 1, [D, H]) == [(None, (H + 1, 2 * H - 1))]
    assert split(H + 1, 2 * H + 1, [H]) == [(None, (H + 1, 2 * H + 1))]


def test_unbounded_ends_stay_unbounded():
    assert split(None, None, [D, H]) == [(D, (None, None))]
    assert split(D + 1, None, [H]) == [(None, (D + 1, D + H)), (H, (D + H, None))]


@given(st.one_of(st.none(), st.integers(0, 10 * D)), st.one_of(st.none(), st.integers(0, 10 * D)),
       st.sampled_from([[D, H], [H]]))
def test_the_pieces_tile_the_period_and_align_to_their_width(start, end, widths):
    if start is not None and end is not None and start >= end:
        return
    pieces = split(start, end, widths)
    assert pieces[0][1][0] == start and pieces[-1][1][1] == end
    for (_, (_, a_end)), (_, (b_start, _)) in itertools.pairwise(pieces):
        assert a_end == b_start  # contiguous, no overlap
    for width, (a, b) in pieces:
        if width is None:
            assert a is not None and b is not None
            assert -(-a // H) * H + H > b  # raw: no whole hour inside
        else:
            assert all(x is None or x % width == 0 for x in (a, b))


def test_deltas_sum_a_batch_per_row_of_each_level():
    rng = random.Random(1)
    events = [UsageEvent(f"gen_{n}", rng.randrange(3 * D), rng.choice("ab"), rng.choice("xy"),
                         "o", rng.randrange(9), rng.randrange(9), False, rng.randrange(99), 1, 1,
                         rng.choice(["ok", "error"])) for n in range(300)]
    hourly, models, days = deltas(events)
    for rows in (hourly, models, days):
        assert rows == sorted(rows)
        assert sum(r[-5] for r in rows) == 300
        assert sum(r[-4] for r in rows) == sum(e.outcome != "ok" for e in events)
        assert sum(r[-1] for r in rows) == sum(e.cost_nanos for e in events)
    assert len({r[:4] for r in hourly}) == len(hourly)
    first = hourly[0]
    members = [e for e in events if (e.ts_ms - e.ts_ms % H, e.key_id, e.model, e.model_owner)
               == first[:4]]
    assert first[4:] == (len(members), sum(e.outcome != "ok" for e in members),
                         sum(e.input_tokens for e in members),
                         sum(e.output_tokens for e in members),
                         sum(e.cost_nanos for e in members))
    assert {r[0] % D for r in days} == {0}
