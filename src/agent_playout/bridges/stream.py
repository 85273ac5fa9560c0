"""An item's audio or text as the bridge receives it: an async iterable fed from events."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ItemStream(Generic[T]):
    """Values put by the bridge, read once by ``AgentPlayout``, ended by ``close()``.

    Unbounded on purpose: the model sends faster than real time, and the engine's own
    read-ahead decides how far ahead it reads.
    """

    def __init__(self) -> None:
        self._values: deque[T] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, value: T) -> None:
        """Append ``value``; a no-op once closed (the bridge drops what comes after)."""
        if self._closed:
            return
        self._values.append(value)
        self._wake()

    def close(self) -> None:
        """End the stream after the values already put."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while not self._values:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._values.popleft()
