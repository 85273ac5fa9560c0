"""``livekit.rtc.AudioSource`` as an exact sink, with fades and pause (extra ``[livekit]``).

Position source: the source's native 10 ms release ticks, counted by ``TickCounter``.

The sink keeps what the source has not released yet (a copy of the native buffer, plus the
audio not handed to it yet), because the native buffer can only be emptied whole. So on an
interrupt it empties it and queues the next few milliseconds again, faded out; on a pause it
does the same and keeps the rest, which it queues again, faded in, on resume.

Audio goes to the source in few, large captures (``capture_ms``, 500 ms by default, at most
half the queue) timed so that each one that must wait for room waits only until the next
tick. Few captures keep the cost low with hundreds of sessions; short waits keep the source
ready to take the fade at any moment (a source takes no capture while one is waiting).

This module is the shell: ``LiveKitScheduler`` decides all of that from events and times;
the sink tells it what happened, reading time only from its ``Clock``, and carries out the
actions it returns against the source.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from livekit import rtc

from ...clock import Clock, MonotonicClock, TimerHandle
from ...core.units import NS_PER_SECOND, ceil_div
from ...errors import PlayoutClosedError, PositionUnconfirmedError
from ..base import SinkSurface, buffer_settings, sink_samples
from .measure import measure_queue
from .meter import SourceQueueError
from .modes import (
    Action,
    ArmTimer,
    CancelTimer,
    ClearNative,
    Fail,
    Input,
    Mode,
    QueueTail,
    Submit,
    Warn,
)
from .scheduler import LiveKitScheduler
from .ticks import TickCounter

__all__ = ["LiveKitSink", "SourceQueueError"]

logger = logging.getLogger("agent_playout")

CLOSE_TIMEOUT_S = 1.0
"""How long ``aclose()`` waits for the source to finish this sink's clear and captures."""
_CLOSE_TIMEOUT_NS = round(CLOSE_TIMEOUT_S * NS_PER_SECOND)


