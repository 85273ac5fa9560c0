"""A synthetic native timeline for ``LiveKitScheduler``: the rtc source's buffer on integers.

It follows the native semantics in FACTS.md: one 10 ms frame released per tick on a fixed
grid; audio put into an empty buffer starts at the next tick; a capture returns at once if
the buffer then holds at most the queue, else on the tick that brings it down to the queue;
a clear empties the buffer whole, and a capture waiting then completes at the next tick.
Completions reach the scheduler ``late(n)`` ns after they happen (the n-th completion), as
they reach Python under load. Everything runs in virtual integer time, with no asyncio.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator

import numpy as np

from agent_playout.sinks.livekit.modes import (
    Action,
    ArmTimer,
    CancelTimer,
    ClearNative,
    Fail,
    QueueTail,
    Submit,
    Wake,
    Warn,
)
from agent_playout.sinks.livekit.scheduler import LiveKitScheduler
from agent_playout.sinks.livekit.ticks import TICK_NS, TickCounter

MS = 1_000_000
FRAME = 240
PHASE = 3 * MS + 200_000
"""The native ticks fall at 3.2 ms, 13.2 ms, 23.2 ms, ..."""


class Native:
    """The source's native buffer: what it holds, what it released and when."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.buffer = np.zeros(0, dtype=np.int16)
        self.heard: list[np.ndarray] = []
        self.released = 0
        self.captures: list[int] = []
        self.clears: list[int] = []
        self.emptied_ns: int | None = None
        self._waiting: Callable[[int], None] | None = None

    @property
    def waiting(self) -> bool:
        """Whether a capture waits for room."""
        return self._waiting is not None

    def insert(self, data: np.ndarray, done: Callable[[int], None], now_ns: int) -> None:
        self.captures.append(data.size)
        self.buffer = np.concatenate([self.buffer, data])
        if self.buffer.size <= self.queue:
            done(now_ns)
        else:
            self._waiting = done

    def tick(self, now_ns: int) -> None:
        if self.buffer.size >= FRAME:
            self.heard.append(self.buffer[:FRAME])
            self.buffer = self.buffer[FRAME:]
            self.released += FRAME
            if not self.buffer.size:
                self.emptied_ns = now_ns
        if self._waiting is not None and self.buffer.size <= self.queue:
            done, self._waiting = self._waiting, None
            done(now_ns)

    def clear(self, now_ns: int) -> None:
        self.clears.append(now_ns)
        self.buffer = self.buffer[:0]

    def audible(self) -> np.ndarray:
        """Everything released, without silence (the signals have no zero)."""
        heard = np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.int16)
        return heard[heard != 0]


