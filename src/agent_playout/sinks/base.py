"""The sink surface (that of ``rtc.AudioSource``), the parts sinks share, and how the engine
reads a sink's position."""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeGuard, TypeVar, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..core.frames import Int16Array, frame_samples
from ..core.protocols import conforms
from .adapters import LIVEKIT_SOURCE, adapter_for, type_names

AudioCallback = Callable[[Int16Array], None]
"""Receives each stretch of interleaved audio as a sink plays it (``on_audio``)."""


@runtime_checkable
class AudioSink(Protocol):
    """What the engine needs from an output: the surface of ``livekit.rtc.AudioSource``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def num_channels(self) -> int: ...

    @property
    def queued_duration(self) -> float: ...

    async def capture_frame(self, frame: Any) -> None: ...

    def clear_queue(self) -> None: ...

    async def wait_for_playout(self) -> None: ...


@runtime_checkable
class PositionedSink(AudioSink, Protocol):
    """A sink that knows exactly what it has played, in samples per channel at its rate.

    ``samples_played`` counts real audio handed to the listener since the sink was made
    (never the silence of an underrun). ``samples_written`` counts what it accepted and
    did not clear: the place where the next captured sample will play. It does not move
    with time, so it can be read at any moment without a race against the playout.
    """

    @property
    def samples_played(self) -> int: ...

    @property
    def samples_written(self) -> int: ...


@runtime_checkable
class SettlingSink(PositionedSink, Protocol):
    """A sink that learns after a stop whether its count held: once an item is cut short,
    it says how much of it was really heard (WebRTC: when its receiver's reports cover that
    audio; LiveKit: once its native clear ran, and whether that ran in time).

    The engine asks after every interrupted item that reached the sink, before the item's
    ``wait_for_playout()`` returns, and bounds the wait (``CLEANUP_TIMEOUT_S``).
    """

    async def settle(self, start: int, end: int) -> int:
        """Samples of ``[start, end)`` on the ``samples_written`` axis the listener heard;
        raises ``PositionUnconfirmedError`` when it cannot learn that (WebRTC: no reports,
        reports stopped, the peer gone; LiveKit: a clear that ran late)."""
        ...


def buffer_settings(
    sample_rate: int, num_channels: int, queue_size_ms: int, fade_ms: float
) -> tuple[int, int]:
    """Check a buffering sink's settings; returns its queue limit and fade, in samples."""
    if sample_rate <= 0 or num_channels <= 0:
        raise ValueError(
            f"sample_rate and num_channels must be positive, got {sample_rate}, {num_channels}"
        )
    if queue_size_ms < 0:
        raise ValueError(f"queue_size_ms must be >= 0, got {queue_size_ms}")
    if fade_ms < 0:
        raise ValueError(f"fade_ms must be >= 0, got {fade_ms}")
    return sample_rate * queue_size_ms // 1000, round(sample_rate * fade_ms / 1000)


def sink_samples(frame: Any, sample_rate: int, num_channels: int) -> Int16Array:
    """``frame``'s interleaved samples, if it has the format the sink plays; else ValueError."""
    samples = frame_samples(frame)
    if frame.sample_rate != sample_rate or frame.num_channels != num_channels:
        raise ValueError(
            f"frame is {frame.sample_rate} Hz x{frame.num_channels}, this sink plays"
            f" {sample_rate} Hz x{num_channels}"
        )
    return samples


def take_samples(chunks: deque[Int16Array], values: int) -> Int16Array:
    """Remove the first ``values`` interleaved samples from ``chunks`` (fewer if it runs out)."""
    pieces: list[Int16Array] = []
    while values > 0 and chunks:
        head = chunks.popleft()
        if head.size > values:
            chunks.appendleft(head[values:])
            head = head[:values]
        pieces.append(head)
        values -= head.size
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def faded(frames: Int16Array, *, down: bool = True) -> Int16Array:
    """``frames`` (shaped samples x channels) under a linear fade to (down) or from silence.

    A fade-out reaches zero on its last sample and a fade-in starts one step above zero,
    so the audio joins silence without a step: no click.
    """
    result = np.empty_like(frames)
    np.multiply(frames, _fade_ramp(frames.shape[0], down), out=result, casting="unsafe")
    return result


