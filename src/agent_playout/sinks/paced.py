"""Reference in-process sinks: play at real time on a ``Clock`` and count every sample.

Position source: the sink's own integer clock. A sample counts as played once the clock
has passed its place in the stream, so the count is exact by construction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ..clock import Clock, MonotonicClock, TimerHandle
from ..core.frames import Int16Array
from ..core.positions import samples_to_ns
from ..core.units import NS_PER_SECOND, REALTIME_SAMPLE_RATE
from .base import (
    NEVER,
    AudioCallback,
    SinkSurface,
    Waiters,
    buffer_settings,
    faded,
    sink_samples,
    take_samples,
)


class PacedSink(SinkSurface):
    """Plays audio at real time with a bounded queue, like ``rtc.AudioSource``, but exactly.

    ``capture_frame`` returns once the queue holds at most ``queue_size_ms`` of audio, so a
    producer stays that far ahead of the listener. ``on_audio`` receives each stretch of
    audio as it is played (what the listener hears), e.g. to write it to a file.
    On ``clear_queue`` the first ``fade_ms`` of what was queued is kept, faded out, and
    played, so an interrupt never clicks; those samples count as played.

    Reading a property never calls ``on_audio``: what has played is handed over by the
    sink's own calls (``capture_frame``, ``clear_queue``, ``wait_for_playout``, ``pause``,
    ``resume``) and its timers, so a count can be read anywhere without raising.
    """

    def __init__(
        self,
        sample_rate: int = REALTIME_SAMPLE_RATE,
        num_channels: int = 1,
        *,
        queue_size_ms: int = 200,
        fade_ms: float = 5.0,
        clock: Clock | None = None,
        on_audio: AudioCallback | None = None,
    ) -> None:
        self._queue_limit, self._fade_samples = buffer_settings(
            sample_rate, num_channels, queue_size_ms, fade_ms
        )
        super().__init__(sample_rate, num_channels)
        self._clock: Clock = clock or MonotonicClock()
        self._on_audio = on_audio
        self._keep_audio = on_audio is not None
        self._chunks: deque[Int16Array] = deque()
        self._played = 0
        self._emitted = 0
        self._written = 0
        self._segment_start_ns = 0
        self._segment_base = 0
        self._running = False
        self._stop_at: int | None = None
        self._expecting_more = False
        self._waiters = Waiters()
        self._timer: TimerHandle | None = None

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def samples_played(self) -> int:
        self._advance_count()
        return self._played

    @property
    def samples_written(self) -> int:
        return self._written

    def _underrun_totals(self) -> tuple[int, int]:
        self._advance_count()
        meter = self._underrun_meter
        return meter.count(), meter.length(self._clock.now_ns())

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame`` and return once the queue is back within its limit."""
        samples = sink_samples(frame, self._rate, self._channels)
        count = samples.size // self._channels
        if count == 0:
            return
        self._advance()
        now = self._clock.now_ns()
        self._underrun_meter.refilled(now)
        if self._keep_audio:
            self._chunks.append(samples.copy())
        self._written += count
        self._expecting_more = True
        if not self._running and not self._paused:
            self._start_segment(now)
        target = self._written - self._queue_limit
        if self._played < target:
            await self._wait_for_played(target)

    def clear_queue(self) -> None:
        """Drop what is queued, keeping a short faded tail that still plays."""
        self._advance()
        self._expecting_more = False
        self._underrun_meter.forget()
        if self._paused:
            keep = max((self._stop_at or self._played) - self._played, 0)
        else:
            keep = min(self._fade_samples, self._written - self._played)
        if self._keep_audio:
            head = self._take_head(keep)
            self._chunks.clear()
            if keep:
                self._chunks.append(head if self._paused else self._faded(head, down=True))
        self._written = self._played + keep
        if keep == 0:
            self._running = False
        self._waiters.end()
        self._reschedule()

    async def wait_for_playout(self) -> None:
        """Return once everything captured so far has been played (or cleared)."""
        self._expecting_more = False
        self._advance()
        if self._played < self._written:
            await self._wait_for_played(self._written)

    def pause(self) -> None:
        """Hold the queue: nothing is dropped, and the position stops after a short fade."""
        self._advance()
        if self._paused:
            return
        self._paused = True
        keep = min(self._fade_samples, self._written - self._played)
        self._stop_at = self._played + keep
        if self._keep_audio and keep:
            self._chunks.appendleft(self._faded(self._take_head(keep), down=True))
        if keep == 0:
            self._running = False
        self._reschedule()

    def resume(self) -> None:
        """Continue from the sample after the pause, fading back in."""
        self._advance()
        if not self._paused:
            return
        self._paused = False
        self._stop_at = None
        keep = min(self._fade_samples, self._written - self._played)
        if self._keep_audio and keep:
            self._chunks.appendleft(self._faded(self._take_head(keep), down=False))
        if not self._running and self._played < self._written:
            self._start_segment(self._clock.now_ns())
        self._reschedule()

    def _start_segment(self, now_ns: int) -> None:
        self._segment_start_ns = now_ns
        self._segment_base = self._played
        self._running = True
        self._reschedule()

    def _time_of(self, played: int) -> int:
        """When the running segment reaches ``played`` samples."""
        return self._segment_start_ns + samples_to_ns(played - self._segment_base, self._rate)

    def _advance(self) -> None:
        """Bring the count up to the clock and hand what has played to ``on_audio``."""
        self._advance_count()
        if self._keep_audio and self._played > self._emitted:
            self._emit_audio(self._played - self._emitted)

    def _advance_count(self) -> None:
        """Bring the count up to the clock; nothing is handed to ``on_audio``."""
        if not self._running:
            return
        now = self._clock.now_ns()
        reached = self._segment_base + (now - self._segment_start_ns) * self._rate // NS_PER_SECOND
        limit = self._written if self._stop_at is None else min(self._written, self._stop_at)
        if reached >= limit:
            self._played = limit
            self._running = False
            if self._expecting_more and not self._paused:
                self._underrun_meter.went_dry(self._time_of(limit))
        else:
            self._played = reached

    def _emit_audio(self, count: int) -> None:
        """Hand the next ``count`` samples per channel to ``on_audio``; counted as handed
        over first, so a callback that raises never gets the same audio twice."""
        assert self._on_audio is not None
        self._emitted += count
        self._on_audio(self._take_head(count))

    def _take_head(self, count: int) -> Int16Array:
        """Remove and return the next ``count`` queued samples per channel."""
        return take_samples(self._chunks, count * self._channels)

    def _faded(self, samples: Int16Array, *, down: bool) -> Int16Array:
        return faded(samples.reshape(-1, self._channels), down=down).reshape(-1)

    async def _wait_for_played(self, target: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(target, future)
        self._reschedule()
        await future

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._arm(self._waiters.next_target())

    def _arm(self, target: int) -> None:
        """Wake when the running segment reaches ``target`` (never, for NEVER)."""
        if target != NEVER and self._running:
            self._timer = self._clock.call_at(self._time_of(target), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._advance()
        except Exception as error:  # on_audio raised: every waiting call raises it
            self._waiters.end(error)
            return
        self._arm(self._waiters.release(self._played))


class NullSink(PacedSink):
    """Paced like ``PacedSink`` but keeps no audio: for load tests and headless runs."""

    def __init__(
        self,
        sample_rate: int = REALTIME_SAMPLE_RATE,
        num_channels: int = 1,
        *,
        queue_size_ms: int = 200,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            sample_rate, num_channels, queue_size_ms=queue_size_ms, fade_ms=0.0, clock=clock
        )