class LiveKitSink(SinkSurface):
    """Drives an ``rtc.AudioSource`` and counts, by its native ticks, what it released.

    rtc does not say the queue a source was made with, and the count rests on it: so the
    sink measures it, and the tick grid, from silent captures before the first audio (rtc's
    default, 1000 ms, takes about 0.4 s; audio that comes sooner waits, and ``ready()``
    waits for it). ``queue_size_ms`` says it instead, and is only checked (about 0.1 s); a
    queue that proves different, then or during play, is a ``SourceQueueError`` raised to
    the caller, never a wrong position.
    The fade (``fade_ms``, 0 disables it) is rounded up to whole 10 ms frames, the unit the
    source releases. With ``exact_clear`` an interrupt that lands within 1.5 ms before or
    2 ms after a tick is applied 2 ms after that tick, so the count is exact (at most 3.5 ms
    later). A sink made in a running event loop measures at once, while the source is idle;
    else at its first audio. ``clock`` is where it reads time and sets its timers (the
    monotonic clock by default). ``aclose()`` it before closing the source, so that a cut's
    put-off clear and fade-out finish first.
    """

    def __init__(
        self,
        source: rtc.AudioSource,
        *,
        queue_size_ms: int | None = None,
        fade_ms: float = 5.0,
        capture_ms: int = 500,
        exact_clear: bool = True,
        clock: Clock | None = None,
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
        super().__init__(rate, channels)
        self._source = source
        tick = rate // 100
        self._told = (
            None if queue_size_ms is None else TickCounter(tick, queue_size_ms * rate // 1000)
        )
        self._fade = ceil_div(fade, tick) * tick
        self._scheduler = LiveKitScheduler(
            channels,
            tick,
            self._told or TickCounter(tick, 0),
            fade=self._fade,
            exact=exact_clear,
            capture_ms=capture_ms,
            underruns=self._underrun_meter,
        )
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._timer: TimerHandle | None = None
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()
        self._learning: asyncio.Task[TickCounter] | None = None
        self._captures: set[asyncio.Task[None]] = set()
        self._closed = False
        self._detached = False
        self._detached_event = asyncio.Event()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start_learning()

    def _start_learning(self) -> None:
        """Measure the source's queue and grid in the background, before its first audio."""
        self._learning = asyncio.ensure_future(measure_queue(self._source, self._told, self._clock))
        self._learning.add_done_callback(self._learned)

    def _learned(self, task: asyncio.Task[TickCounter]) -> None:
        self._learning = None
        if not task.cancelled():
            error = task.exception()
            if error is None:
                self._run(self._scheduler.learned(task.result(), self._clock.now_ns()))
            else:
                self._failure = error
        self._progress.set()

    @property
    def queue_size_ms(self) -> int | None:
        """The source's queue as the count uses it (told and checked, or measured); None
        until it is known."""
        scheduler = self._scheduler
        if scheduler.mode is Mode.LEARNING:
            return None
        return scheduler.counter.queue_limit * 1000 // self._rate

    async def ready(self) -> None:
        """Return once the source's queue and grid are known, which audio waits for; raises
        ``SourceQueueError`` if the queue differs from the one told, or cannot be measured."""
        self._raise_if_closed()
        while self._scheduler.mode is Mode.LEARNING:
            if self._learning is None:
                self._raise_failure()
                self._start_learning()
            await self._next_progress()
            self._raise_if_closed()

    @property
    def source(self) -> rtc.AudioSource:
        return self._source

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def samples_played(self) -> int:
        return self._scheduler.counter.released(self._clock.now_ns())

    @property
    def samples_written(self) -> int:
        return self._scheduler.samples_written

    @property
    def fade_samples(self) -> int:
        """Length of the fade-out after a stop, in samples per channel (whole 10 ms frames)."""
        return self._fade

    @property
    def paused(self) -> bool:
        """The scheduler owns the pause."""
        return self._scheduler.paused

    def _underrun_totals(self) -> tuple[int, int]:
        now = self._clock.now_ns()
        return self._scheduler.underruns(now), self._scheduler.underrun_ns(now)

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame``; returns once the sink has room for more, like the source."""
        self._raise_if_closed()
        samples = sink_samples(frame, self._rate, self._channels)
        self._raise_failure()
        count = samples.size // self._channels
        if count == 0:
            return
        scheduler = self._scheduler
        if scheduler.mode is Mode.LEARNING and self._learning is None:
            self._start_learning()
        self._run(scheduler.queued(samples.copy(), count, self._clock.now_ns()))
        epoch = scheduler.epoch
        while scheduler.backlogged() and epoch == scheduler.epoch:
            await self._next_progress()
            self._raise_failure()
            self._raise_if_detached()

    def clear_queue(self) -> None:
        """Drop what is queued but a faded tail; the count is final when this returns.

        While paused, only what the source still holds of the pause's own tail remains.
        Once closed, it does nothing (nor do ``pause()`` and ``resume()``).
        """
        if not self._detached:
            self._run(self._scheduler.clear(self._clock.now_ns()))

    def pause(self) -> None:
        """Stop after a faded tail and hold the rest; nothing queued is dropped."""
        if not self._detached:
            self._run(self._scheduler.pause(self._clock.now_ns()))

    def resume(self) -> None:
        """Queue the held audio again, faded in, from the sample after the pause's tail."""
        if not self._detached:
            self._run(self._scheduler.resume(self._clock.now_ns()))

    async def wait_for_playout(self) -> None:
        """Return once everything captured so far was released (or cleared, or failed);
        ``PlayoutClosedError`` once the sink is closed, as what it holds will never go out."""
        self._raise_if_detached()
        scheduler = self._scheduler
        epoch = scheduler.epoch
        target, actions = scheduler.flush(self._clock.now_ns())
        self._run(actions)
        while epoch == scheduler.epoch:
            self._raise_failure()
            self._raise_if_detached()
            if scheduler.counter.released(self._clock.now_ns()) >= target:
                return
            await self._next_progress(scheduler.flush_deadline(target))

    async def settle(self, start: int, end: int) -> int:
        """Samples of ``[start, end)`` (an item cut short) that went out, once its native
        clear ran: all of them, as counted; ``PositionUnconfirmedError`` if that clear ran so
        late (past, or within 1.5 ms of, the next tick) that audio the count does not have
        may have gone out first, or if the sink was closed before that clear ran."""
        scheduler = self._scheduler
        while scheduler.mode is Mode.STOPPING:
            if self._detached:
                raise PositionUnconfirmedError(
                    f"livekit: the sink was closed before the clear that cut samples [{start},"
                    f" {end}) ran, so the source may have released more than was counted"
                )
            await self._next_progress()
        late = scheduler.late_ticks(start, end)
        if late:
            raise PositionUnconfirmedError(
                f"livekit: the clear that cut samples [{start}, {end}) ran too late to be sure"
                f" of (an overloaded event loop): {late} tick(s) may have released audio"
                f" first, so up to {late * 10} ms more may have been heard than counted"
            )
        return end - start

    async def aclose(self) -> None:
        """Cut what plays, stop measuring, and wait (at most ``CLOSE_TIMEOUT_S`` on the
        sink's clock) until the source ran this sink's clear and captures and released the
        faded tail, so that it may be closed without a click or a call left on it. The
        source stays open (it is the caller's); audio after this raises
        ``PlayoutClosedError``."""
        if self._closed:
            await self._detached_event.wait()
            return
        self._closed = True
        try:
            if self._scheduler.input is not Input.SILENT:
                self.clear_queue()
            if self._learning is not None:
                self._learning.cancel()  # audio waits while it runs: nothing of it is heard
            if not await self._source_idle(self._clock.now_ns() + _CLOSE_TIMEOUT_NS):
                logger.warning(
                    "LiveKitSink: the source did not finish this sink's clear or captures"
                    " within %.1f s; they were abandoned",
                    CLOSE_TIMEOUT_S,
                )
        finally:
            self._detach()

    async def _source_idle(self, deadline_ns: int) -> bool:
        """Wait until no clear is due, no capture or measurement of this sink runs, and the
        source released all it was given (a clear's faded tail included); False if
        ``deadline_ns`` came first. Each of those ends by waking ``_progress``."""
        scheduler, clock = self._scheduler, self._clock
        while (now := clock.now_ns()) < deadline_ns:
            wake = deadline_ns
            busy = self._learning is not None or scheduler.mode is Mode.STOPPING
            if not busy and all(task.done() for task in self._captures):
                written = scheduler.counter.written
                if scheduler.counter.released(now) >= written:
                    return True
                due = scheduler.flush_deadline(written)
                wake = deadline_ns if due is None else min(due, deadline_ns)
            await self._next_progress(wake)
        return False

    def _detach(self) -> None:
        """Leave the source for good: no timer, and nothing more is asked of it."""
        self._detached = True
        self._detached_event.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        learning = self._learning
        if learning is not None:
            learning.cancel()
        for task in self._captures:
            task.cancel()
        self._progress.set()

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise PlayoutClosedError("LiveKitSink is closed; create a new one")

    def _raise_if_detached(self) -> None:
        if self._detached:
            raise PlayoutClosedError("LiveKitSink is closed; create a new one")

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def _next_progress(self, deadline_ns: int | None = None) -> None:
        """Wait for the sink's state to change, or until ``deadline_ns``."""
        self._progress.clear()
        timer = (
            None if deadline_ns is None else self._clock.call_at(deadline_ns, self._progress.set)
        )
        try:
            await self._progress.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _run(self, actions: list[Action]) -> None:
        """Carry out the scheduler's actions, in order (once closed, none that use the source)."""
        for action in actions:
            if self._detached and isinstance(action, (Submit, ArmTimer, ClearNative)):
                continue
            if isinstance(action, Submit):
                task = asyncio.ensure_future(self._capture(action))
                self._captures.add(task)
                task.add_done_callback(self._captures.discard)
            elif isinstance(action, ArmTimer):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self._clock.call_at(action.deadline_ns, self._on_timer)
            elif isinstance(action, CancelTimer):
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            elif isinstance(action, ClearNative):
                try:
                    self._source.clear_queue()
                except BaseException:
                    self._scheduler.clear_failed()
                    raise
            elif isinstance(action, QueueTail):
                self._run(self._scheduler.queue_tail(self._clock.now_ns()))
            elif isinstance(action, Fail):
                if self._failure is None:
                    self._failure = action.error
            elif isinstance(action, Warn):
                logger.warning("%s", action.message)
            else:
                self._progress.set()

    def _on_timer(self) -> None:
        self._timer = None
        self._run(self._scheduler.timer_fired(self._clock.now_ns()))

    async def _capture(self, submit: Submit) -> None:
        """Request one native capture and tell the scheduler how it went; cancelled only by
        an ``aclose()`` that gave up on the source."""
        clock, scheduler, token = self._clock, self._scheduler, submit.token
        try:
            now = clock.now_ns()
            start = scheduler.capture_start(now)
            if start > now:
                await clock.sleep_until(start)
                now = clock.now_ns()
            ticket = scheduler.capture_requested(token, submit.count, now)
            if ticket is None:
                return
            frame = rtc.AudioFrame(submit.data.tobytes(), self._rate, self._channels, submit.count)
            try:
                await self._source.capture_frame(frame)
            except Exception as error:
                self._run(scheduler.capture_failed(token, ticket, submit.count, error))
                return
            self._run(scheduler.capture_completed(token, ticket, clock.now_ns()))
        finally:
            self._run(scheduler.capture_finished(token, clock.now_ns()))
