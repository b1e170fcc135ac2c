"""A flood limit in one process's memory: a sliding one-minute window per key, with an injectable clock.

The web chat limits each client address with it; a citizen's own limit is counted in the database
(storage/flood.py), so that every process counts alike.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from storage.flood import Verdict

WINDOW_SECONDS = 60.0
SWEEP_EVERY = 1000
"""Checks between sweeps that forget users who have gone quiet, so memory stays bounded."""


@dataclass
class _User:
    events: deque[float] = field(default_factory=deque)
    warned_at: float | None = None


class FloodLimit:
    """At most ``per_minute`` events per user in any 60-second window; refused events do not count."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 window: float = WINDOW_SECONDS) -> None:
        if per_minute < 1 or window <= 0:
            raise ValueError("per_minute must be at least 1 and window positive")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._users: dict[str, _User] = {}
        self._checks = 0

    def check(self, user: str) -> Verdict:
        """Count one event from ``user`` if the limit allows it; otherwise say whether to warn them."""
        now = self._clock()
        self._sweep(now)
        state = self._users.setdefault(user, _User())
        self._expire(state, now)
        if len(state.events) < self.per_minute:
            state.events.append(now)
            return Verdict.ALLOW
        if state.warned_at is None:
            state.warned_at = now
            return Verdict.WARN
        return Verdict.DROP

    def __len__(self) -> int:
        """Users currently remembered."""
        return len(self._users)

    def _expire(self, state: _User, now: float) -> None:
        horizon = now - self.window
        while state.events and state.events[0] <= horizon:
            state.events.popleft()
        if state.warned_at is not None and state.warned_at <= horizon:
            state.warned_at = None

    def _sweep(self, now: float) -> None:
        self._checks += 1
        if self._checks % SWEEP_EVERY:
            return
        for user, state in list(self._users.items()):
            self._expire(state, now)
            if not state.events and state.warned_at is None:
                del self._users[user]
