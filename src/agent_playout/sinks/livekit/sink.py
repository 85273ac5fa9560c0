"""``livekit.rtc.AudioSource`` as an exact sink, with fades and pause (extra ``[livekit]``).

Position source: the source's native 10 ms release ticks, counted by ``TickCounter``.

The sink keeps what the source has not released yet (a copy of the native buffer, plus the
audio not handed to it yet), because the native buffer can only be emptied whole. So on an
interrupt it empties it and queues the next few milliseconds again, faded out; on a pause it
does the same and keeps the rest, which it queues again, faded in, on resume.

Audio goes to the source in few, large captures (``capture_ms``, 500 ms by default, at most
half the queue) timed so that each one that must wait for room waits only until the next
tick. Few captures keep the
cost low with hundreds of sessions; short waits keep the source ready to take the fade at
any moment (a source takes no capture while one is waiting). Native quirks handled here:
only whole 10 ms frames are released (the end of an item is padded to a whole frame with
silence), and a capture is never cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import numpy as np
from livekit import rtc

from ...clock import MonotonicClock
from ...core.frames import Int16Array
from ...core.units import NS_PER_SECOND
from ...errors import PlayoutError
from ..base import buffer_settings, faded, sink_samples, take_samples
from .ticks import (
    GUARD_AFTER_NS,
    TICK_NS,
    CaptureTicket,
    QueueMeter,
    TickCounter,
    between_ticks,
    grid_phase,
)

logger = logging.getLogger("agent_playout")

LEAD_NS = 5_000_000
"""A capture that must wait is requested this long before the tick that makes room."""


_ROUNDS = 6
_CHECKS = 2
_CHECK_TRIES = 6
_LIMIT_SAMPLES_S = 10
"""The largest queue measured (seconds): pass ``queue_size_ms`` for a larger one."""


class SourceQueueError(PlayoutError):
    """The ``rtc.AudioSource``'s queue is not the one the count needs: positions would be wrong.

    rtc does not say the queue a source was made with, so ``LiveKitSink`` measures it; this
    is raised when it differs from ``queue_size_ms``, or cannot be measured.
    """


def _silence(source: rtc.AudioSource, samples: int) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        bytes(samples * source.num_channels * 2), source.sample_rate, source.num_channels, samples
    )


def _empty(source: rtc.AudioSource) -> None:
    """Empty the source after a measuring capture (it may be closed already, on cancel)."""
    with contextlib.suppress(Exception):
        source.clear_queue()


async def _fill(source: rtc.AudioSource, meter: QueueMeter, phase: int | None) -> int | None:
    """Run one fill of ``meter`` into the emptied source; its estimate, if it tells one.

    With the grid's ``phase`` known (from an earlier fill) it starts between two ticks.
    """
    source.clear_queue()
    if phase is not None:
        now = time.monotonic_ns()
        await asyncio.sleep((between_ticks(now, phase) - now) / NS_PER_SECOND)
    try:
        while size := meter.next_fill():
            requested = time.monotonic_ns()
            await source.capture_frame(_silence(source, size))
            meter.filled(size, requested, time.monotonic_ns())
    finally:
        _empty(source)
    return meter.estimate()


async def _confirmed(source: rtc.AudioSource, meter: QueueMeter, queue: int) -> bool | None:
    """Check ``meter``'s estimate ``queue`` against the source: True if it holds, False if
    the queue proved larger, None if the checks told nothing (a loaded process)."""
    confirmations = 0
    for _ in range(_CHECK_TRIES):
        now = time.monotonic_ns()
        await asyncio.sleep((meter.check_start(now) - now) / NS_PER_SECOND)
        try:
            requested = time.monotonic_ns()
            await source.capture_frame(_silence(source, queue))
            held = time.monotonic_ns()
            await source.capture_frame(_silence(source, meter.tick_samples))
            done = time.monotonic_ns()
        finally:
            _empty(source)
        verdict = meter.judge(requested, held, held, done)
        if verdict is False:
            return False
        confirmations += verdict is True
        if confirmations == _CHECKS:
            return True
    return None


async def _measure_queue(source: rtc.AudioSource, counter: TickCounter | None) -> TickCounter:
    """The source's queue, measured from silent captures while it is idle, as a counter.

    ``counter`` holds the queue the sink was told (None if it was not). A told queue costs
    one fill, so that it stays cheap when many sources start together: it is taken unless
    the fill proves the queue larger, or its first capture (a frame short of the told queue,
    into the empty source) had to wait; then the queue is measured, and a told one that
    proves different is a ``SourceQueueError``, as is one that cannot be measured without
    being told. Audio waits meanwhile, since until the grid is known the count would rest
    on a guess. The listener hears only silence, emptied out after each capture.
    """
    tick = source.sample_rate // 100
    told = None if counter is None else counter.queue_limit
    limit = max(_LIMIT_SAMPLES_S * source.sample_rate, 4 * (told or 0))
    floor = 0
    if counter is not None and told is not None:
        meter = QueueMeter(tick, limit, first=told - tick if told > tick else None)
        await _fill(source, meter, None)
        floor = meter.proven_floor()
        if floor <= told and not meter.first_waited():
            counter.adopt_grid(meter.completions_ns)
            return counter
    measured = await _measured(source, tick, limit, told)
    if counter is None or told is None:
        if measured is None:
            raise SourceQueueError(
                "the rtc.AudioSource's queue_size_ms could not be measured (a loaded process?);"
                " pass it: LiveKitSink(source, queue_size_ms=...)"
            )
        return measured
    if measured is None:
        if floor > told:
            raise SourceQueueError(
                f"the rtc.AudioSource's queue holds at least {_ms(floor, source)} ms, not"
                f" queue_size_ms={_ms(told, source)}: pass the size it was made with"
            )
        logger.warning(
            "LiveKitSink could not confirm the source's queue_size_ms=%d", _ms(told, source)
        )
        return counter
    if measured.queue_limit != told:
        raise SourceQueueError(
            f"the rtc.AudioSource's queue is {_ms(measured.queue_limit, source)} ms, not"
            f" queue_size_ms={_ms(told, source)}: pass the size it was made with"
        )
    return measured


async def _measured(
    source: rtc.AudioSource, tick: int, limit: int, expected: int | None
) -> TickCounter | None:
    """Measure the queue by fills, each estimate confirmed; None if no round could tell."""
    phase: int | None = None
    for _ in range(_ROUNDS):
        first = expected - tick if expected is not None and expected > tick else None
        meter = QueueMeter(tick, limit, first=first)
        estimate = await _fill(source, meter, phase)
        if meter.completions_ns:
            phase = grid_phase(done % TICK_NS for done in meter.completions_ns)
        if meter.rough is not None:
            expected = max(meter.rough - tick, tick)
        if estimate is None or await _confirmed(source, meter, estimate) is not True:
            continue
        measured = TickCounter(tick, estimate)
        measured.adopt_grid(meter.completions_ns)
        return measured
    return None


def _ms(samples: int, source: rtc.AudioSource) -> int:
    return samples * 1000 // source.sample_rate


class LiveKitSink:
    """Drives an ``rtc.AudioSource`` and counts, by its native ticks, what it released.

    rtc does not say the queue a source was made with, and the count rests on it: so the
    sink measures it, and the tick grid, from silent captures before the first audio (rtc's
    default, 1000 ms, takes about 0.4 s; audio that comes sooner waits, and ``ready()``
    waits for it). ``queue_size_ms`` says it instead, and is only checked (about 0.1 s); a
    queue that proves different, then or during play, is a ``SourceQueueError`` raised to
    the caller, never a wrong position.
    The fade (``fade_ms``, 0 disables it) is rounded up to whole 10 ms frames, the unit the
    source releases. With ``exact_clear`` an interrupt that lands within 1.5 ms of a tick is
    applied just after that tick, so the count is exact (at most 2 ms later). A sink made in
    a running event loop measures at once, while the source is idle; else at its first audio.
    """

    def __init__(
        self,
        source: rtc.AudioSource,
        *,
        queue_size_ms: int | None = None,
        fade_ms: float = 5.0,
        capture_ms: int = 500,
        exact_clear: bool = True,
    ) -> None:
        rate, channels = source.sample_rate, source.num_channels
        _, fade = buffer_settings(rate, channels, queue_size_ms or 0, fade_ms)
        if queue_size_ms is not None and (queue_size_ms < 10 or queue_size_ms % 10):
            raise ValueError(
                f"queue_size_ms must be a multiple of 10 and >= 10, got {queue_size_ms}: rtc"
                " takes only whole 10 ms frames, and a source without a queue releases audio"
                " unpaced, so there are no ticks to count what was heard"
            )
        if capture_ms < 10:
            raise ValueError(f"capture_ms must be >= 10, got {capture_ms}")
        self._source = source
        self._rate = rate
        self._channels = channels
        self._tick = rate // 100
        self._told = (
            None if queue_size_ms is None else TickCounter(self._tick, queue_size_ms * rate // 1000)
        )
        self._counter = self._told or TickCounter(self._tick, 0)
        self._capture_ms = capture_ms
        self._batch = self._batch_for(self._counter)
        self._fade = -(-fade // self._tick) * self._tick
        self._exact_clear = exact_clear
        self._clock = MonotonicClock()
        self._pending: deque[Int16Array] = deque()
        self._pending_count = 0
        self._history: deque[tuple[int, Int16Array]] = deque()
        self._in_transit = 0
        self._capturing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        self._waiting: CaptureTicket | None = None
        self._stopping: int | None = None
        self._stop_timer: asyncio.TimerHandle | None = None
        self._stop_after: asyncio.Task[None] | None = None
        self._tail_pending = 0
        self._epoch = 0
        self._generation = 0
        self._paused = False
        self._flushing = False
        self._expecting_more = False
        self._dry_floor_ns = 0
        self._underruns = 0
        self._underrun_ns = 0
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()
        self._measured = False
        self._learning: asyncio.Task[TickCounter] | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start_learning()

    def _batch_for(self, counter: TickCounter) -> int:
        """The capture size: ``capture_ms``, at most half the queue, in whole frames."""
        queue_ms = counter.queue_limit * 1000 // self._rate
        return max(min(self._capture_ms, queue_ms // 2) // 10, 1) * self._tick

    def _start_learning(self) -> None:
        """Measure the source's queue and grid in the background, before its first audio."""
        self._learning = asyncio.ensure_future(_measure_queue(self._source, self._told))
        self._learning.add_done_callback(self._learned)

    def _learned(self, task: asyncio.Task[TickCounter]) -> None:
        self._learning = None
        if not task.cancelled():
            error = task.exception()
            if error is None:
                self._counter = task.result()
                self._batch = self._batch_for(self._counter)
                self._measured = True
            else:
                self._failure = error
        self._progress.set()
        self._kick()

    @property
    def queue_size_ms(self) -> int | None:
        """The source's queue as the count uses it (told and checked, or measured); None
        until it is known."""
        return self._counter.queue_limit * 1000 // self._rate if self._measured else None

    async def ready(self) -> None:
        """Return once the source's queue and grid are known, which audio waits for; raises
        ``SourceQueueError`` if the queue differs from the one told, or cannot be measured."""
        while not self._measured:
            if self._learning is None:
                self._raise_failure()
                self._start_learning()
            await self._next_progress()

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
        return self._counter.released(time.monotonic_ns())

    @property
    def samples_written(self) -> int:
        return self._counter.written + self._in_transit + self._pending_count

    @property
    def samples_queued(self) -> int:
        return self.samples_written - self.samples_played

    @property
    def queued_duration(self) -> float:
        return self.samples_queued / self._rate

    @property
    def fade_samples(self) -> int:
        """Length of the fade-out after a stop, in samples per channel (whole 10 ms frames)."""
        return self._fade

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def underruns(self) -> int:
        """How many times the source ran dry while more audio was expected."""
        return self._underruns + (1 if self._dry_since(time.monotonic_ns()) is not None else 0)

    @property
    def underrun_ns(self) -> int:
        """Total time the source spent dry while more audio was expected."""
        now = time.monotonic_ns()
        since = self._dry_since(now)
        return self._underrun_ns + (0 if since is None else now - since)

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame``; returns once the sink has room for more, like the source."""
        samples = sink_samples(frame, self._rate, self._channels)
        self._raise_failure()
        count = samples.size // self._channels
        if count == 0:
            return
        self._end_underrun()
        if not self._measured and self._learning is None:
            self._start_learning()
        self._pending.append(samples.copy())
        self._pending_count += count
        self._expecting_more = True
        self._flushing = False
        self._kick()
        epoch = self._epoch
        while self._pending_count >= self._batch and epoch == self._epoch:
            await self._next_progress()
            self._raise_failure()

    def clear_queue(self) -> None:
        """Drop what is queued but a faded tail; the count is final when this returns.

        While paused, only what the source still holds of the pause's own tail remains.
        """
        self._expecting_more = False
        self._flushing = False
        self._epoch += 1
        self._stop(hold=False, native_only=self._paused)

    def pause(self) -> None:
        """Stop after a faded tail and hold the rest; nothing queued is dropped."""
        if self._paused:
            return
        self._paused = True
        self._stop(hold=True, native_only=False)

    def resume(self) -> None:
        """Queue the held audio again, faded in, from the sample after the pause's tail."""
        if not self._paused:
            return
        self._paused = False
        self._dry_floor_ns = time.monotonic_ns()
        held_count = self._pending_count - self._tail_pending
        if self._fade and held_count > 0:
            tail = self._take_pending(self._tail_pending) if self._tail_pending else None
            held = self._take_pending(held_count)
            lead = held[: self._fade * self._channels]
            held[: lead.size] = faded(lead.reshape(-1, self._channels), down=False).reshape(-1)
            self._pending.extend(piece for piece in (tail, held) if piece is not None)
            self._pending_count = self._tail_pending + held_count
        self._progress.set()
        self._kick()

    async def wait_for_playout(self) -> None:
        """Return once everything captured so far was released (or cleared, or failed)."""
        self._expecting_more = False
        epoch = self._epoch
        tick = self._tick
        target = self._counter.written + self._in_transit + -(-self._pending_count // tick) * tick
        self._flushing = True
        self._kick()
        while epoch == self._epoch:
            self._raise_failure()
            now = time.monotonic_ns()
            if self._counter.released(now) >= target:
                return
            due = self._counter.release_time(target)
            await self._next_progress(None if due is None else due + GUARD_AFTER_NS - now)

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _next_progress(self, timeout_ns: int | None = None) -> None:
        """Wait for the sink's state to change, or for ``timeout_ns``."""
        self._progress.clear()
        timer = None
        if timeout_ns is not None:
            timer = asyncio.get_running_loop().call_later(
                max(timeout_ns, 0) / NS_PER_SECOND, self._progress.set
            )
        try:
            await self._progress.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _kick(self) -> None:
        """Hand the source its next capture now, or set a timer for when it should go."""
        if (
            self._capturing is not None
            or self._learning is not None
            or self._paused
            or self._stopping is not None
            or not self._pending_count
        ):
            self._cancel_timer()
            return
        flushing = self._flushing
        size = min(self._pending_count // self._tick * self._tick, self._batch)
        if size == 0:
            if not flushing:
                return
            size = self._tick
        now = time.monotonic_ns()
        probe = self._probe_size(now)
        if 0 < probe <= size:
            self._cancel_timer()
            self._submit(probe)
            return
        due = self._due(now, size, partial=size < self._batch and not flushing)
        if due <= now:
            self._cancel_timer()
            self._submit(size)
        elif due != self._timer_due:
            self._cancel_timer()
            self._timer_due = due
            self._timer = asyncio.get_running_loop().call_later(
                (due - now) / NS_PER_SECOND, self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = None
        self._kick()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_due = None

    def _probe_size(self, now_ns: int) -> int:
        """While the count rests on a guess: the capture that waits for exactly one tick.

        Audio put into an empty source starts at a tick the count can only guess (the
        native insertion lags the request, more under load). The capture that first fills
        the source one frame past its queue completes on a tick, which settles the count.
        """
        counter = self._counter
        if not counter.provisional or counter.queue_suspect:
            return 0
        return counter.queue_limit + self._tick - (counter.written - counter.released(now_ns))

    def _due(self, now_ns: int, size: int, *, partial: bool) -> int:
        """When a capture of ``size`` should be requested.

        If it fits under the source's queue limit, now; otherwise just before the tick after
        which the source holds at most one frame over the limit with it, so it waits for that
        one tick only. A partial batch also waits until the source runs low.
        """
        counter = self._counter
        written = counter.written
        due = now_ns
        if written - counter.released(now_ns) + size > counter.queue_limit:
            room = counter.release_time(written + size - counter.queue_limit - self._tick)
            if room is not None:
                due = room + TICK_NS - LEAD_NS
        if partial:
            low = counter.release_time(written - self._batch)
            if low is not None:
                due = max(due, low)
        return due

    def _take_pending(self, count: int) -> Int16Array:
        """Remove the next ``count`` pending samples per channel (silence past the end)."""
        taken = take_samples(self._pending, count * self._channels)
        self._pending_count = max(self._pending_count - count, 0)
        missing = count * self._channels - taken.size
        if missing > 0:
            return np.concatenate([taken, np.zeros(missing, dtype=np.int16)])
        return taken

    def _submit(self, size: int) -> None:
        """Start the capture of the next ``size`` samples per channel."""
        data = self._take_pending(size)
        start = self._counter.written + self._in_transit
        self._history.append((start, data))
        released = self._counter.released(time.monotonic_ns())
        while (
            self._history
            and self._history[0][0] + self._history[0][1].size // (self._channels) <= released
        ):
            self._history.popleft()
        self._in_transit = size
        tail = self._tail_pending > 0
        self._tail_pending = 0
        self._capturing = asyncio.ensure_future(
            self._capture(data, size, self._generation, tail=tail)
        )

    async def _capture(self, data: Int16Array, count: int, generation: int, *, tail: bool) -> None:
        """Request one native capture and learn from its completion; never cancelled.

        Audio for an empty source waits until no tick is near, so it surely starts at the
        next one. A stop between the submission and the request drops it (its audio is in
        the tail or held); a completion after a stop says nothing about the new count.
        """
        try:
            now = time.monotonic_ns()
            start = self._counter.unambiguous_start(now)
            if start > now:
                await asyncio.sleep((start - now) / NS_PER_SECOND)
                now = time.monotonic_ns()
            if generation != self._generation:
                return
            self._in_transit = 0
            ticket = self._counter.request(now, count)
            self._waiting = ticket if ticket.excess > 0 else None
            frame = rtc.AudioFrame(data.tobytes(), self._rate, self._channels, count)
            try:
                await self._source.capture_frame(frame)
            except Exception as error:
                if generation == self._generation:
                    self._counter.failed(ticket, count)
                    if tail:
                        logger.warning("the fade-out after a stop could not be queued: %s", error)
                    else:
                        self._failure = error
                return
            if generation == self._generation:
                self._counter.complete(ticket, time.monotonic_ns())
                if self._counter.queue_suspect and self._failure is None:
                    self._failure = SourceQueueError(
                        "the rtc.AudioSource took more audio at once than queue_size_ms="
                        f"{self._counter.queue_limit * 1000 // self._rate} allows: pass the size"
                        " it was made with"
                    )
        finally:
            task = asyncio.current_task()
            if self._capturing is task:
                self._capturing = None
                self._waiting = None
            if self._stop_after is task and self._stopping is not None:
                self._stop_after = None
                self._clear_native(self._stopping)
            self._progress.set()
            self._kick()

    def _stop(self, *, hold: bool, native_only: bool) -> None:
        """Empty the source but for a faded tail; ``hold`` keeps the rest to play later.

        ``native_only`` takes the tail only from what the source holds, not from the audio
        not handed to it yet (which a pause holds back).
        """
        self._cancel_timer()
        self._end_underrun()
        self._generation += 1
        if self._learning is not None:
            if not hold:
                self._take_pending(self._pending_count)
            self._progress.set()
            return
        if self._stopping is not None:
            if not hold:
                tail = self._take_pending(self._tail_pending)
                self._pending.clear()
                if tail.size:
                    self._pending.append(tail)
                self._pending_count = self._tail_pending
            self._progress.set()
            return
        now = time.monotonic_ns()
        if self._waiting is not None:
            clear_at, stop = now, self._waiting.written_after - self._counter.queue_limit
            self._stop_after = self._capturing
        else:
            clear_at, stop = self._counter.stop_point(now, exact=self._exact_clear)
        rest = self._audio_from(
            stop, with_pending=not native_only, limit=None if hold else self._fade
        )
        playing = stop < self._counter.written
        tail = self._tail_of(rest, whole_frames=hold) if playing else rest[:0]
        self._history.clear()
        self._in_transit = 0
        self._counter.stop_at(stop)
        kept = rest[tail.size :] if hold else rest[:0]
        self._pending.clear()
        self._pending.extend(piece for piece in (tail, kept) if piece.size)
        self._pending_count = (tail.size + kept.size) // self._channels
        self._tail_pending = tail.size // self._channels
        self._stopping = stop
        if self._stop_after is None:
            if clear_at <= now:
                self._clear_native(stop)
            else:
                self._stop_timer = asyncio.get_running_loop().call_later(
                    (clear_at - now) / NS_PER_SECOND, self._clear_native, stop
                )
        self._progress.set()

    def _tail_of(self, rest: Int16Array, *, whole_frames: bool) -> Int16Array:
        """The first ``fade`` samples of ``rest``, faded out, in whole 10 ms frames.

        A stop that holds the rest takes only whole frames of audio (padding would put
        silence inside the item); one that drops it pads the tail with silence instead.
        """
        frame = self._tick * self._channels
        tail = rest[: self._fade * self._channels]
        if whole_frames:
            tail = tail[: tail.size // frame * frame]
        if not tail.size:
            return tail
        tail = faded(tail.reshape(-1, self._channels)).reshape(-1)
        if tail.size % frame:
            tail = np.concatenate([tail, np.zeros(frame - tail.size % frame, dtype=np.int16)])
        return tail

    def _audio_from(self, index: int, *, with_pending: bool, limit: int | None) -> Int16Array:
        """What is not yet released from native index ``index`` on, history then pending;
        only the first ``limit`` samples per channel of it when that is all a stop needs."""
        wanted = None if limit is None else limit * self._channels
        pieces = []
        gathered = 0
        sources = [
            data[max(index - start, 0) * self._channels :]
            for start, data in self._history
            if start + data.size // self._channels > index
        ]
        if with_pending:
            sources.extend(self._pending)
        for piece in sources:
            if wanted is not None and gathered >= wanted:
                break
            pieces.append(piece)
            gathered += piece.size
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        return audio if wanted is None else audio[:wanted]

    def _clear_native(self, stop: int) -> None:
        """Empty the native buffer at ``stop`` samples released, and queue the tail at once."""
        self._stopping = None
        self._stop_timer = None
        self._counter.cleared(stop)
        self._source.clear_queue()
        if self._tail_pending:
            self._submit(self._tail_pending)
        self._progress.set()

    def _dry_since(self, now_ns: int) -> int | None:
        """When the source ran dry, if it is dry now while more audio is expected."""
        if not self._expecting_more or self._paused or self._stopping is not None:
            return None
        counter = self._counter
        if self._in_transit or counter.released(now_ns) < counter.written:
            return None
        if self._pending_count >= self._tick:
            return None
        emptied = counter.release_time(counter.written)
        return max(emptied if emptied is not None else now_ns, self._dry_floor_ns)

    def _end_underrun(self) -> None:
        now = time.monotonic_ns()
        since = self._dry_since(now)
        if since is not None and since < now:
            self._underruns += 1
            self._underrun_ns += now - since
        self._dry_floor_ns = now
