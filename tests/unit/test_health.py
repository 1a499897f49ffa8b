"""server/health.py: what a health probe does to a model's breaker (on a fake clock)."""

from __future__ import annotations

from ai1net.server.health import EJECT_AFTER, HealthBoard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_probe_ejects_at_once_for_the_hold_then_lapses():
    clock = Clock()
    board = HealthBoard(clock=clock)
    board.probed("m", passed=False, hold_s=10)
    assert not board.admits("m")
    assert board.stats("m").health == "ejected"
    assert board.stats("m").requests == 0  # a probe is not a call
    assert 9 < board.ejected_for("m") <= 10
    clock.now += 8
    board.probed("m", passed=False, hold_s=10)  # the next probe renews it
    clock.now += 7
    assert not board.admits("m")
    clock.now += 4  # no probe came since: the hold lapses, a call may try (half-open)
    assert board.admits("m")


def test_a_passed_probe_closes_the_breaker_whatever_opened_it():
    clock = Clock()
    board = HealthBoard(clock=clock)
    board.probed("m", passed=False, hold_s=60)
    board.probed("m", passed=True, hold_s=60)
    assert board.admits("m")
    assert board.stats("m").health == "healthy"
    for _ in range(EJECT_AFTER):  # ejected by failing calls
        board.failure("m")
    assert not board.admits("m")
    board.probed("m", passed=True, hold_s=60)  # as Envoy's active checks un-eject a host
    assert board.admits("m")
    assert board.circuit_states() == {"m": 0}


def test_a_failed_probe_never_shortens_an_ejection():
    clock = Clock()
    board = HealthBoard(clock=clock)
    for _ in range(EJECT_AFTER):
        board.failure("m")
    until = board.ejected_for("m")
    board.probed("m", passed=False, hold_s=0.5)
    assert board.ejected_for("m") == until