@functools.lru_cache(maxsize=32)
def _fade_ramp(length: int, down: bool) -> npt.NDArray[np.float32]:
    """The gains of ``faded`` for ``length`` samples, as a column, made once per length: a
    stop fades on its own path, where ``np.linspace`` cost 150 µs cold (after a sleep)."""
    steps = np.linspace(0.0, 1.0, length + 1, dtype=np.float32)
    ramp: npt.NDArray[np.float32] = (steps[::-1][1:] if down else steps[1:])[:, None].copy()
    ramp.flags.writeable = False
    return ramp


class UnderrunMeter:
    """How often, and for how long, a sink ran dry while more audio was expected.

    Positions lie on one increasing axis of the sink's choosing: nanoseconds, or samples for
    a device counted by its callback. A span is open from ``went_dry`` until ``refilled``.
    """

    __slots__ = ("_closed", "_length", "_since")

    def __init__(self) -> None:
        self._closed = 0
        self._length = 0
        self._since: int | None = None

    def went_dry(self, at: int) -> None:
        """The sink ran out at ``at``; a span already open keeps its start."""
        if self._since is None:
            self._since = at

    def refilled(self, at: int) -> None:
        """Audio came again at ``at``: the open span, if any, is counted."""
        if self._since is not None:
            self.span(self._since, at)
            self._since = None

    def span(self, start: int, end: int) -> None:
        """Count a span found after the fact (a sink that learns its dry time late)."""
        self._closed += 1
        self._length += max(end - start, 0)

    def forget(self) -> None:
        """No more audio is expected (a clear): an open span was no underrun."""
        self._since = None

    def count(self) -> int:
        """Spans so far, the open one included."""
        return self._closed + (self._since is not None)

    def length(self, now: int) -> int:
        """Their total length, the open one counted up to ``now``."""
        ongoing = 0 if self._since is None else max(now - self._since, 0)
        return self._length + ongoing


NEVER = sys.maxsize
"""A target no count reaches: what ``Waiters`` gives when nobody waits."""