class Timeline:
    """Runs a scheduler against a ``Native`` buffer, executing its actions at their times."""

    def __init__(
        self,
        queue_ms: int,
        *,
        native_queue_ms: int | None = None,
        fade: int = FRAME,
        capture_ms: int = 500,
        late: Callable[[int], int] = lambda n: 100_000,
        tick_lag: Callable[[int], int] = lambda grid_ns: 0,
        insert_ns: int = 0,
        failing: frozenset[int] = frozenset(),
        learned: bool = True,
    ) -> None:
        queue = queue_ms * 24
        self.now = 0
        self._events: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.native = Native((native_queue_ms or queue_ms) * 24)
        self.counter = TickCounter(FRAME, queue)
        self.counter.adopt_grid([PHASE + k * TICK_NS for k in range(5)])
        self.scheduler = LiveKitScheduler(
            1, FRAME, self.counter, fade=fade, exact=True, capture_ms=capture_ms
        )
        self.failures: list[BaseException] = []
        self.warnings: list[str] = []
        self.wakes = 0
        self.late = late
        """How late the n-th completion reaches the scheduler (a test may change it)."""
        self.tick_lag = tick_lag
        """How late the native thread runs the tick due at a grid time (under 10 ms)."""
        self._completions = itertools.count()
        self._insert_ns = insert_ns
        self.failing = set(failing)
        """Which requests (counted from 0) the source refuses."""
        self.fade = fade
        self._requests = itertools.count()
        self._timer: int | None = None
        self._feed: Iterator[np.ndarray] = iter(())
        self._next_tick = PHASE
        if learned:
            self.act(self.scheduler.learned(self.counter, 0))

    def at(self, when_ns: int, event: Callable[[], None]) -> None:
        heapq.heappush(self._events, (max(when_ns, self.now), next(self._seq), event))

    def act(self, actions: list[Action]) -> None:
        """Carry out ``actions`` the way ``LiveKitSink`` does, against the native buffer."""
        for action in actions:
            if isinstance(action, Submit):
                self.at(self.now, lambda submit=action: self._capture(submit))
            elif isinstance(action, ArmTimer):
                timer = self._timer = next(self._seq)
                self.at(action.deadline_ns, lambda timer=timer: self._fire(timer))
            elif isinstance(action, CancelTimer):
                self._timer = None
            elif isinstance(action, ClearNative):
                self.native.clear(self.now)
            elif isinstance(action, QueueTail):
                self.act(self.scheduler.queue_tail(self.now))
            elif isinstance(action, Fail):
                self.failures.append(action.error)
            elif isinstance(action, Warn):
                self.warnings.append(action.message)
            else:
                assert isinstance(action, Wake)
                self.wakes += 1

    def feed(self, signal: np.ndarray, frame: int = 480) -> None:
        """Hand the scheduler ``signal`` in frames whenever it has room, as the engine does."""
        self._feed = iter([signal[i : i + frame] for i in range(0, signal.size, frame)])
        self._pump()

    def stop_feeding(self) -> None:
        """The producer has nothing more for now."""
        self._feed = iter(())

    def interrupt(self) -> None:
        """The engine's interrupt: no more audio, and the sink's queue cleared now."""
        self._feed = iter(())
        self.act(self.scheduler.clear(self.now))

    def flush(self) -> int:
        """The engine's end of item: the count at which everything was played out."""
        target, actions = self.scheduler.flush(self.now)
        self.act(actions)
        return target

    def run_until(self, when_ns: int) -> None:
        """Let native ticks and the scheduler's actions happen, in order, up to ``when_ns``."""
        while True:
            next_event = self._events[0][0] if self._events else None
            tick_ns = self._next_tick + self.tick_lag(self._next_tick)
            if tick_ns <= when_ns and (next_event is None or tick_ns <= next_event):
                self.now = tick_ns
                self._next_tick += TICK_NS
                self.native.tick(self.now)
            elif next_event is not None and next_event <= when_ns:
                self.now, _, event = heapq.heappop(self._events)
                event()
            else:
                break
            self._pump()
        self.now = when_ns

    def played(self) -> int:
        """What the scheduler's count says was released by now."""
        return self.scheduler.counter.released(self.now)

    def _pump(self) -> None:
        scheduler = self.scheduler
        while not scheduler.backlogged():
            chunk = next(self._feed, None)
            if chunk is None:
                return
            self.act(scheduler.queued(chunk.copy(), chunk.size, self.now))

    def _fire(self, timer: int) -> None:
        if timer == self._timer:
            self._timer = None
            self.act(self.scheduler.timer_fired(self.now))

    def _capture(self, submit: Submit) -> None:
        start = self.scheduler.capture_start(self.now)
        self.at(start, lambda: self._request(submit))

    def _request(self, submit: Submit) -> None:
        scheduler = self.scheduler
        ticket = scheduler.capture_requested(submit.token, submit.count, self.now)
        if ticket is None:
            self.act(scheduler.capture_finished(submit.token, self.now))
            return
        if next(self._requests) in self.failing:
            error = RuntimeError("InvalidState - failed to capture frame")
            self.act(scheduler.capture_failed(submit.token, ticket, submit.count, error))
            self.act(scheduler.capture_finished(submit.token, self.now))
            return

        def done(done_ns: int) -> None:
            def completed() -> None:
                self.act(scheduler.capture_completed(submit.token, ticket, self.now))
                self.act(scheduler.capture_finished(submit.token, self.now))

            self.at(done_ns + self.late(next(self._completions)), completed)

        self.at(
            self.now + self._insert_ns,
            lambda: self.native.insert(submit.data, done, self.now),
        )
