"""Pure position arithmetic of the driver: rate conversions, underrun shares, buffer sizes.

No asyncio and no I/O: the driver hands in counts it read and gets numbers back, so every
rule that turns a sink's count into a reported position is tested here, exhaustively.
"""

from __future__ import annotations

from .units import NS_PER_SECOND, REALTIME_SAMPLE_RATE, ceil_div

Underruns = tuple[int, int]
"""A sink's underrun counters: (times it ran dry, nanoseconds of silence it played)."""


def at_rate(samples: int, from_rate: int, to_rate: int) -> int:
    """``samples`` counted at ``from_rate`` as a count at ``to_rate``, rounded down, so a
    converted count never claims a sample that was not heard."""
    return samples * to_rate // from_rate


def realtime_samples(played: int, sink_rate: int) -> int:
    """Heard samples at 24 kHz (LiveKit Agents 0.12's ``audio_samples``), from the sink's."""
    return at_rate(played, sink_rate, REALTIME_SAMPLE_RATE)


def input_heard(played: int, sink_rate: int, input_rate: int, received: int, finished: bool) -> int:
    """Heard samples at the item's own rate: ``played`` converted, never above what was
    received (a resampler may round the item's length up), so the count only grows; a
    finished item played all it received, so its count is exactly that."""
    if finished:
        return received
    heard = at_rate(played, sink_rate, input_rate)
    return heard if heard < received else received


def samples_in(ms: int, rate: int) -> int:
    """Samples per channel in ``ms`` milliseconds at ``rate``, rounded down."""
    return at_rate(ms, 1000, rate)


def refill_level(read_ahead: int, refill: int) -> int:
    """The buffered count at which a reader held at ``read_ahead`` resumes: once ``refill``
    samples were pushed, but at most half the limit, so a small limit still refills."""
    return read_ahead - min(read_ahead // 2, refill)


def samples_to_ns(samples: int, rate: int) -> int:
    """Nanoseconds ``samples`` take to play at ``rate``, rounded up: a timer set that far
    ahead never fires before the sample."""
    return ceil_div(samples * NS_PER_SECOND, rate)


class UnderrunShare:
    """One item's share of a sink's underrun counters: from its first push until it stops.

    ``start`` takes the counters at the first push; ``freeze`` the counters at the stop,
    after which the share no longer moves. A sink that cannot say (None) has no share.
    """

    __slots__ = ("_base", "_frozen", "_total")

    def __init__(self) -> None:
        self._base: Underruns | None = None
        self._total: Underruns | None = None
        self._frozen = False

    @property
    def live(self) -> bool:
        """True while the share follows the sink: the caller must read the sink's counters."""
        return self._base is not None and not self._frozen

    def start(self, now: Underruns | None) -> None:
        """The item's first push: ``now`` is the sink's counters before it."""
        self._base = now

    def counts(self, now: Underruns | None) -> Underruns | None:
        """The share given the sink's counters ``now`` (read only while ``live``)."""
        base = self._base
        if not self.live or base is None:
            return self._total
        if now is None:
            return None
        return now[0] - base[0], now[1] - base[1]

    def freeze(self, now: Underruns | None) -> None:
        """Keep the share as it is at ``now``; a failed read (None) leaves no share."""
        if self.live:
            self._total = self.counts(now)
            self._frozen = True


class CaptionPace:
    """When the caption driver's timer may fire: at most ``burst`` times in a row faster
    than once per ``pace_ns`` (a token bucket in GCRA form). Wakes by input do not count."""

    __slots__ = ("_burst_ns", "_pace_ns", "_schedule_ns")

    def __init__(self, pace_ns: int, burst: int) -> None:
        self._pace_ns = pace_ns
        self._burst_ns = burst * pace_ns
        self._schedule_ns = 0

    def due(self, wanted_ns: int) -> int:
        """The time the timer may fire for a caption due at ``wanted_ns``."""
        allowed = self._schedule_ns - self._burst_ns
        return wanted_ns if wanted_ns > allowed else allowed

    def fired(self, due_ns: int) -> None:
        """The timer fired for ``due_ns``: count it against the pace."""
        self._schedule_ns = max(self._schedule_ns, due_ns) + self._pace_ns
