"""The LiveKit sink's policy, sans I/O: when to capture, what, and when a clear may run.

No asyncio, no clock, no rtc. ``LiveKitScheduler`` takes events with their times (audio
queued, a capture requested, completed or failed, a clear, a pause, a resume, a flush, the
timer) and returns actions for the shell to carry out against the ``rtc.AudioSource``
(submit a capture, empty the native buffer and then ask for the faded tail, arm or cancel
the one timer, wake the waiters, report a failure). Its ``Mode`` says what the source is
doing; an event a mode cannot take raises ``SchedulerError``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ...core.frames import Int16Array
from ...core.units import ceil_div
from ..base import UnderrunMeter
from .held import HeldAudio
from .meter import queue_exceeded
from .modes import (
    CANCEL,
    CLEAR,
    MOVES,
    QUEUE_TAIL,
    WAKE,
    Action,
    ArmTimer,
    Fail,
    Input,
    Mode,
    SchedulerError,
    Submit,
    Warn,
)
from .ticks import GUARD_AFTER_NS, GUARD_BEFORE_NS, TICK_NS, CaptureTicket, TickCounter

LEAD_NS = 5_000_000
"""A capture that must wait is requested this long before the tick that makes room."""
_STOPS_KEPT = 16


@dataclass(frozen=True, slots=True)
class StopRecord:
    """A native clear that ran: the count it froze at ``stop``, and how many ticks too late
    it ran (each one released 10 ms the count does not have)."""

    stop: int
    late_ticks: int


@dataclass(frozen=True, slots=True)
class _Restart:
    """How a stop rebuilds the held audio: from native index ``stop``, a faded tail if the
    source was ``playing``, then (``hold``) the rest."""

    stop: int
    playing: bool
    hold: bool
    native_only: bool


class LiveKitScheduler:
    """Everything a ``LiveKitSink`` decides, from the events it is told, with their times."""

    def __init__(
        self,
        channels: int,
        tick_samples: int,
        counter: TickCounter,
        *,
        fade: int,
        exact: bool,
        capture_ms: int,
        underruns: UnderrunMeter | None = None,
    ) -> None:
        self._channels = channels
        self._tick = tick_samples
        self._fade = fade
        self._exact = exact
        self.counter = counter
        """The count of what the source released (replaced once the queue is learned)."""
        self.held = HeldAudio(channels, tick_samples)
        self.mode = Mode.LEARNING
        self.input = Input.SILENT
        self.paused = False
        self.epoch = 0
        """How many clears so far: a waiter of an older epoch stops waiting."""
        self.in_transit = 0
        """Samples per channel submitted but not requested from the source yet."""
        self._capture_ms = capture_ms
        self._rate = tick_samples * 100
        self.batch = self._batch_for(counter)
        """The capture size: ``capture_ms``, at most half the queue, in whole frames."""
        self._next_token = 0
        self._current: int | None = None
        self._slot: int | None = None
        self._tail_token: int | None = None
        self._waiting: CaptureTicket | None = None
        self._timer_due: int | None = None
        self._clear_at: int | None = None
        self._clear_after: int | None = None
        self._stopping: int | None = None
        self.stops: deque[StopRecord] = deque(maxlen=_STOPS_KEPT)
        """The last native clears, so that an item cut short can learn whether its ran late."""
        self._overrun_at: int | None = None
        self._tail_pending = 0
        self._restart: _Restart | None = None
        self._dry_floor_ns = 0
        self._underruns = underruns if underruns is not None else UnderrunMeter()

    # -- modes ------------------------------------------------------------------------

    def _move(self, mode: Mode) -> None:
        if mode not in MOVES[self.mode]:
            raise SchedulerError(f"the LiveKit scheduler cannot move from {self.mode} to {mode}")
        self.mode = mode

    def _expect(self, event: str, *modes: Mode) -> None:
        if self.mode not in modes:
            raise SchedulerError(
                f"{event} in mode {self.mode.value}: only in {', '.join(m.value for m in modes)}"
            )

    def _check_token(self, event: str, token: int) -> None:
        if not 0 < token <= self._next_token:
            raise SchedulerError(f"{event} for capture {token}, which was never submitted")

    # -- what the shell asks ----------------------------------------------------------

    @property
    def samples_written(self) -> int:
        return self.counter.written + self.in_transit + self.held.pending_count

    def backlogged(self) -> bool:
        """Whether a producer should wait before queueing more (a batch is pending)."""
        return self.held.pending_count >= self.batch

    def _batch_for(self, counter: TickCounter) -> int:
        queue_ms = counter.queue_limit * 1000 // self._rate
        return max(min(self._capture_ms, queue_ms // 2) // 10, 1) * self._tick

    def learned(self, counter: TickCounter, now_ns: int) -> list[Action]:
        """The queue and grid are known: count with ``counter`` from now on."""
        self._expect("learned", Mode.LEARNING)
        self.counter = counter
        self.batch = self._batch_for(counter)
        self._move(Mode.IDLE)
        return [WAKE, *self._kick(now_ns)]

    def queued(self, samples: Int16Array, count: int, now_ns: int) -> list[Action]:
        """``count`` samples per channel of ``samples`` (a copy the scheduler keeps) came."""
        self.underrun_ended(now_ns)
        self.held.append(samples, count)
        self.input = Input.STREAMING
        return self._kick(now_ns)

    def flush(self, now_ns: int) -> tuple[int, list[Action]]:
        """Everything queued is to be played out: the released count that says it has."""
        self.input = Input.ENDING
        tick = self._tick
        target = self.counter.written + self.in_transit
        target += ceil_div(self.held.pending_count, tick) * tick
        return target, self._kick(now_ns)

    def late_ticks(self, start: int, end: int) -> int:
        """How many ticks late the native clear that cut ``[start, end)`` (on the
        ``samples_written`` axis) ran: 0 if it ran in time, or if no clear cut that span."""
        return max(
            (record.late_ticks for record in self.stops if start <= record.stop <= end), default=0
        )

    def flush_deadline(self, target: int) -> int | None:
        """When to look again whether ``target`` samples were released (None: at a change)."""
        due = self.counter.release_time(target)
        return None if due is None else due + GUARD_AFTER_NS

    def timer_fired(self, now_ns: int) -> list[Action]:
        """The armed timer fired: a capture is due, or the native clear."""
        self._expect("timer_fired", Mode.ARMED, Mode.STOPPING)
        if self.mode is Mode.STOPPING:
            if self._clear_at is None:
                raise SchedulerError("timer_fired while stopping with no clear due at a time")
            return self._clear_native(now_ns)
        self._timer_due = None
        self._move(Mode.IDLE)
        return self._kick(now_ns)

    # -- captures ---------------------------------------------------------------------

    def capture_start(self, now_ns: int) -> int:
        """When capture asked at ``now_ns`` should be requested: audio for an empty source
        waits until no tick is near, so it surely starts at the next one."""
        return self.counter.unambiguous_start(now_ns)

    def capture_requested(self, token: int, count: int, now_ns: int) -> CaptureTicket | None:
        """Capture ``token`` is being requested now; None if a stop dropped it (its audio is
        in the tail, or held)."""
        self._check_token("capture_requested", token)
        if token != self._current:
            return None
        self.in_transit = 0
        ticket = self.counter.request(now_ns, count)
        self._waiting = ticket if ticket.excess > 0 else None
        return ticket

    def capture_completed(self, token: int, ticket: CaptureTicket, now_ns: int) -> list[Action]:
        """Capture ``token`` returned at ``now_ns``: learn from it, unless a stop came since."""
        if token != self._current:
            return []
        counter = self.counter
        counter.complete(ticket, now_ns)
        if counter.queue_suspect:
            return [Fail(queue_exceeded(counter.queue_limit * 1000 // self._rate))]
        return []

    def capture_failed(
        self, token: int, ticket: CaptureTicket, count: int, error: Exception
    ) -> list[Action]:
        """Capture ``token`` of ``count`` samples raised ``error``: its audio never went in.

        A failed fade-out after a stop is only worth a warning: the count stands."""
        if token != self._current:
            return []
        self.counter.failed(ticket, count)
        if token == self._tail_token:
            return [Warn(f"the fade-out after a stop could not be queued: {error}")]
        return [Fail(error)]

    def capture_finished(self, token: int, now_ns: int) -> list[Action]:
        """Capture ``token`` is over (returned, failed, or dropped): the source is free."""
        self._check_token("capture_finished", token)
        actions: list[Action] = [WAKE]
        if self._slot == token:
            self._slot = None
            self._waiting = None
            if self.mode is Mode.CAPTURING:
                self._move(Mode.IDLE)
        if self.mode is Mode.STOPPING and self._clear_after == token:
            actions.extend(self._clear_native(now_ns))
        actions.extend(self._kick(now_ns))
        return actions

    # -- stops ------------------------------------------------------------------------

    def clear(self, now_ns: int) -> list[Action]:
        """Drop what is queued but a faded tail; the count is final once the actions ran.

        While paused, only what the source still holds of the pause's own tail remains.
        """
        self.input = Input.SILENT
        self.epoch += 1
        return self._stop(now_ns, hold=False, native_only=self.paused)

    def pause(self, now_ns: int) -> list[Action]:
        """Stop after a faded tail and hold the rest; nothing queued is dropped."""
        if self.paused:
            return []
        self.paused = True
        return self._stop(now_ns, hold=True, native_only=False)

    def resume(self, now_ns: int) -> list[Action]:
        """Queue the held audio again, faded in, from the sample after the pause's tail."""
        if not self.paused:
            return []
        self.paused = False
        self._dry_floor_ns = now_ns
        self.held.fade_in_after(self._tail_pending, self._fade)
        return [WAKE, *self._kick(now_ns)]

    def _stop(self, now_ns: int, *, hold: bool, native_only: bool) -> list[Action]:
        """Empty the source but for a faded tail; ``hold`` keeps the rest to play later.

        ``native_only`` takes the tail only from what the source holds, not from the audio
        not handed to it yet (which a pause holds back).
        """
        actions = self._disarm()
        self.underrun_ended(now_ns)
        self._current = None
        held = self.held
        if self.mode is Mode.LEARNING or self.mode is Mode.STOPPING:
            if not hold:
                held.replace_pending(held.take(self._tail_pending))
            actions.append(WAKE)
            return actions
        counter = self.counter
        if self._waiting is not None:
            clear_at, stop = now_ns, self._waiting.written_after - counter.queue_limit
            self._clear_after = self._slot
        else:
            clear_at, stop = counter.stop_point(now_ns, exact=self._exact)
        self._restart = _Restart(
            stop, playing=stop < counter.written, hold=hold, native_only=native_only
        )
        self.in_transit = 0
        self._overrun_at = counter.release_time(stop + self._tick)
        counter.stop_at(stop)
        self._stopping = stop
        self._move(Mode.STOPPING)
        if self._clear_after is None and clear_at <= now_ns:
            actions.extend(self._clear_native(now_ns))  # the tail comes after: QUEUE_TAIL
            return actions
        self._restart_held()
        if self._clear_after is None:
            self._clear_at = clear_at
            actions.append(ArmTimer(clear_at))
        actions.append(WAKE)
        return actions

    def _restart_held(self) -> bool:
        """Make the pending audio the stop's faded tail (then, with ``hold``, the rest), once
        per stop; False if no stop is left to do it for."""
        restart = self._restart
        if restart is None:
            return False
        self._restart = None
        self._tail_pending = self.held.restart_at(
            restart.stop,
            self._fade,
            playing=restart.playing,
            hold=restart.hold,
            native_only=restart.native_only,
        )
        return True

    def queue_tail(self, now_ns: int) -> list[Action]:
        """The native clear of a stop that cleared at once ran: make the faded tail and hand
        it over. Building it after the clear keeps its numpy work (about 100 µs right after
        an idle spell) off the listener's latency."""
        if not self._restart_held():
            raise SchedulerError("queue_tail with no stop that cleared at once")
        return self._after_clear(now_ns)

    def clear_failed(self) -> None:
        """The native clear raised: the held audio is still made the stop's tail (then what
        a pause holds), so the next capture never plays on from the cut."""
        self._restart_held()

    def _clear_native(self, now_ns: int) -> list[Action]:
        """Empty the native buffer at the stop's count, and queue the tail at once."""
        stop = self._stopping
        if stop is None:
            raise SchedulerError("a native clear with no stop under way")
        self._stopping = self._clear_at = self._clear_after = None
        self.counter.cleared(stop)
        self._move(Mode.IDLE if self._slot is None else Mode.CAPTURING)
        actions: list[Action] = [CLEAR]
        late = self._ticks_missed(now_ns)
        self.stops.append(StopRecord(stop, late))
        if late and self._exact:
            actions.append(
                Warn(
                    "a clear put off (past a tick, or until a capture completed) ran too late"
                    f" (an overloaded event loop): {late} tick(s) may have released audio"
                    f" first, so the count may be up to {late} x 10 ms short, and the item's"
                    " position is unconfirmed"
                )
            )
        if self._restart is not None:
            actions.append(QUEUE_TAIL)
        else:
            actions.extend(self._after_clear(now_ns))
        return actions

    def _after_clear(self, now_ns: int) -> list[Action]:
        """Hand the source the faded tail, if any, else what is pending."""
        if self._tail_pending:
            return [self._submit(self._tail_pending, now_ns), WAKE]
        return [*self._kick(now_ns), WAKE]

    def _ticks_missed(self, now_ns: int) -> int:
        """Ticks past the stop's count that a native clear issued at ``now_ns`` may come
        after: those due by the time it lands (``GUARD_BEFORE_NS`` on), the first of them
        being the one that would release the frame after the stop."""
        overrun = self._overrun_at
        reach = now_ns + GUARD_BEFORE_NS
        if overrun is None or reach < overrun:
            return 0
        return 1 + (reach - overrun) // TICK_NS

    # -- when to capture --------------------------------------------------------------

    def _disarm(self) -> list[Action]:
        """Cancel the capture timer, if one is armed."""
        if self.mode is not Mode.ARMED:
            return []
        self._timer_due = None
        self._move(Mode.IDLE)
        return [CANCEL]

    def _kick(self, now_ns: int) -> list[Action]:
        """Hand the source its next capture now, or arm the timer for when it should go."""
        mode = self.mode
        if mode is Mode.LEARNING or mode is Mode.STOPPING or mode is Mode.CAPTURING:
            return []
        pending = self.held.pending_count
        if self.paused or not pending:
            return self._disarm()
        tick = self._tick
        flushing = self.input is Input.ENDING
        size = min(pending // tick * tick, self.batch)
        if size == 0:
            if not flushing:
                return self._disarm()
            size = tick
        probe = self.counter.settling_size(now_ns)
        if 0 < probe <= size:
            return [*self._disarm(), self._submit(probe, now_ns)]
        due = self._due(now_ns, size, partial=size < self.batch and not flushing)
        if due <= now_ns:
            return [*self._disarm(), self._submit(size, now_ns)]
        if due == self._timer_due:
            return []
        self._timer_due = due
        self._move(Mode.ARMED)
        return [ArmTimer(due)]

    def _submit(self, size: int, now_ns: int) -> Submit:
        """Start the capture of the next ``size`` samples per channel."""
        data = self.held.take(size)
        counter = self.counter
        self.held.handed(counter.written + self.in_transit, data, counter.released(now_ns))
        self.in_transit = size
        token = self._next_token = self._next_token + 1
        self._current = self._slot = token
        self._tail_token = token if self._tail_pending else None
        self._tail_pending = 0
        self._move(Mode.CAPTURING)
        return Submit(token, data, size)

    def _due(self, now_ns: int, size: int, *, partial: bool) -> int:
        """When a capture of ``size`` should be requested.

        If it fits under the source's queue limit, now; otherwise just before the tick after
        which the source holds at most one frame over the limit with it, so it waits for that
        one tick only. A partial batch also waits until the source runs low.
        """
        counter = self.counter
        written = counter.written
        due = now_ns
        if written - counter.released(now_ns) + size > counter.queue_limit:
            room = counter.release_time(written + size - counter.queue_limit - self._tick)
            if room is not None:
                due = room + TICK_NS - LEAD_NS
        if partial:
            low = counter.release_time(written - self.batch)
            if low is not None:
                due = max(due, low)
        return due

    # -- underruns --------------------------------------------------------------------

    def underruns(self, now_ns: int) -> int:
        """How many times the source ran dry while more audio was expected."""
        return self._underruns.count() + (self._dry_since(now_ns) is not None)

    def underrun_ns(self, now_ns: int) -> int:
        """Total time the source spent dry while more audio was expected."""
        since = self._dry_since(now_ns)
        return self._underruns.length(now_ns) + (0 if since is None else now_ns - since)

    def underrun_ended(self, now_ns: int) -> None:
        """Audio comes (or a stop): a dry span open until now is counted."""
        since = self._dry_since(now_ns)
        if since is not None and since < now_ns:
            self._underruns.span(since, now_ns)
        self._dry_floor_ns = now_ns

    def _dry_since(self, now_ns: int) -> int | None:
        """When the source ran dry, if it is dry now while more audio is expected."""
        if self.input is not Input.STREAMING or self.paused or self.mode is Mode.STOPPING:
            return None
        counter = self.counter
        if self.in_transit or counter.released(now_ns) < counter.written:
            return None
        if self.held.pending_count >= self._tick:
            return None
        emptied = counter.release_time(counter.written)
        return max(emptied if emptied is not None else now_ns, self._dry_floor_ns)
