"""The shared flood count: a sliding minute estimated from this window's and the last one's counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.flood import FloodCount, Verdict, count_message

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run(times: list[float], limit: int, state: FloodCount | None = None) -> tuple[list[Verdict], FloodCount]:
    state = state or FloodCount()
    verdicts = []
    for seconds in times:
        verdict, state = count_message(state, limit, T0 + timedelta(seconds=seconds))
        verdicts.append(verdict)
    return verdicts, state


def test_messages_within_the_limit_pass_then_one_warning_then_silence() -> None:
    verdicts, _ = run([0, 1, 2, 3, 4], limit=2)
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN, Verdict.DROP, Verdict.DROP]


def test_refused_messages_do_not_count_against_the_citizen() -> None:
    _, state = run([0, 1, 2, 3, 4, 5], limit=2)
    assert state.count == 2


def test_a_burst_across_the_edge_of_a_window_cannot_pass_the_limit_again() -> None:
    verdicts, _ = run([0, 59, 59.5, 60.5, 61], limit=2)
    # A plain per-minute counter would start from zero at 60 s and let both late messages through.
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN, Verdict.ALLOW, Verdict.WARN]


def test_the_previous_window_counts_less_as_it_slides_out() -> None:
    soon, _ = run([0, 1, 70, 71], limit=2)
    later, _ = run([0, 1, 110, 111], limit=2)
    assert soon[-1] is Verdict.WARN  # at 71 s five sixths of the last window still count: 1.6 + 1
    assert later[-1] is Verdict.ALLOW  # at 111 s only a sixth does: 0.3 + 1


def test_a_quiet_citizen_starts_afresh_and_may_be_warned_again() -> None:
    verdicts, state = run([0, 1, 2], limit=2)
    assert verdicts[-1] is Verdict.WARN
    later, _ = run([200, 201, 202], limit=2, state=state)
    assert later == [Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN]


def test_a_clock_that_went_back_starts_a_new_window_instead_of_failing() -> None:
    _, state = run([100, 101], limit=2)
    verdicts, _ = run([50], limit=2, state=state)
    assert verdicts == [Verdict.ALLOW]
