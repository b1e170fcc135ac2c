"""Wakes a page's waiting request when something is stored for its citizen in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator


class Hub:
    """One event per citizen with someone waiting; other processes' writes are found by re-reading."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: Counter[str] = Counter()
        self.closed = False

    @contextlib.contextmanager
    def listen(self, identity: str) -> Iterator[asyncio.Event]:
        """An event set at the next :meth:`notify` for ``identity``; take it *before* reading the log."""
        event = self._events.setdefault(identity, asyncio.Event())
        if self.closed:
            event.set()
        self._waiting[identity] += 1
        try:
            yield event
        finally:
            self._waiting[identity] -= 1
            if self._waiting[identity] <= 0:
                del self._waiting[identity]
                self._events.pop(identity, None)

    def notify(self, identity: str) -> None:
        """Wake everyone waiting for ``identity``; later listeners get a new event."""
        event = self._events.pop(identity, None)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Wake every waiter for good: the server is shutting down."""
        self.closed = True
        for event in self._events.values():
            event.set()

    def __len__(self) -> int:
        """Citizens with a waiting request."""
        return len(self._waiting)
