"""``livekit.rtc.AudioSource`` as an exact sink (extra ``[livekit]``).

Position source: the source's native 10 ms release ticks. The native buffer releases one
10 ms frame per tick on a drift-free grid fixed when the source was made. A capture that
had to wait for room completes on the tick that brings the buffer down to
``queue_size_ms``, so at that moment exactly ``written - queue`` samples were released: an
anchor. From an anchor the count is ``anchor + frame * whole ticks since``, capped at what
was written. The tick grid's phase is learned from the completion times of such captures.

Two native quirks are handled here: only whole 10 ms frames are released (each capture is
padded to a whole frame with silence), and a capture cancelled while it waits leaves the
native request running (captures are never cancelled; the next one waits for it).
"""

from __future__ import annotations

import asyncio
import cmath
import logging
import math
import time
from collections import deque
from typing import Any

import numpy as np
from livekit import rtc

from ..clock import MonotonicClock
from ..frames import frame_samples

logger = logging.getLogger("agent_playout")

TICK_NS = 10_000_000
_PHASE_WINDOW = 32
_GUARD_BEFORE_NS = 3_500_000
_GUARD_AFTER_NS = 500_000
_EARLY_NS = 1_000_000
_INSERT_NS = 1_000_000
_PROMPT_NS = 2_000_000


