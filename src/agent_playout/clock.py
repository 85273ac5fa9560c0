"""Integer-nanosecond clocks: the real monotonic one and a virtual one for tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from .core.units import NS_PER_SECOND

T = TypeVar("T")


def _duration_ns(seconds: float) -> int:
    """``seconds`` as whole nanoseconds; a clear error for what is not a duration."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"seconds must be a number, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
    return round(seconds * NS_PER_SECOND)


_DEADLOCK_MESSAGE = (
    "deadlock: the awaitable waits but no timer is scheduled on this VirtualClock, so"
    " advancing virtual time cannot wake it. It waits on something outside the clock:"
    " a real asyncio.sleep (use `await clock.sleep(seconds)` instead), or a queue, event"
    " or stream that nothing feeds (feed it before calling clock.run, or from a task that"
    " sleeps on the clock)."
)


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Where the engine and the sinks read time; integer nanoseconds so nothing drifts."""

    def now_ns(self) -> int: ...

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle: ...

    async def sleep_until(self, deadline_ns: int) -> None: ...


class MonotonicClock:
    """``time.monotonic_ns`` with timers on the running asyncio loop."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        delay = max(deadline_ns - time.monotonic_ns(), 0) / NS_PER_SECOND
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep_until(self, deadline_ns: int) -> None:
        # Not polling: asyncio may wake a timer up to its clock resolution early, and the
        # loop then sleeps only the rest.
        while (delay := deadline_ns - time.monotonic_ns()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay / NS_PER_SECOND)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time (``asyncio.sleep`` on this clock's integer time)."""
        await self.sleep_until(time.monotonic_ns() + _duration_ns(seconds))


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "deadline_ns")

    def __init__(self, deadline_ns: int, callback: Callable[[], None]) -> None:
        self.deadline_ns = deadline_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to, so tests run without real sleeps.

    ``advance`` fires due timers in deadline order and lets the event loop settle after
    each one; ``run`` advances from timer to timer until an awaitable completes. Code under
    test waits with ``await clock.sleep(seconds)``, never a real ``asyncio.sleep``.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns
        self._timers: list[tuple[int, int, _VirtualTimer]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now_ns

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(deadline_ns, callback)
        heapq.heappush(self._timers, (deadline_ns, next(self._seq), timer))
        return timer

    async def sleep_until(self, deadline_ns: int) -> None:
        if deadline_ns <= self._now_ns:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(deadline_ns, wake)
        try:
            await future
        finally:
            timer.cancel()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time: wakes when ``advance`` or ``run`` passes it.

        The virtual ``asyncio.sleep``: use it in streams and tasks under test, since a real
        ``asyncio.sleep`` is a timer this clock cannot see (``run`` then reports a deadlock).
        """
        await self.sleep_until(self._now_ns + _duration_ns(seconds))

    def next_deadline_ns(self) -> int | None:
        """The earliest pending timer, or None when nothing is scheduled."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def settle(self) -> None:
        """Let every task that is ready run until the loop has nothing left to do now."""
        loop = asyncio.get_running_loop()
        for _ in range(10_000):
            await asyncio.sleep(0)
            if not getattr(loop, "_ready", None):
                await asyncio.sleep(0)
                if not getattr(loop, "_ready", None):
                    return
        raise RuntimeError("event loop did not settle: a task keeps rescheduling itself")

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing timers on the way."""
        await self.advance_ns(round(seconds * NS_PER_SECOND))

    async def advance_ns(self, delta_ns: int) -> None:
        if delta_ns < 0:
            raise ValueError(f"cannot move a clock backwards (delta {delta_ns} ns)")
        target = self._now_ns + delta_ns
        await self.settle()
        while (deadline := self.next_deadline_ns()) is not None and deadline <= target:
            self._fire_next()
            await self.settle()
        self._now_ns = target
        await self.settle()

    async def run(self, awaitable: Awaitable[T], *, limit_seconds: float = 86_400.0) -> T:
        """Await ``awaitable`` while jumping from timer to timer, so it takes no real time.

        Raises ``RuntimeError("deadlock: the awaitable waits but no timer is scheduled
        ...")`` when the awaitable is still waiting and this clock has no timer left: it
        waits on something virtual time cannot bring. Usually that is a real
        ``asyncio.sleep`` in a stream under test (use ``await clock.sleep(seconds)``), or a
        queue or stream nothing feeds. ``TimeoutError`` after ``limit_seconds`` of virtual
        time.
        """
        task = asyncio.ensure_future(awaitable)
        limit_ns = self._now_ns + round(limit_seconds * NS_PER_SECOND)
        try:
            await self.settle()
            while not task.done():
                deadline = self.next_deadline_ns()
                if deadline is None:
                    raise RuntimeError(_DEADLOCK_MESSAGE)
                if deadline > limit_ns:
                    raise TimeoutError(f"not done within {limit_seconds} virtual seconds")
                self._fire_next()
                await self.settle()
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _fire_next(self) -> None:
        deadline, _, timer = heapq.heappop(self._timers)
        self._now_ns = max(self._now_ns, deadline)
        timer.callback()
