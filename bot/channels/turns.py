"""One turn at a time per chat, whichever channel it came through."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator


class ChatTurns:
    """One update at a time per chat, in arrival order, so replies come out in the order asked."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._holders[chat] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[chat] -= 1
            if not self._holders[chat]:
                del self._holders[chat], self._locks[chat]