class LiveKitSink:
    """Drives an ``rtc.AudioSource`` and counts, by its native ticks, what it released.

    ``queue_size_ms`` must be the value the source was made with (``rtc.AudioSource``'s
    default is 1000 ms); a mismatch is detected at the first anchor, logged, and corrected.
    With ``exact_clear`` an interrupt that lands within a few milliseconds of a tick is
    applied just after that tick, so the count is exact (at most 4 ms later).
    """

    def __init__(
        self,
        source: rtc.AudioSource,
        *,
        queue_size_ms: int = 1000,
        exact_clear: bool = True,
    ) -> None:
        self._source = source
        self._rate = source.sample_rate
        self._channels = source.num_channels
        self._tick_samples = self._rate // 100
        self._queue_limit = self._rate * queue_size_ms // 1000
        self._queue_checked = False
        self._exact_clear = exact_clear
        self._clock = MonotonicClock()
        self._written = 0
        self._anchor_released = 0
        self._anchor_tick_ns: int | None = None
        self._anchor_provisional = True
        self._last_request_ns = -_INSERT_NS
        self._offsets: deque[float] = deque(maxlen=_PHASE_WINDOW)
        self._phase_ns: int | None = None
        self._first_insert: tuple[int, int] | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._pending_clear: asyncio.TimerHandle | None = None
        self._clear_done: asyncio.Event | None = None

    @property
    def source(self) -> rtc.AudioSource:
        return self._source

    @property
    def clock(self) -> MonotonicClock:
        return self._clock

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def num_channels(self) -> int:
        return self._channels

    @property
    def samples_played(self) -> int:
        return self._released(time.monotonic_ns())

    @property
    def samples_queued(self) -> int:
        return self._written - self._released(time.monotonic_ns())

    @property
    def samples_written(self) -> int:
        return self._written

    @property
    def queued_duration(self) -> float:
        return self.samples_queued / self._rate

    def _released(self, now_ns: int) -> int:
        """Samples the native buffer has released by ``now_ns``."""
        if self._anchor_tick_ns is None:
            return self._anchor_released
        ticks = max((now_ns - self._anchor_tick_ns) // TICK_NS, 0)
        return min(self._anchor_released + ticks * self._tick_samples, self._written)

    def _released_through(self, tick_ns: int) -> int:
        """Samples released once the tick nearest ``tick_ns`` has fired.

        Rounds rather than floors: the anchor sits on the grid as it was learned then, and
        the phase may have been refined by a fraction of a millisecond since.
        """
        if self._anchor_tick_ns is None:
            return self._anchor_released
        ticks = max(round((tick_ns - self._anchor_tick_ns) / TICK_NS), 0)
        return min(self._anchor_released + ticks * self._tick_samples, self._written)

    def _grid_tick_at_or_before(self, when_ns: int) -> int:
        """The latest tick time <= ``when_ns`` (mid-interval if the grid is not known yet)."""
        phase = self._phase_ns if self._phase_ns is not None else when_ns - TICK_NS // 2
        return when_ns - (when_ns - phase) % TICK_NS

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame`` on the source; returns when the source has room, like the source."""
        samples = frame_samples(frame)
        if frame.sample_rate != self._rate or frame.num_channels != self._channels:
            raise ValueError(
                f"frame is {frame.sample_rate} Hz x{frame.num_channels}, the source plays"
                f" {self._rate} Hz x{self._channels}"
            )
        count = samples.size // self._channels
        if count == 0:
            return
        padded = -(-count // self._tick_samples) * self._tick_samples
        if padded != count:
            samples = np.concatenate(
                [samples, np.zeros((padded - count) * self._channels, dtype=np.int16)]
            )
        await self._settle_previous()
        rtc_frame = rtc.AudioFrame(samples.tobytes(), self._rate, self._channels, padded)
        self._in_flight = asyncio.ensure_future(self._capture(rtc_frame, padded))
        await asyncio.shield(self._in_flight)

    async def _settle_previous(self) -> None:
        """Wait for a capture or deferred clear still running natively from an earlier call."""
        if self._clear_done is not None:
            await self._clear_done.wait()
        if self._in_flight is not None and not self._in_flight.done():
            await asyncio.gather(self._in_flight, return_exceptions=True)

    async def _capture(self, rtc_frame: rtc.AudioFrame, count: int) -> None:
        now = time.monotonic_ns()
        released = self._released(now)
        if released >= self._written:
            self._anchor_released = self._written
            self._anchor_tick_ns = self._grid_tick_at_or_before(now)
            self._anchor_provisional = True
            if self._first_insert is None:
                self._first_insert = (now, self._written)
        self._written += count
        excess = self._written - released - self._queue_limit
        written_after = self._written
        self._last_request_ns = time.monotonic_ns()
        await self._source.capture_frame(rtc_frame)
        done_ns = time.monotonic_ns()
        if self._waited(excess, done_ns - now):
            self._anchor_at(done_ns, written_after)

    def _waited(self, excess: int, elapsed_ns: int) -> bool:
        """Whether a capture that put ``excess`` samples over the limit really waited for
        the ticks that release them (a count slightly off could think so wrongly)."""
        if excess <= 0:
            return False
        ticks = -(-excess // self._tick_samples)
        if ticks == 1:
            return elapsed_ns > 2_000_000
        return elapsed_ns >= (ticks - 1) * TICK_NS - 1_000_000

    def _anchor_at(self, done_ns: int, written_after: int) -> None:
        """A capture that waited finished: the buffer was exactly at the queue limit.

        Completions reach Python late under load, never early. So a completion at or
        after the tick the count already predicts only confirms it (and, when prompt,
        refines the grid's phase); one that comes earlier shows the count is behind, and
        re-anchors it. The count thus converges on the earliest, truest completions.
        An anchor guessed from the learned grid when audio went into an empty buffer is
        provisional: the grid may be a fraction of a millisecond off the native ticks, so
        the first completion after it replaces it whatever its time.
        """
        if self._written != written_after:
            return
        expected = None if self._anchor_provisional else self._expected_completion(written_after)
        if expected is not None and done_ns >= expected - _EARLY_NS:
            if done_ns - expected <= _PROMPT_NS:
                self._learn_phase(done_ns)
            return
        self._learn_phase(done_ns)
        tick = self._grid_tick_at_or_before(done_ns + TICK_NS // 2)
        if not self._queue_checked:
            self._check_queue_limit(tick, written_after)
        self._anchor_released = written_after - self._queue_limit
        self._anchor_tick_ns = tick
        self._anchor_provisional = False

    def _expected_completion(self, written_after: int) -> int | None:
        """When the current count says a capture ending at ``written_after`` completes."""
        if self._anchor_tick_ns is None or not self._queue_checked:
            return None
        target = written_after - self._queue_limit - self._anchor_released
        ticks = max(-(-target // self._tick_samples), 0)
        return self._anchor_tick_ns + ticks * TICK_NS

    def _learn_phase(self, done_ns: int) -> None:
        angle = 2 * math.pi * (done_ns % TICK_NS) / TICK_NS
        self._offsets.append(angle)
        mean = sum(cmath.exp(1j * a) for a in self._offsets)
        self._phase_ns = round((cmath.phase(mean) % (2 * math.pi)) / (2 * math.pi) * TICK_NS)

    def _check_queue_limit(self, tick_ns: int, written: int) -> None:
        """Compare the configured queue with what the first anchor implies; adopt the latter."""
        self._queue_checked = True
        if self._first_insert is None:
            return
        start_ns, start_written = self._first_insert
        ticks = (tick_ns - self._grid_tick_at_or_before(start_ns)) // TICK_NS
        implied = written - start_written - ticks * self._tick_samples
        if abs(implied - self._queue_limit) >= 2 * self._tick_samples:
            logger.warning(
                "LiveKitSink: the source behaves as if queue_size_ms=%d, not %d; using %d."
                " Pass the source's queue_size_ms to LiveKitSink for exact positions.",
                implied * 1000 // self._rate,
                self._queue_limit * 1000 // self._rate,
                implied * 1000 // self._rate,
            )
            self._queue_limit = implied

    def clear_queue(self) -> None:
        """Drop what is queued; the released count is final when this returns.

        The native clear is put off (by at most a few milliseconds) when it could race
        either a release tick or the insertion of a capture just requested, which the
        native side completes after the request returns: cleared before it, that audio
        would still play.
        """
        now = time.monotonic_ns()
        clear_at = now
        if self._exact_clear and now - self._last_request_ns < _INSERT_NS:
            clear_at = self._last_request_ns + _INSERT_NS
        tick = self._next_tick_within_guard(clear_at)
        if tick is not None:
            self._written = self._released_through(tick)
            clear_at = max(clear_at, tick + _GUARD_AFTER_NS)
        else:
            self._written = self._released(clear_at)
        if clear_at <= now:
            self._clear_native()
            return
        self._clear_done = asyncio.Event()
        delay = (clear_at - now) / 1e9
        self._pending_clear = asyncio.get_running_loop().call_later(delay, self._clear_native)

    def _next_tick_within_guard(self, now_ns: int) -> int | None:
        """A tick so close to ``now_ns`` that clearing now could race it, if any."""
        if not self._exact_clear or self._phase_ns is None:
            return None
        if self._written == self._released(now_ns):
            return None
        previous = self._grid_tick_at_or_before(now_ns)
        if now_ns - previous <= _GUARD_AFTER_NS:
            return previous
        upcoming = previous + TICK_NS
        if upcoming - now_ns <= _GUARD_BEFORE_NS:
            return upcoming
        return None

    def _clear_native(self) -> None:
        self._pending_clear = None
        self._anchor_released = self._written
        self._anchor_tick_ns = None
        self._source.clear_queue()
        if self._clear_done is not None:
            self._clear_done.set()
            self._clear_done = None

    async def wait_for_playout(self) -> None:
        """Return once the source has released everything written (or it was cleared)."""
        while self._anchor_tick_ns is not None and self._written > self._released(
            time.monotonic_ns()
        ):
            ticks = -(-(self._written - self._anchor_released) // self._tick_samples)
            deadline = self._anchor_tick_ns + ticks * TICK_NS + _GUARD_AFTER_NS
            await asyncio.sleep(max(deadline - time.monotonic_ns(), 0) / 1e9)