class Waiters:
    """Futures waiting for a count to reach a target, earliest target first (ties in order)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def add(self, target: int, future: asyncio.Future[None]) -> None:
        heapq.heappush(self._heap, (target, next(self._seq), future))

    def release(self, reached: int) -> int:
        """Resolve the futures whose target is reached; return the next target, or NEVER."""
        heap = self._heap
        while heap and (heap[0][0] <= reached or heap[0][2].done()):
            future = heapq.heappop(heap)[2]
            if not future.done():
                future.set_result(None)
        return heap[0][0] if heap else NEVER

    def next_target(self) -> int:
        """The earliest target still awaited (futures done meanwhile are dropped), or NEVER."""
        heap = self._heap
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        return heap[0][0] if heap else NEVER

    def end(self, error: BaseException | None = None) -> None:
        """Resolve every future, or fail them with ``error``: nobody waits for ever."""
        heap, self._heap = self._heap, []
        for _, _, future in heap:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


class SinkSurface(ABC):
    """The read-only surface this package's sinks share, read from the fields each one keeps.

    A sink says where its counts come from (``samples_played``, ``samples_written`` and
    ``_underrun_totals``); the rest follows from them, with no state of its own but the
    pause of the sinks that pause themselves.
    """

    _paused = False
    """Set by the sinks that pause themselves; one whose scheduler pauses overrides ``paused``."""

    def __init__(self, sample_rate: int, num_channels: int) -> None:
        self._rate = sample_rate
        self._channels = num_channels
        self._underrun_meter = UnderrunMeter()

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def num_channels(self) -> int:
        return self._channels

    @property
    @abstractmethod
    def samples_played(self) -> int:
        """Audio handed to the listener so far, in samples per channel."""

    @property
    @abstractmethod
    def samples_written(self) -> int:
        """Where the next captured sample will play, in samples per channel."""

    @property
    def samples_queued(self) -> int:
        """Audio accepted and not yet played."""
        return self.samples_written - self.samples_played

    @property
    def queued_duration(self) -> float:
        return self.samples_queued / self._rate

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def underruns(self) -> int:
        """How many times the queue ran dry while more audio was expected."""
        return self._underrun_totals()[0]

    @property
    def underrun_ns(self) -> int:
        """Total time spent dry while more audio was expected."""
        return self._underrun_totals()[1]

    @abstractmethod
    def _underrun_totals(self) -> tuple[int, int]:
        """The underruns so far and their length in nanoseconds, read together."""


_Closing = TypeVar("_Closing", bound="ClosesOnExit")


class ClosesOnExit(ABC):
    """A sink that holds a resource: ``with`` and ``async with`` blocks close it on the way out."""

    @abstractmethod
    def close(self) -> None:
        """Release the resource; the sink plays no more."""

    def __enter__(self: _Closing) -> _Closing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self: _Closing) -> _Closing:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class EstimatedPosition:
    """Wraps a sink that cannot tell its position; estimates it from ``queued_duration``.

    This is LiveKit Agents 0.12's method, exact only to the sink's own wall-clock estimate; sinks of
    this package and ``rtc.AudioSource`` (through ``LiveKitSink``) never need it.
    """

    def __init__(self, sink: AudioSink) -> None:
        self._sink = sink
        self._pushed = 0

    @property
    def sample_rate(self) -> int:
        return self._sink.sample_rate

    @property
    def num_channels(self) -> int:
        return self._sink.num_channels

    @property
    def queued_duration(self) -> float:
        return self._sink.queued_duration

    @property
    def samples_queued(self) -> int:
        return min(round(self._sink.queued_duration * self._sink.sample_rate), self._pushed)

    @property
    def samples_played(self) -> int:
        return self._pushed - self.samples_queued

    @property
    def samples_written(self) -> int:
        return self._pushed

    async def capture_frame(self, frame: Any) -> None:
        self._pushed += frame.samples_per_channel
        await self._sink.capture_frame(frame)

    def clear_queue(self) -> None:
        self._pushed -= self.samples_queued
        self._sink.clear_queue()

    async def wait_for_playout(self) -> None:
        await self._sink.wait_for_playout()


def is_livekit_source(sink: object) -> bool:
    """True for a ``livekit.rtc.AudioSource`` (checked by name, without importing livekit)."""
    return LIVEKIT_SOURCE in type_names(sink)


def is_positioned(sink: object) -> TypeGuard[PositionedSink]:
    """``isinstance(sink, PositionedSink)``, cached per class."""
    return conforms(sink, PositionedSink)


def is_settling(sink: object) -> TypeGuard[SettlingSink]:
    """``isinstance(sink, SettlingSink)``, cached per class."""
    return conforms(sink, SettlingSink)


def positioned(sink: object) -> PositionedSink:
    """The sink as the engine drives it: itself if it reports a position, else adapted.

    An output with a registered adapter goes through it (see ``adapters``): a plain
    ``rtc.AudioSource`` through ``LiveKitSink``, which measures its queue (rtc does not say
    the ``queue_size_ms`` it was made with) before its first audio.
    """
    if is_positioned(sink):
        return sink
    adapter = adapter_for(sink)
    if adapter is not None:
        adapted = adapter(sink)
        if not is_positioned(adapted):
            raise TypeError(
                f"the adapter registered for {type(sink).__name__} made a"
                f" {type(adapted).__name__}, which does not report samples_played and"
                " samples_written"
            )
        return adapted
    if conforms(sink, AudioSink):
        return EstimatedPosition(cast(AudioSink, sink))
    missing = [
        name
        for name in (
            "sample_rate",
            "num_channels",
            "queued_duration",
            "capture_frame",
            "clear_queue",
            "wait_for_playout",
        )
        if not hasattr(sink, name)
    ]
    raise TypeError(
        f"audio_source must be shaped like livekit.rtc.AudioSource; {type(sink).__name__}"
        f" lacks {', '.join(missing)}"
    )
