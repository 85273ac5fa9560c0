"""What both engines' benchmark runs share: clocks, a paced null source, a forwarder, meters.

Self-contained on purpose (stdlib, numpy and ``livekit.rtc`` only): the peer's venv imports
it too and has no ``agent_playout``.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from livekit import rtc

T = TypeVar("T")

RATE = 24000
NS_PER_SECOND = 1_000_000_000
FRAME_20MS = RATE // 50
TEXT = (
    "This",
    "is",
    "what",
    "the",
    "agent",
    "says,",
    "word",
    "by",
    "word,",
    "while",
    "it",
    "plays.",
)


def ramp(samples: int, start: int = 0, *, sign: int = 1) -> np.ndarray:
    """Distinct non-zero int16 samples (negative with ``sign=-1``), traceable when heard."""
    values = (np.arange(start, start + samples) % 30000) + 1
    return (sign * values).astype(np.int16)


def heard_through(heard: np.ndarray, signal: np.ndarray, fade: int) -> tuple[int, int] | None:
    """How much of ``signal`` went out, judged from ``heard`` (non-silent samples, in order).

    What went out must be an exact prefix of the signal followed, unless the whole signal
    played, by the next ``fade`` samples (fewer at the signal's end) under a linear fade to
    silence. Returns the samples of the signal that went out (the fade included) and how
    many samples of ``heard`` they account for; None if the audio heard is anything else.
    """
    size = min(heard.size, signal.size)
    mismatch = np.flatnonzero(heard[:size] != signal[:size])
    prefix = int(mismatch[0]) if mismatch.size else size
    if fade == 0 or prefix == signal.size:
        return prefix, prefix
    faded_count = min(fade, signal.size - prefix)
    ramp = np.linspace(0.0, 1.0, faded_count + 1, dtype=np.float32)[::-1][1:]
    expected = (signal[prefix : prefix + faded_count] * ramp).astype(np.int16)
    audible = expected[expected != 0]
    if not np.array_equal(heard[prefix : prefix + audible.size], audible):
        return None
    return prefix + faded_count, prefix + audible.size


def frames_of(signal: np.ndarray, frame_samples: int = FRAME_20MS) -> list[rtc.AudioFrame]:
    """``signal`` cut into ``rtc.AudioFrame``s of ``frame_samples`` (the last may be shorter)."""
    frames = []
    for start in range(0, signal.size, frame_samples):
        chunk = np.ascontiguousarray(signal[start : start + frame_samples])
        frames.append(rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size))
    return frames


async def audio_stream(frames: Iterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    """The model's audio: frames available at once, as a realtime model delivers them."""
    for frame in frames:
        yield frame


async def text_stream() -> AsyncIterator[str]:
    """A few words of transcript, the same for every item."""
    for word in TEXT:
        yield word + " "


class MinimalForwarder:
    """The transcript forwarder both engines get: what LiveKit Agents 0.12 calls, counting only."""

    def __init__(self) -> None:
        self.text_chars = 0
        self.audio_samples = 0
        self.started = False
        self.finished = False

    @property
    def played_text(self) -> str:
        return ""

    def push_text(self, text: str) -> None:
        self.text_chars += len(text)

    def push_audio(self, frame: Any) -> None:
        self.audio_samples += frame.samples_per_channel

    def mark_text_segment_end(self) -> None:
        pass

    def mark_audio_segment_end(self) -> None:
        pass

    def segment_playout_started(self) -> None:
        self.started = True

    def segment_playout_finished(self) -> None:
        self.finished = True

    async def aclose(self) -> None:
        pass


class LoopClock:
    """Real monotonic time with timers on the running loop; one instance shared by sessions."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        delay = max(deadline_ns - time.monotonic_ns(), 0) / NS_PER_SECOND
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep_until(self, deadline_ns: int) -> None:
        delay = deadline_ns - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / NS_PER_SECOND)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Time that jumps from timer to timer once the loop is idle: no sleeping, no drift."""

    def __init__(self) -> None:
        self._now_ns = 0
        self._timers: list[tuple[int, int, _Timer]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now_ns

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        heapq.heappush(self._timers, (deadline_ns, next(self._seq), timer))
        return timer

    async def sleep_until(self, deadline_ns: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_at(deadline_ns, lambda: _resolve(future))
        try:
            await future
        finally:
            timer.cancel()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, firing the next due timer whenever the loop has nothing to do."""
        task = asyncio.ensure_future(awaitable)
        loop = asyncio.get_running_loop()
        while not task.done():
            await asyncio.sleep(0)
            if getattr(loop, "_ready", None):
                continue
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            if not self._timers:
                await asyncio.sleep(0)
                if not task.done():
                    raise RuntimeError("deadlock: the task waits but no timer is scheduled")
                break
            deadline, _, timer = heapq.heappop(self._timers)
            self._now_ns = max(self._now_ns, deadline)
            timer.callback()
        return task.result()


class PacedNullSource:
    """Shaped like ``rtc.AudioSource``, plays nothing, and paces on a clock like ``NullSink``.

    ``capture_frame`` returns once at most ``queue_size_ms`` is queued; the played count is
    exact (``samples_played``/``samples_written``, which this package's engine reads and
    the peer ignores in favour of ``queued_duration``).
    """

    def __init__(self, clock: Any, *, queue_size_ms: int = 200) -> None:
        self._clock = clock
        self._limit = RATE * queue_size_ms // 1000
        self._played = 0
        self._written = 0
        self._start_ns = 0
        self._start_played = 0
        self._running = False
        self._waiters: list[tuple[asyncio.Future[None], Any]] = []
        self.captures = 0

    @property
    def sample_rate(self) -> int:
        return RATE

    @property
    def num_channels(self) -> int:
        return 1

    @property
    def clock(self) -> Any:
        return self._clock

    @property
    def samples_played(self) -> int:
        self._advance()
        return self._played

    @property
    def samples_written(self) -> int:
        return self._written

    @property
    def queued_duration(self) -> float:
        return (self._written - self.samples_played) / RATE

    def _advance(self) -> None:
        if self._running:
            elapsed = self._clock.now_ns() - self._start_ns
            reached = self._start_played + elapsed * RATE // NS_PER_SECOND
            self._played = min(reached, self._written)
            self._running = self._played < self._written

    def _time_of(self, played: int) -> int:
        return self._start_ns + -(-(played - self._start_played) * NS_PER_SECOND // RATE)

    async def capture_frame(self, frame: Any) -> None:
        count = frame.samples_per_channel
        if count == 0:
            return
        self.captures += 1
        self._advance()
        if not self._running:
            self._start_ns, self._start_played = self._clock.now_ns(), self._played
            self._running = True
        self._written += count
        target = self._written - self._limit
        if self._played < target:
            await self._wait_for(target)

    def clear_queue(self) -> None:
        self._advance()
        self._written = self._played
        self._running = False
        waiters, self._waiters = self._waiters, []
        for future, timer in waiters:
            timer.cancel()
            if not future.done():
                future.set_result(None)

    async def wait_for_playout(self) -> None:
        self._advance()
        if self._played < self._written:
            await self._wait_for(self._written)

    async def _wait_for(self, played: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self._clock.call_at(self._time_of(played), lambda: _resolve(future))
        entry = (future, timer)
        self._waiters.append(entry)
        try:
            await future
        finally:
            timer.cancel()
            if entry in self._waiters:
                self._waiters.remove(entry)


class Timestamps:
    """Wraps a source's ``capture_frame`` and ``clear_queue`` to time their first call."""

    def __init__(self, source: Any) -> None:
        self.first_capture_ns: int | None = None
        self.clear_ns: int | None = None
        capture, clear = source.capture_frame, source.clear_queue

        async def timed_capture(frame: Any) -> None:
            if self.first_capture_ns is None:
                self.first_capture_ns = time.perf_counter_ns()
            await capture(frame)

        def timed_clear() -> None:
            if self.clear_ns is None:
                self.clear_ns = time.perf_counter_ns()
            clear()

        source.capture_frame = timed_capture
        source.clear_queue = timed_clear

    def reset(self) -> None:
        self.first_capture_ns = None
        self.clear_ns = None


class Listener:
    """Ground truth: the non-silent samples that really left a source, via a local track."""

    def __init__(self, source: rtc.AudioSource) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("ground-truth", source)
        self._stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            audible = data[data != 0]
            self._chunks.append(audible)
            self._count += audible.size

    async def heard(self) -> np.ndarray:
        """Everything heard so far, once the last released frame has reached the reader: at
        least 60 ms on, and until no audible sample came for 30 ms (a loaded host delivers
        frames late, and a fixed wait would leave one trial's end to the next), at most 1 s."""
        await asyncio.sleep(0.06)
        for _ in range(31):
            count = self._count
            await asyncio.sleep(0.03)
            if self._count == count:
                break
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


class ErrorCounter(logging.Handler):
    """Counts ERROR records from any logger (both engines log a failed item there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.messages) < 5:
            self.messages.append(record.getMessage()[:200])

    def __enter__(self) -> ErrorCounter:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)


@dataclass
class CpuMeter:
    """Process CPU, this (event-loop) thread's CPU and wall time between start and stop."""

    process_s: float = 0.0
    thread_s: float = 0.0
    wall_s: float = 0.0

    def start(self) -> CpuMeter:
        self._p0, self._t0, self._w0 = time.process_time(), time.thread_time(), time.perf_counter()
        return self

    def stop(self) -> CpuMeter:
        self.process_s = time.process_time() - self._p0
        self.thread_s = time.thread_time() - self._t0
        self.wall_s = time.perf_counter() - self._w0
        return self


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def live_objects() -> int:
    """Objects the garbage collector tracks, after a collection: a leak shows as growth."""
    gc.collect()
    return len(gc.get_objects())


def busy_cores(seconds: float = 0.5) -> float:
    """Cores' worth of CPU the whole machine used over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy_0, total_0 = sample()
    time.sleep(seconds)
    busy_1, total_1 = sample()
    return (busy_1 - busy_0) / max(total_1 - total_0, 1) * (os.cpu_count() or 1)
