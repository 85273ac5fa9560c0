"""Pure counting of what a paced ``rtc.AudioSource`` released, from its native 10 ms ticks.

No asyncio and no I/O: the LiveKit scheduler tells it when captures were requested and when
they completed, and asks it how much was released at a given time.

The native buffer releases one 10 ms frame per tick on a drift-free grid fixed when the
source was made. A capture that had to wait for room completes on the tick that brings the
buffer down to ``queue_size_ms``, so at that moment exactly ``written - queue`` samples were
released: an anchor. From an anchor the count is ``anchor + frame * whole ticks since``,
capped at what was written. The grid's phase is learned from the completion times of such
captures (a low percentile around their circular mean: they reach Python late, never early).
"""

from __future__ import annotations

import cmath
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...core.units import ceil_div

TICK_NS = 10_000_000
_PHASE_WINDOW = 32
_EARLY_QUANTILE = 10
OUTLIER_NS = 2_000_000
GUARD_BEFORE_NS = 1_500_000
"""A clear this close before a tick could race it natively, so it waits until after it."""
GUARD_AFTER_NS = 2_000_000
"""A tick this recent may not have been applied natively yet: rtc's native thread runs its
10 ms tick late on a loaded machine (by over 0.5 ms one run in a few in CI, where a clear that
soon after the tick removed the frame the count took as released). A clear this close after a
tick waits until this long after it, at most 2 ms more. A longer wait covers later native
ticks but makes the put-off clear's own timer miss the next tick more often on an overloaded
loop: under four CPU burners on two cores 4 ms left 9-13 of 150 stops unconfirmed, 2 ms none,
every confirmed count exact with both."""
INSERT_NS = 1_000_000
"""The native side inserts a capture's audio up to this long after the request returns."""
START_BEFORE_NS = 1_500_000
"""Audio requested for an empty buffer this soon before a tick may or may not make it."""
START_AFTER_NS = 400_000
"""Nor may audio requested this soon after a tick (the learned grid is a little late)."""
_EARLY_NS = 1_000_000
_PROMPT_NS = 2_000_000
_PROMPT_PROOFS = 3
_REPHASE_PROOFS = 6
_EARLIEST_NS = 4_500_000


@dataclass(frozen=True, slots=True)
class CaptureTicket:
    """What was known when a capture was requested, to judge its completion."""

    requested_ns: int
    excess: int
    written_after: int


