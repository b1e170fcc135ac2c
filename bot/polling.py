"""When a polling worker (the dispatcher, the notifier) looks for work again."""

from __future__ import annotations

import asyncio
import contextlib


class PollTimer:
    """Look again after ``interval`` seconds, at once when woken, and not at all once stopped."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stopping = False
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """End the current pause now: there is work (a new event, a recorded result)."""
        self._woken.set()

    def stop(self) -> None:
        """Stop polling: the worker finishes its round and returns."""
        self.stopping = True
        self._woken.set()

    async def pause(self) -> None:
        """Wait for the interval to pass or for a wake-up, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout=self.interval)
        self._woken.clear()
