"""The per-user flood limit, driven by a fake clock."""

from __future__ import annotations

import pytest

from bot.channels.flood import SWEEP_EVERY, FloodLimit
from storage.flood import Verdict


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_events_within_the_limit_are_allowed(clock: FakeClock) -> None:
    limit = FloodLimit(3, clock=clock)
    assert [limit.check("u1") for _ in range(3)] == [Verdict.ALLOW] * 3


def test_the_first_event_over_the_limit_warns_and_later_ones_drop(clock: FakeClock) -> None:
    limit = FloodLimit(2, clock=clock)
    verdicts = [limit.check("u1") for _ in range(5)]
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert [v.allowed for v in verdicts] == [True, True, False, False, False]


def test_users_are_limited_separately(clock: FakeClock) -> None:
    limit = FloodLimit(1, clock=clock)
    assert limit.check("u1") is Verdict.ALLOW
    assert limit.check("u1") is Verdict.WARN
    assert limit.check("u2") is Verdict.ALLOW


def test_the_window_slides_so_old_events_stop_counting(clock: FakeClock) -> None:
    limit = FloodLimit(2, clock=clock)
    limit.check("u1")
    clock.advance(30)
    limit.check("u1")
    assert limit.check("u1") is Verdict.WARN
    clock.advance(30)  # the first event is now a full minute old
    assert limit.check("u1") is Verdict.ALLOW
    assert limit.check("u1") is Verdict.DROP  # still within the window of the warning


def test_refused_events_do_not_extend_the_block(clock: FakeClock) -> None:
    limit = FloodLimit(1, clock=clock)
    limit.check("u1")
    for _ in range(10):
        clock.advance(5)
        limit.check("u1")
    clock.advance(10)  # 60 s after the one allowed event
    assert limit.check("u1") is Verdict.ALLOW


def test_a_user_still_flooding_a_minute_after_the_warning_is_warned_once_more(clock: FakeClock) -> None:
    limit = FloodLimit(1, clock=clock)
    assert limit.check("u1") is Verdict.ALLOW
    assert limit.check("u1") is Verdict.WARN
    clock.advance(59.9)
    assert limit.check("u1") is Verdict.DROP
    clock.advance(0.1)
    assert limit.check("u1") is Verdict.ALLOW
    assert limit.check("u1") is Verdict.WARN


def test_quiet_users_are_forgotten(clock: FakeClock) -> None:
    limit = FloodLimit(5, clock=clock)
    for number in range(SWEEP_EVERY - 1):
        limit.check(f"user{number}")
    assert len(limit) == SWEEP_EVERY - 1
    clock.advance(61)
    limit.check("late")
    assert len(limit) == 1


@pytest.mark.parametrize(("per_minute", "window"), [(0, 60.0), (-1, 60.0), (5, 0.0)])
def test_a_limit_that_allows_nothing_is_refused(per_minute: int, window: float) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        FloodLimit(per_minute, window=window)