class TickCounter:
    """Counts the samples a source released (in samples per channel, padding included)."""

    def __init__(self, tick_samples: int, queue_limit: int) -> None:
        self.tick_samples = tick_samples
        self.queue_limit = queue_limit
        self.written = 0
        self.last_request_ns = -INSERT_NS
        self._anchor_released = 0
        self._anchor_tick_ns: int | None = None
        self._anchor_provisional = True
        self._earliest_tick_ns: int | None = None
        self._floor_tick_ns: int | None = None
        self._prompt_waits = 0
        self._catch_ups = 0
        self._behind_bound = 0
        self.queue_suspect = False
        self._offsets: deque[int] = deque(maxlen=_PHASE_WINDOW)
        self._early: deque[int] = deque(maxlen=_REPHASE_PROOFS)
        self.phase_ns: int | None = None

    @property
    def provisional(self) -> bool:
        """Whether the count rests on a guess (audio went into an empty buffer since the
        last capture that waited)."""
        return self._anchor_provisional and self._anchor_tick_ns is not None

    def adopt_grid(self, completions_ns: Sequence[int]) -> None:
        """Place the grid by the completion times of captures that waited (of this source)."""
        if completions_ns:
            self._offsets.extend(done % TICK_NS for done in completions_ns)
            self.phase_ns = grid_phase(self._offsets)

    def released(self, now_ns: int) -> int:
        """Samples released by ``now_ns``."""
        if self._anchor_tick_ns is None:
            return self._anchor_released
        ticks = max((now_ns - self._anchor_tick_ns) // TICK_NS, 0)
        return min(self._anchor_released + ticks * self.tick_samples, self.written)

    def released_through(self, tick_ns: int) -> int:
        """Samples released once the tick nearest ``tick_ns`` has fired.

        Rounds rather than floors: the anchor sits on the grid as it was learned then, and
        the phase may have been refined by a fraction of a millisecond since.
        """
        if self._anchor_tick_ns is None:
            return self._anchor_released
        ticks = max(round((tick_ns - self._anchor_tick_ns) / TICK_NS), 0)
        return min(self._anchor_released + ticks * self.tick_samples, self.written)

    def release_time(self, sample: int) -> int | None:
        """When the tick that releases sample index ``sample`` fires (None if never known)."""
        if self._anchor_tick_ns is None or sample > self.written:
            return None
        ticks = max(ceil_div(sample - self._anchor_released, self.tick_samples), 0)
        return self._anchor_tick_ns + ticks * TICK_NS

    def grid_tick_at_or_before(self, when_ns: int) -> int:
        """The latest tick time <= ``when_ns`` (mid-interval if the grid is not known yet)."""
        phase = self.phase_ns if self.phase_ns is not None else when_ns - TICK_NS // 2
        return when_ns - (when_ns - phase) % TICK_NS

    def request(self, now_ns: int, count: int) -> CaptureTicket:
        """A capture of ``count`` samples is being requested at ``now_ns``.

        Its ticket's excess (what it puts over the queue) is the least the count allows:
        while it is unsure when the audio started, as if it started at the earliest.
        """
        released = self.released(now_ns)
        if released >= self.written:
            tick = self.grid_tick_at_or_before(now_ns)
            if self._floor_tick_ns is not None:
                tick = max(tick, self._floor_tick_ns)
            self._anchor_released = self.written
            self._anchor_tick_ns = tick
            self._anchor_provisional = True
            self._earliest_tick_ns = None
            self._behind_bound = 0  # the audio starts at the next tick: the count is exact
        released = max(released, self._released_if_earliest(now_ns))
        self.written += count
        self.last_request_ns = now_ns
        return CaptureTicket(now_ns, self.written - released - self.queue_limit, self.written)

    def unambiguous_start(self, now_ns: int) -> int:
        """The earliest time from ``now_ns`` at which audio put into an empty buffer surely
        starts at the next tick: not so close to a tick that its insertion could race it."""
        if self.phase_ns is None or self.released(now_ns) < self.written:
            return now_ns
        previous = self.grid_tick_at_or_before(now_ns)
        if now_ns - previous < START_AFTER_NS:
            return previous + START_AFTER_NS
        if previous + TICK_NS - now_ns < START_BEFORE_NS:
            return previous + TICK_NS + START_AFTER_NS
        return now_ns

    def complete(self, ticket: CaptureTicket, done_ns: int) -> None:
        """The capture of ``ticket`` completed at ``done_ns``: anchor on it if it waited.

        Completions reach Python late under load, never early. So a completion at or after
        the tick the count already predicts only confirms it (and, when prompt, refines the
        grid's phase); one that comes earlier shows the count is behind, and re-anchors it.
        A completion is placed on the last tick before it (it may come up to a tick late),
        not on the nearest one: under load one 5 ms late would put the count a frame behind.
        An anchor guessed when audio went into an empty buffer is provisional, and the next
        completion replaces it; it settles it only if it came by the tick the guess predicts
        (audio never starts before that tick). One that came later is either late or shows
        the audio started later, which cannot be told apart: the count stays provisional,
        so the scheduler probes again (``TickCounter.provisional``).
        """
        self._check_queue(ticket, done_ns - ticket.requested_ns)
        if self.written != ticket.written_after:
            return
        if not self._waited(ticket.excess, done_ns - ticket.requested_ns):
            self._catch_up(ticket, done_ns)
            return
        expected = self._expected_completion(ticket)
        if not self._anchor_provisional:
            if expected is not None and done_ns >= expected - _EARLY_NS:
                if done_ns - expected <= _PROMPT_NS:
                    self._learn_phase(done_ns)
                elif self._grid_proven_late(done_ns):
                    self._anchor_on(ticket, done_ns, settled=True)
                return
            self._learn_phase(done_ns)
            self._anchor_on(ticket, done_ns, settled=True)
            return
        self._learn_phase(done_ns)
        self._settle(ticket, done_ns, expected)

    def _settle(self, ticket: CaptureTicket, done_ns: int, expected: int | None) -> None:
        """Place a provisional count on the completion of a capture that waited.

        The audio may have started later than guessed, never earlier: so a completion by
        the tick the earliest start predicts settles the count there. One that came later
        is late, or shows a later start: the count moves to it but stays provisional, and
        keeps that earliest start, which sizes the next probe so that it waits whatever the
        truth. It settles once a completion comes by the earliest tick, or once two prompt
        ones agree on the later start.
        """
        tick = self.grid_tick_at_or_before(done_ns + _EARLY_NS)
        earliest = expected
        if expected is not None and self._earliest_tick_ns is not None:
            earliest = expected - (self._anchor_tick_ns or 0) + self._earliest_tick_ns
        agreed = (
            self._earliest_tick_ns is not None
            and expected is not None
            and abs(tick - expected) < TICK_NS // 2
            and done_ns - tick <= _PROMPT_NS
        )
        if earliest is None or tick < earliest + TICK_NS // 2 or agreed:
            self._anchor_on(ticket, done_ns, settled=True)
            return
        self._anchor_on(ticket, done_ns, settled=False)
        self._earliest_tick_ns = earliest

    def _anchor_on(self, ticket: CaptureTicket, done_ns: int, *, settled: bool) -> None:
        """Anchor the count on the tick before ``done_ns``: ``written - queue`` released."""
        self._behind_bound = self._bound_after(ticket, done_ns)
        self._anchor_released = ticket.written_after - self.queue_limit
        self._anchor_tick_ns = self.grid_tick_at_or_before(done_ns + _EARLY_NS)
        self._anchor_provisional = not settled
        self._earliest_tick_ns = None
        if settled:
            self._catch_ups = 0

    def _bound_after(self, ticket: CaptureTicket, done_ns: int) -> int:
        """How far behind the source the count can be once anchored on this completion.

        A count up to ``_behind_bound`` behind made the capture wait that much less than its
        excess (or not at all), and the completion may have reached Python late by every
        tick from the earliest it could have come until ``done_ns``: the count can be behind
        by what the capture did not wait for, plus those ticks.
        """
        tick = self.tick_samples
        behind = self._behind_bound
        wait_ticks = ceil_div(max(ticket.excess - behind, 0), tick)
        late_ticks = max(self._ticks_between(ticket.requested_ns, done_ns) - wait_ticks, 0)
        bound = max(behind - max(ticket.excess, 0), 0) + late_ticks * tick
        return min(bound, self.queue_limit)  # anchored at written - queue: never further

    def _ticks_between(self, start_ns: int, done_ns: int) -> int:
        """Ticks after ``start_ns`` up to the one the count places ``done_ns`` on."""
        done_tick = self.grid_tick_at_or_before(done_ns + _EARLY_NS)
        return max((done_tick - self.grid_tick_at_or_before(start_ns)) // TICK_NS, 0)

    def settling_size(self, now_ns: int) -> int:
        """While the count is provisional: the capture that waits for exactly one tick if the
        audio started as early as it can have (0 when the count is settled).

        Its completion on a tick settles the count (see ``complete``).
        """
        if not self.provisional or self.queue_suspect:
            return 0
        released = max(self.released(now_ns), self._released_if_earliest(now_ns))
        return self.queue_limit + self.tick_samples - (self.written - released)

    def _released_if_earliest(self, now_ns: int) -> int:
        """Samples released by ``now_ns`` if the audio started at the earliest it can have
        (0 when the count is sure of its start)."""
        earliest = self._earliest_tick_ns
        if earliest is None:
            return 0
        ticks = max((now_ns - earliest) // TICK_NS, 0)
        return min(self._anchor_released + ticks * self.tick_samples, self.written)

    def _catch_up(self, ticket: CaptureTicket, done_ns: int) -> None:
        """A capture the count said must wait came back at once: the source had room for it,
        so by ``done_ns`` it had released at least ``written_after - queue_limit``.

        A count short of that is behind: it is moved on to that floor, and rests on a guess
        again until a capture that waits settles it. Being behind by up to ``_behind_bound``
        is explained by completions that reached Python late (under load one can come 4
        ticks late, and small captures then make that up a tick at a time). A count that
        keeps falling behind further, three times, is no late anchor but a queue larger
        than ``queue_limit``: the queue is suspect.
        """
        floor = ticket.written_after - self.queue_limit
        shortfall = floor - self.released(done_ns)
        if ticket.excess <= 0 or shortfall <= 0:
            return
        unexplained = shortfall > self._behind_bound
        late = self._ticks_between(ticket.requested_ns, done_ns) * self.tick_samples
        self._behind_bound = min(max(self._behind_bound - shortfall, 0) + late, self.queue_limit)
        self._anchor_released = floor
        self._anchor_tick_ns = self.grid_tick_at_or_before(done_ns + _EARLY_NS)
        self._anchor_provisional = True
        self._earliest_tick_ns = None
        if unexplained:
            self._catch_ups += 1
            if self._catch_ups >= _PROMPT_PROOFS:
                self.suspect_queue()

    def _waited(self, excess: int, elapsed_ns: int) -> bool:
        """Whether a capture that put ``excess`` samples over the limit really waited for
        the ticks that release them (a count slightly off could think so wrongly)."""
        if excess <= 0:
            return False
        ticks = ceil_div(excess, self.tick_samples)
        if ticks == 1:
            return elapsed_ns > 2_000_000
        return elapsed_ns >= (ticks - 1) * TICK_NS - 1_000_000

    def _expected_completion(self, ticket: CaptureTicket) -> int | None:
        """When the current count says the capture of ``ticket`` completes."""
        if self._anchor_tick_ns is None:
            return None
        target = ticket.written_after - self.queue_limit - self._anchor_released
        ticks = max(ceil_div(target, self.tick_samples), 0)
        return self._anchor_tick_ns + ticks * TICK_NS

    def _learn_phase(self, done_ns: int) -> bool:
        """Place the grid's phase by a completion of a capture that waited; True if that
        moved the grid earlier, so that the anchor must be placed again.

        One within 1 ms before to 2 ms after the grid known joins the ones it is placed by.
        One further away is left out: after it, it came late; before it (mod 10 ms), it came
        nearly a tick late, or the grid is late (see ``_grid_proven_late``).
        """
        phase = self.phase_ns
        if phase is None or -_EARLY_NS <= wrapped(done_ns - phase) <= _PROMPT_NS:
            self._early.clear()
            self._offsets.append(done_ns % TICK_NS)
            self.phase_ns = grid_phase(self._offsets)
            return False
        return self._grid_proven_late(done_ns)

    def _grid_proven_late(self, done_ns: int) -> bool:
        """Whether completions prove the grid late, which then is placed again on them.

        Completions never come early, so a grid learned from late ones (a loaded start) is
        late: each anchor lands a tick early and the count runs a frame ahead. It would stay
        so, but that ``_REPHASE_PROOFS`` completions that came 1 to 4.5 ms before it, with
        none on it between them, and agree within 1 ms move it to them.
        """
        phase = self.phase_ns
        if phase is None or not -_EARLIEST_NS <= wrapped(done_ns - phase) < -_EARLY_NS:
            return False
        early = self._early
        early.append(done_ns % TICK_NS)
        spread = [wrapped(value - early[0]) for value in early]
        if len(early) < _REPHASE_PROOFS or max(spread) - min(spread) > _EARLY_NS:
            return False
        self._offsets.clear()
        self._offsets.extend(early)
        early.clear()
        self.phase_ns = grid_phase(self._offsets)
        return True

    def _check_queue(self, ticket: CaptureTicket, elapsed_ns: int) -> None:
        """Notice a source whose queue is larger than ``queue_limit``.

        Load only delays completions, so captures that should have waited two ticks or more
        yet came back at once prove the queue is larger: the count would run ahead.
        """
        if self.queue_suspect or ticket.excess <= self.tick_samples:
            return
        if elapsed_ns >= _PROMPT_NS:
            self._prompt_waits = 0
            return
        self._prompt_waits += 1
        if self._prompt_waits >= _PROMPT_PROOFS:
            self.suspect_queue()

    def suspect_queue(self) -> None:
        """The source took more audio at once than ``queue_limit`` allows."""
        self.queue_suspect = True

    def stop_point(self, now_ns: int, *, exact: bool) -> tuple[int, int]:
        """When to clear the native buffer, asked at ``now_ns``, and the count at that moment.

        With ``exact``, a clear that could race a release tick, or the insertion of a
        capture just requested, is put off (by at most a few milliseconds): cleared before
        that insertion the audio would still play, and racing a tick the count is a guess.
        """
        clear_at = now_ns
        if exact and now_ns - self.last_request_ns < INSERT_NS:
            clear_at = self.last_request_ns + INSERT_NS
        tick = self._tick_within_guard(clear_at) if exact else None
        if tick is None:
            return clear_at, self.released(clear_at)
        return max(clear_at, tick + GUARD_AFTER_NS), self.released_through(tick)

    def _tick_within_guard(self, when_ns: int) -> int | None:
        """A tick so close to ``when_ns`` that clearing then could race it, if any."""
        if self.phase_ns is None or self.written == self.released(when_ns):
            return None
        previous = self.grid_tick_at_or_before(when_ns)
        if when_ns - previous <= GUARD_AFTER_NS:
            return previous
        upcoming = previous + TICK_NS
        if upcoming - when_ns <= GUARD_BEFORE_NS:
            return upcoming
        return None

    def stop_at(self, released: int) -> None:
        """Nothing past ``released`` will be released: the buffer is about to be emptied."""
        self.written = min(self.written, released)

    def failed(self, ticket: CaptureTicket, count: int) -> None:
        """The capture of ``ticket`` (``count`` samples) failed: its audio never went in."""
        if self.written == ticket.written_after:
            self.written -= count

    def cleared(self, released: int) -> None:
        """The native buffer was emptied with ``released`` samples out: nothing is queued.

        What goes in next plays from the tick after the one that released ``released``,
        whatever the learned grid says about the moment of its request.
        """
        self._floor_tick_ns = self.release_time(released)
        self.written = released
        self._anchor_released = released
        self._anchor_tick_ns = None
        self._earliest_tick_ns = None


def grid_phase(offsets: Iterable[int]) -> int:
    """The grid's phase (ns, mod 10 ms) from completion times mod 10 ms of captures that waited.

    A completion reaches Python a fraction of a millisecond after its tick, more under load,
    never before: so a low percentile around the circular mean is nearer the tick than the
    mean is. Offsets far from the mean (a capture taken for a wait that was only slow) are
    left out before the percentile.
    """
    values = list(offsets)
    centre = circular_mean(values)
    near = [value for value in values if abs(wrapped(value - centre)) <= OUTLIER_NS] or values
    centre = circular_mean(near)
    spread = sorted(wrapped(value - centre) for value in near)
    return (centre + spread[len(spread) // _EARLY_QUANTILE]) % TICK_NS


def circular_mean(offsets: Sequence[int]) -> int:
    mean = sum(cmath.exp(2j * math.pi * offset / TICK_NS) for offset in offsets)
    return round((cmath.phase(mean) % (2 * math.pi)) / (2 * math.pi) * TICK_NS)


def wrapped(offset: int) -> int:
    """``offset`` brought into [-5 ms, 5 ms)."""
    return (offset + TICK_NS // 2) % TICK_NS - TICK_NS // 2


def between_ticks(now_ns: int, phase_ns: int) -> int:
    """The first moment from ``now_ns`` halfway between two ticks of the grid at ``phase_ns``:
    audio put into an empty source then surely starts at the next tick."""
    return now_ns + (phase_ns + TICK_NS // 2 - now_ns) % TICK_NS
