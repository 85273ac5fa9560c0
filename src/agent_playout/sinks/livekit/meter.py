"""Measuring an ``rtc.AudioSource``'s queue from silent captures, and judging the result.

Pure, no asyncio and no I/O: ``measure.py`` runs the captures and tells ``QueueMeter`` their
times; ``settled_queue`` decides, from what the fills and checks showed, the queue to count
with, or raises ``SourceQueueError``.
"""

from __future__ import annotations

from ...errors import PlayoutError
from .ticks import (
    INSERT_NS,
    OUTLIER_NS,
    START_AFTER_NS,
    TICK_NS,
    TickCounter,
    circular_mean,
    grid_phase,
    wrapped,
)


class SourceQueueError(PlayoutError):
    """The ``rtc.AudioSource``'s queue is not the one the count needs: positions would be wrong.

    rtc does not say the queue a source was made with, so ``LiveKitSink`` measures it; this
    is raised when it differs from ``queue_size_ms``, or cannot be measured.
    """


FILL_WAITS = 5
"""Captures of the fill that wait for a tick: their completions place the grid."""
_TOPPING_UP = 8
"""Single frames after the expected queue's first capture before the fill doubles again."""
_WAITED_NS = 2_000_000
_LONG_WAIT_NS = 30_000_000
_STANDS_OUT = 5
"""A fill capture this slow is taken to have waited (it only picks the next capture's size)."""
CHECK_AFTER_NS = 500_000
"""A check is requested this long after a tick, so that its audio is in before the next."""
_CHECK_MARGIN_NS = 1_500_000
_CHECK_LEAD_NS = 3_000_000
"""The one frame more goes in this long before the tick, so that a prompt return shows."""
_CHECK_WINDOW_NS = 2_000_000


