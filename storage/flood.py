"""The per-citizen flood limit, kept with the citizen in the database so every process counts alike.

A sliding one-minute window, estimated from two counts (this window's and the previous one's, weighted
by how much of it still lies within the last minute), so that a burst across a window's edge cannot
pass twice the limit. The numbers live in the citizen's row, which a turn holds locked (PostgreSQL),
so concurrent processes never count the same message twice or lose one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)


class Verdict(enum.Enum):
    """What to do with one event from a user."""

    ALLOW = "allow"
    WARN = "warn"
    """Over the limit, and not yet told in this window: drop the event and say so politely, once."""
    DROP = "drop"
    """Over the limit and already told: drop the event silently."""

    @property
    def allowed(self) -> bool:
        return self is Verdict.ALLOW


@dataclass(frozen=True)
class FloodCount:
    """A citizen's messages in the current window (which began at ``window``) and the one before."""

    window: datetime | None = None
    count: int = 0
    previous: int = 0
    warned: bool = False


def count_message(state: FloodCount, limit: int, now: datetime) -> tuple[Verdict, FloodCount]:
    """The verdict on one more message at ``now``, and the counts to keep; refused messages do not count."""
    current = _rolled(state, now)
    assert current.window is not None
    remaining = 1 - (now - current.window) / WINDOW  # the previous window's share still in the last minute
    if current.previous * remaining + current.count < limit:
        return Verdict.ALLOW, replace(current, count=current.count + 1)
    if not current.warned:
        return Verdict.WARN, replace(current, warned=True)
    return Verdict.DROP, current


def _rolled(state: FloodCount, now: datetime) -> FloodCount:
    if state.window is None or now < state.window:  # first message, or a clock that went back
        return FloodCount(window=now)
    windows = (now - state.window) // WINDOW
    if windows == 0:
        return state
    return FloodCount(window=state.window + windows * WINDOW, previous=state.count if windows == 1 else 0)