class QueueMeter:
    """Measures a source's queue in whole 10 ms frames from silent captures (pure, no I/O).

    rtc does not say the queue a source was made with, so it is measured while the source is
    idle. The fill puts silence into the emptied source in captures that double (when a
    queue is expected: one capture a frame short of it, then a few single frames, then
    doubling), then in single frames until enough waited for a tick: their completions
    place the grid. Each completion proves that by
    then the source held at most its queue, so ``written - released`` at that tick is a
    lower bound of the queue, equal to it for a capture that waited (a late completion only
    lowers it). ``estimate()`` is the largest.

    The estimate is then checked (``judge``) by two captures into the emptied source just
    after a tick: the estimate, which must return before the next tick (proof that the queue
    holds that much), then one frame more, which must wait for that tick (it would return
    at once if the queue were larger).
    """

    def __init__(self, tick_samples: int, limit: int, *, first: int | None = None) -> None:
        self.tick_samples = tick_samples
        self._limit = limit
        self._first = first
        self._written = 0
        self._start_ns: int | None = None
        self._took_ns: list[int] = []
        self._fills: list[tuple[int, int]] = []
        self._topping_up = False
        self.completions_ns: list[int] = []
        self.queue: int | None = None
        self.rough: int | None = None
        self.phase_ns: int | None = None

    def next_fill(self) -> int:
        """Samples for the next fill capture; 0 once the fill is over (or found no queue)."""
        if len(self.completions_ns) >= FILL_WAITS:
            return 0
        if self._topping_up:
            return self.tick_samples
        if self._first is not None:
            if not self._written:
                return self._first
            if len(self._fills) <= _TOPPING_UP:
                return self.tick_samples
        size = max(self._written, self.tick_samples)
        return size if self._written + size <= self._limit else 0

    def filled(self, size: int, requested_ns: int, done_ns: int) -> None:
        """A fill capture of ``size`` samples requested at ``requested_ns`` came back.

        One that came back at once after others waited shows the source was not full after
        all (they were only slow, or came late): their completions are not counted, and the
        fill goes on in single frames.
        """
        if self._start_ns is None:
            self._start_ns = requested_ns
        self._took_ns.append(done_ns - requested_ns)
        self._written += size
        self._fills.append((self._written, done_ns))
        if done_ns - requested_ns >= _WAITED_NS:
            self.completions_ns.append(done_ns)
            self._topping_up = True
        else:
            self.completions_ns.clear()

    def proven_floor(self) -> int:
        """A queue the fill proves the source has at least, whatever the grid and the delays.

        Each capture came back only once the source held at most its queue, and by then at
        most one frame per 10 ms since the fill began had been released.
        """
        start = self._start_ns
        if start is None:
            return 0
        return max(
            written - self.tick_samples * ((done - start) // TICK_NS + 1)
            for written, done in self._fills
        )

    def first_waited(self) -> bool:
        """Whether the fill's first capture waited for many ticks: much longer than 30 ms and
        than the later ones took (a loaded process delays every capture alike)."""
        later = sorted(self._took_ns[1:])
        usual = later[len(later) // 2] if later else 0
        return (
            self._took_ns[0] >= max(_LONG_WAIT_NS, _STANDS_OUT * usual) if self._took_ns else False
        )

    def estimate(self) -> int | None:
        """The queue the fill shows, in samples; None if the fill cannot tell it.

        Ticks are counted to the one nearest each completion: a wait's completion comes a
        little after its tick, and counting a tick too many for one that came back at once
        only lowers its bound. It cannot tell when it saw too few waits, or too few of them
        on one grid (captures only slow to come back), or when its first
        audio went in so near a tick that the tick which began the releases is in doubt;
        ``rough`` is then still the queue to within a frame, a start for the next fill.
        """
        start = self._start_ns
        if start is None or len(self.completions_ns) < FILL_WAITS:
            return None
        offsets = [done % TICK_NS for done in self.completions_ns]
        centre = circular_mean(offsets)
        near = [offset for offset in offsets if abs(wrapped(offset - centre)) <= OUTLIER_NS]
        if len(near) * 2 <= len(offsets):
            return None
        phase = grid_phase(near)
        previous = start - (start - phase) % TICK_NS
        first_tick = previous + TICK_NS
        self.rough = max(
            written - self.tick_samples * max(round((done - first_tick) / TICK_NS) + 1, 0)
            for written, done in self._fills
        )
        if first_tick - start < INSERT_NS + _CHECK_MARGIN_NS or start - previous < START_AFTER_NS:
            return None
        if self.rough < self.tick_samples:
            return None
        self.phase_ns = phase
        self.queue = self.rough
        return self.queue

    def check_start(self, now_ns: int) -> int:
        """When to request the next check: just after the next tick of the learned grid."""
        phase = self.phase_ns if self.phase_ns is not None else 0
        return now_ns - (now_ns - phase) % TICK_NS + TICK_NS + CHECK_AFTER_NS

    def judge(
        self, requested_ns: int, held_ns: int, extra_requested_ns: int, extra_done_ns: int
    ) -> bool | None:
        """Judge one check: True if it confirms the estimate, False if it proves the queue
        larger, None if it tells nothing (too late, or the first capture waited).

        The first capture (the estimate) was requested at ``requested_ns`` and came back at
        ``held_ns``; the second (one frame) was requested at ``extra_requested_ns`` and came
        back at ``extra_done_ns``.
        """
        phase = self.phase_ns if self.phase_ns is not None else 0
        tick = requested_ns - (requested_ns - phase) % TICK_NS + TICK_NS
        if held_ns > tick - _CHECK_MARGIN_NS:
            return None
        if extra_requested_ns + INSERT_NS > tick - _CHECK_LEAD_NS:
            return None
        if extra_done_ns < tick - _CHECK_MARGIN_NS:
            return False
        return extra_done_ns <= tick + _CHECK_WINDOW_NS or None


def queue_exceeded(queue_ms: int) -> SourceQueueError:
    """The error for a source that took more at once than a queue of ``queue_ms`` can."""
    return SourceQueueError(
        f"the rtc.AudioSource took more audio at once than queue_size_ms={queue_ms} allows:"
        " pass the size it was made with"
    )


_LIMIT_SAMPLES_S = 10
"""The largest queue measured (seconds): pass ``queue_size_ms`` for a larger one."""


def fill_limit(sample_rate: int, told: int | None) -> int:
    """The most silence a fill puts into the source, in samples."""
    return max(_LIMIT_SAMPLES_S * sample_rate, 4 * (told or 0))


def first_fill(expected: int | None, tick_samples: int) -> int | None:
    """A fill's first capture for an ``expected`` queue: a frame short of it (None: none)."""
    return expected - tick_samples if expected is not None and expected > tick_samples else None


def told_queue_holds(meter: QueueMeter, told: int) -> bool:
    """Whether one fill for the ``told`` queue is enough to take it: the fill proved it no
    larger, and its first capture (a frame short of it, into the empty source) did not wait."""
    return meter.proven_floor() <= told and not meter.first_waited()


def _ms(samples: int, sample_rate: int) -> int:
    return samples * 1000 // sample_rate


def second_opinion(
    told: TickCounter, first: TickCounter, second: TickCounter | None
) -> TickCounter | None:
    """What two measurements say of a told queue the ``first`` contradicted: the ``second``
    if it agrees with the told queue or with the first, else None (unconfirmed).

    A loaded event loop makes a capture look as if it waited, and so can confirm a queue a
    few frames short; two measurements that agree on the same other size show a real one.
    """
    if second is None:
        return None
    if second.queue_limit in (told.queue_limit, first.queue_limit):
        return second
    return None


def settled_queue(
    told: TickCounter | None, floor: int, measured: TickCounter | None, sample_rate: int
) -> tuple[TickCounter, bool]:
    """The counter to count with once the queue was measured, and whether it is only the
    ``told`` one unconfirmed (a loaded process; worth a warning). ``floor`` is the queue the
    told queue's fill proved at least.

    Raises ``SourceQueueError`` for a told queue that proves different, or for a queue that
    could not be measured without being told.
    """
    if told is None:
        if measured is None:
            raise SourceQueueError(
                "the rtc.AudioSource's queue_size_ms could not be measured (a loaded process?);"
                " pass it: LiveKitSink(source, queue_size_ms=...)"
            )
        return measured, False
    told_ms = _ms(told.queue_limit, sample_rate)
    if measured is None:
        if floor > told.queue_limit:
            raise SourceQueueError(
                f"the rtc.AudioSource's queue holds at least {_ms(floor, sample_rate)} ms, not"
                f" queue_size_ms={told_ms}: pass the size it was made with"
            )
        return told, True
    if measured.queue_limit != told.queue_limit:
        raise SourceQueueError(
            f"the rtc.AudioSource's queue is {_ms(measured.queue_limit, sample_rate)} ms, not"
            f" queue_size_ms={told_ms}: pass the size it was made with"
        )
    return measured, False
