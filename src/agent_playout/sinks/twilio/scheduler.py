"""The phone's position, sans I/O: what the caller's phone has played, from Twilio's mark echoes
and the measured round trip, with epochs so that a cleared turn's echoes never count.

No asyncio, no clock, no socket. ``PhoneScheduler`` is told what the shell sent (chunks, marks,
a clear) and received (mark echoes, round-trip samples), each with the server's time in int ns,
and answers in int samples at the phone's rate: where the phone is, which mark to send, and
whether an echo counts.
"""

from __future__ import annotations

import enum
from collections import deque

from ...core.units import NS_PER_SECOND, ceil_div

ROUND_TRIP_WINDOW = 5
"""Round-trip samples kept; the estimate is the smallest of them."""

STALE_MEMORY = 4096
"""Names of cleared turns' marks remembered for their echoes (the oldest are forgotten first:
an echo then found is called FOREIGN, which is never counted either)."""

ECHO_MEMORY = 64
"""Names of echoes already taken, remembered to tell a DUPLICATE from a FOREIGN name."""

ECHO_SLACK_NS = 60_000_000
"""How late a mark's echo may be, past when the model has it back, before the position holds at
that mark: the jitter a link may add (60 ms) before audio is taken for unplayed."""

_BEFORE_ALL = -(1 << 96)
"""The anchor of a phone that has played nothing yet: so early that every chunk waits only
for its own arrival."""


class EchoVerdict(enum.Enum):
    """What one mark echo meant for the position."""

    COUNTED = "counted"
    """A pending mark of this epoch: the phone finished its audio; the position re-anchors."""
    STALE = "stale"
    """A mark of an older epoch (a cleared turn's, or one pending at the end): never counted."""
    FOREIGN = "foreign"
    """A name this scheduler did not make (or has forgotten): never counted."""
    DUPLICATE = "duplicate"
    """A name whose echo was already taken: never counted twice."""


class PhoneScheduler:
    """The caller's phone's played count, modelled from confirmed marks and the round trip.

    The model: a chunk sent at ``s`` reaches the phone at ``s + one_way``; the phone plays
    chunks back to back, each from the later of its arrival and the previous chunk's end, and
    echoes a mark when the audio before it has played. ``one_way`` is half the round trip:
    the smallest of the last ``ROUND_TRIP_WINDOW`` ping/pong samples. A busy event loop
    only ever makes a pong look later (the first call of a process, paying one-time costs,
    measured 85-135 ms on loopback), and a shorter one-way delay under-counts rather than
    over-counts; a path that became slower shows once the faster samples leave the window.

    Before any sample ``one_way`` is 0, and ``position()`` and ``end()`` count only what marks
    confirmed: extrapolating from the send times would count audio still on its way to the
    phone. ``clear()`` still freezes at the model, which then under-counts by at most one
    round trip and never over-counts (the phone keeps playing for as long as the clear is
    on its way).

    How exact: an echo received at ``e`` for audio end ``M`` places the phone at ``M`` at
    ``e - one_way`` and only the chunks sent after ``M`` are extrapolated, so the error does
    not grow with the length of the call: each echo bounds the drift anew. With the
    round trip measured exactly and a symmetric link, the position is exact to the sample
    (floor). The link is assumed symmetric (``one_way = rtt // 2``). If it is not, the whole
    modelled phone clock is shifted by half the asymmetry: ``position()`` and ``end()`` are
    off by that much, but a clear, sent and modelled on the same shifted clock, still
    freezes to the sample. A wrong round trip (jitter, a stale estimate) moves a freeze by
    at most its error: too long over-counts, too short under-counts. A clear freezes at
    this model's estimate of where the phone was when the clear reached it; no echo can
    confirm that later, since Twilio echoes every pending mark at once on a clear, so those
    echoes are STALE by epoch and never counted.

    Audio written to a backed-up or dead link does not reach the phone when the model says.
    So once the oldest pending mark's echo is ``ECHO_SLACK_NS`` late, what is ``known`` (and
    what a clear or an end freezes at) holds at that mark's audio end until an echo moves it:
    a stalled link over-counts by at most one mark interval and the slack (160 ms by default),
    never by the whole stall.
    ``position()``, which paces the sending, follows the model on, so that a peer that never
    echoes cannot hold the sending up for ever.

    Memory and time: chunk records are dropped once an echo passes them (a phone that never
    echoes would keep them, with its pending marks, until ``clear`` or ``end``); ``sent`` is O(1)
    amortised, ``position`` walks only the chunks that started playing since its last call
    (again from the anchor after an echo or a new round trip).
    """

    def __init__(self, rate: int = 8000, *, mark_every: int = 800) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if mark_every <= 0:
            raise ValueError(f"mark_every must be positive, got {mark_every}")
        self.rate = rate
        self.mark_every = mark_every
        """Samples sent between two marks."""
        self.sent_total = 0
        """Samples sent and not cleared: where the next chunk's first sample plays."""
        self.confirmed = 0
        """The furthest audio end a COUNTED mark confirmed."""
        self.epoch = 0
        """Clears so far (each starts a turn whose marks are named for it)."""
        self.round_trip_ns: int | None = None
        """The smoothed round trip, or None before any sample."""
        self.stale_echoes = 0
        """Echoes of older epochs' marks received (and not counted)."""
        self._one_way = 0
        self._round_trips: deque[int] = deque(maxlen=ROUND_TRIP_WINDOW)
        self._anchor_count = 0
        self._anchor_off = _BEFORE_ALL
        self._chunks: deque[tuple[int, int, int]] = deque()
        self._peaks: deque[tuple[int, int]] = deque()
        self._started = 0
        self._started_off = _BEFORE_ALL
        self._reported = 0
        self._known = 0
        self._known_cursor = (0, _BEFORE_ALL)
        self._frozen: int | None = None
        self._since_mark = 0
        self._pending: dict[str, int] = {}
        self._stale: dict[str, None] = {}
        self._echoed: deque[str] = deque(maxlen=ECHO_MEMORY)
        self._expecting = False
        self._due: tuple[int, int] | None = None
        """(audio end, time) of the oldest pending mark: past that time its echo is overdue."""
        self._dry_count = 0
        self._dry_ns = 0

    # The model on a scaled axis (ns x rate), so that sample boundaries are exact integers:
    # a chunk of samples [start, end) sent at s has key = s*rate - start*NS; its samples play
    # from offset o = max(previous offset, key + one_way*rate), sample n at (o + n*NS) / rate.
    # ``_chunks`` holds (start, end, key) after the anchor; ``_peaks`` the decreasing maxima
    # of their keys (the tail's offset in O(1)); ``_started`` of them had begun playing at
    # the last walk, the last of them at offset ``_started_off``.

    @property
    def all_confirmed(self) -> bool:
        """No mark of this epoch is waiting for its echo."""
        return not self._pending

    def sent(self, count: int, now_ns: int) -> str | None:
        """A chunk of ``count`` samples was sent at ``now_ns``: the mark to send after it, if due.

        After ``end()`` nothing is recorded (the call is over) and no mark is due.
        """
        if count < 0:
            raise ValueError(f"a chunk cannot hold {count} samples")
        if count == 0 or self._frozen is not None:
            return None
        rate = self.rate
        start = self.sent_total
        if self._expecting:
            arrival = (now_ns + self._one_way) * rate
            dry_from = self._tail_off() + start * NS_PER_SECOND
            if arrival > dry_from:
                self._dry_count += 1
                self._dry_ns += (arrival - dry_from) // rate
        self._expecting = True
        key = now_ns * rate - start * NS_PER_SECOND
        end = start + count
        peaks = self._peaks
        while peaks and peaks[-1][1] <= key:
            peaks.pop()
        peaks.append((end, key))
        self._chunks.append((start, end, key))
        self.sent_total = end
        self._since_mark += count
        if self._since_mark < self.mark_every:
            return None
        name = self._mark()
        if self._due is None:
            self._refresh_due()
        return name

    def end_of_audio(self, now_ns: int) -> str | None:
        """The audio stops after the last chunk: the mark that confirms its end, if one is due.

        A span the phone has been dry for by now counts as an underrun (audio was expected).
        """
        if self._expecting:
            dry_from = self._tail_off() + self.sent_total * NS_PER_SECOND
            now = now_ns * self.rate
            if now > dry_from:
                self._dry_count += 1
                self._dry_ns += (now - dry_from) // self.rate
        self._expecting = False
        if self._since_mark == 0 or self._frozen is not None:
            return None
        name = self._mark()
        if self._due is None:
            self._refresh_due()
        return name

    def on_mark(self, name: str, now_ns: int) -> EchoVerdict:
        """The echo of mark ``name`` arrived at ``now_ns``: re-anchor if it counts."""
        end = self._pending.pop(name, None)
        if end is not None:
            self._echoed.append(name)
            # Twilio echoes in order: an earlier mark whose echo was lost is confirmed too
            for earlier in [n for n, e in self._pending.items() if e <= end]:
                del self._pending[earlier]
                self._echoed.append(earlier)
            self.confirmed = max(self.confirmed, end)
            if end > self._anchor_count:
                self._anchor(end, now_ns - self._one_way)
            self._refresh_due()
            return EchoVerdict.COUNTED
        if name in self._stale:
            del self._stale[name]
            self._echoed.append(name)
            self.stale_echoes += 1
            return EchoVerdict.STALE
        if name in self._echoed:
            return EchoVerdict.DUPLICATE
        return EchoVerdict.FOREIGN

    def on_round_trip(self, rtt_ns: int) -> None:
        """A round-trip sample (ping to pong), in ns."""
        if rtt_ns < 0:
            raise ValueError(f"a round trip cannot be negative, got {rtt_ns} ns")
        samples = self._round_trips
        samples.append(rtt_ns)
        self.round_trip_ns = min(samples)
        one_way = self.round_trip_ns // 2
        if one_way != self._one_way:
            self._one_way = one_way
            self._started, self._started_off = 0, self._anchor_off
            self._known_cursor = (0, self._anchor_off)
        self._refresh_due()

    def position(self, now_ns: int) -> int:
        """The phone's played count at ``now_ns`` by the model: never decreasing, never above
        ``sent_total``. What paces the sending; ``known()`` is what is reported."""
        if self._frozen is not None:
            return self._frozen
        if self.round_trip_ns is None:
            played = self._anchor_count
        else:
            target = now_ns * self.rate
            started, off = self._walk(target)
            self._started, self._started_off = started, off
            played = self._played(started, off, target)
        if played > self._reported:
            self._reported = played
        return self._reported

    def known(self, now_ns: int) -> int:
        """What the phone had played one one-way delay before ``now_ns``, the latest it can
        have told us of: never decreasing. A ``stop`` arriving now freezes the count here."""
        if self._frozen is not None:
            return self._frozen
        if self.round_trip_ns is None:
            played = self._anchor_count
        else:
            target = (now_ns - self._one_way) * self.rate
            started, off = self._walk(target, self._known_cursor)
            self._known_cursor = (started, off)
            played = self._held(self._played(started, off, target), now_ns)
        if played > self._known:
            self._known = played
        return self._known

    def clear(self, now_ns: int) -> int:
        """A clear was sent at ``now_ns``: freeze where it finds the phone; start a new epoch."""
        if self._frozen is not None:
            return self._frozen
        arrives = now_ns + self._one_way
        target = arrives * self.rate
        frozen = max(self._held(self._played(*self._walk(target), target), now_ns), self._known)
        self._reported = self._known = self.sent_total = frozen
        self.epoch += 1
        self._forget_pending()
        self._since_mark = 0
        self._expecting = False
        self._chunks.clear()
        self._peaks.clear()
        self._set_anchor(frozen, arrives)
        self._due = None
        return frozen

    def end(self, now_ns: int, *, by_us: bool = False) -> int:
        """The call ended at ``now_ns``: freeze where the phone was when the end left it (the
        caller's ``stop``, a dropped socket), or, ``by_us``, where our close will find it."""
        if self._frozen is not None:
            return self._frozen
        played = self._anchor_count
        if self.round_trip_ns is not None:
            at = now_ns + self._one_way if by_us else now_ns - self._one_way
            target = at * self.rate
            played = self._held(self._played(*self._walk(target), target), now_ns)
        self._frozen = max(played, self.confirmed, self._known)
        self._due = None
        self._forget_pending()
        self._expecting = False
        self._chunks.clear()
        self._peaks.clear()
        return self._frozen

    def time_of(self, target: int, now_ns: int) -> int | None:
        """When ``position()`` reaches ``target`` by the model (``now_ns`` if it has already).

        None if ``target`` was not sent, or is not reached yet while no round trip is known
        (only an echo moves the position then).
        """
        if self._frozen is not None:
            return now_ns if target <= self._frozen else None
        if target > self.sent_total:
            return None
        if target <= max(self._reported, self._anchor_count):
            return now_ns
        if self.round_trip_ns is None:
            return None
        one_way = self._one_way * self.rate
        index, off = self._started, self._started_off
        chunks = self._chunks
        if index and target <= chunks[index - 1][1]:
            index -= 1
        else:
            while True:
                off = max(off, chunks[index][2] + one_way)
                if target <= chunks[index][1]:
                    break
                index += 1
        return max(ceil_div(off + target * NS_PER_SECOND, self.rate), now_ns)

    def underruns(self, now_ns: int) -> tuple[int, int]:
        """(count, ns) the phone ran dry while more audio was expected; an open span to now."""
        count, length = self._dry_count, self._dry_ns
        if self._expecting:
            now = now_ns * self.rate
            dry_from = self._tail_off() + self.sent_total * NS_PER_SECOND
            if now > dry_from:
                count += 1
                length += (now - dry_from) // self.rate
        return count, length

    # -- the model ------------------------------------------------------------------------

    def _held(self, played: int, now_ns: int) -> int:
        """``played``, held at the oldest pending mark while its echo is overdue."""
        if self._due is not None and now_ns > self._due[1] and played > self._due[0]:
            return max(self._due[0], self._anchor_count)
        return played

    def _refresh_due(self) -> None:
        """When the oldest pending mark's echo becomes overdue, by the model as it is now."""
        self._due = None
        if not self._pending or self.round_trip_ns is None:
            return
        end = next(iter(self._pending.values()))
        one_way = self._one_way * self.rate
        off = self._anchor_off
        for _, chunk_end, key in self._chunks:
            off = max(off, key + one_way)
            if end <= chunk_end:
                played_ns = ceil_div(off + end * NS_PER_SECOND, self.rate)
                self._due = (end, played_ns + self._one_way + ECHO_SLACK_NS)
                return

    def _mark(self) -> str:
        name = f"ap{self.epoch}-{self.sent_total}"
        self._pending[name] = self.sent_total
        self._since_mark = 0
        return name

    def _forget_pending(self) -> None:
        stale = self._stale
        for name in self._pending:
            stale[name] = None
        self._pending.clear()
        while len(stale) > STALE_MEMORY:
            del stale[next(iter(stale))]

    def _tail_off(self) -> int:
        """The offset the last chunk sent plays at (the phone's end of audio, scaled)."""
        if not self._peaks:
            return self._anchor_off
        return max(self._anchor_off, self._peaks[0][1] + self._one_way * self.rate)

    def _set_anchor(self, count: int, at_ns: int) -> None:
        self._anchor_count = count
        self._anchor_off = at_ns * self.rate - count * NS_PER_SECOND
        self._started, self._started_off = 0, self._anchor_off
        self._known_cursor = (0, self._anchor_off)

    def _anchor(self, count: int, at_ns: int) -> None:
        """The phone finished sample ``count`` at ``at_ns``: drop the chunks before it (a mark
        always ends a chunk, so none is cut in two)."""
        chunks, peaks = self._chunks, self._peaks
        while chunks and chunks[0][1] <= count:
            chunks.popleft()
        while peaks and peaks[0][0] <= count:
            peaks.popleft()
        self._set_anchor(count, at_ns)

    def _walk(self, target: int, cursor: tuple[int, int] | None = None) -> tuple[int, int]:
        """How many chunks after the anchor had started by scaled time ``target``, and the
        offset of the last of them (the anchor's if none); from ``cursor`` (a previous walk's
        result, by default ``position()``'s) when it is not past ``target``."""
        chunks = self._chunks
        started, off = cursor or (self._started, self._started_off)
        if started and off + chunks[started - 1][0] * NS_PER_SECOND > target:
            started, off = 0, self._anchor_off
        one_way = self._one_way * self.rate
        total = len(chunks)
        while started < total:
            start, _, key = chunks[started]
            begins = max(off, key + one_way)
            if begins + start * NS_PER_SECOND > target:
                break
            started += 1
            off = begins
        return started, off

    def _played(self, started: int, off: int, target: int) -> int:
        if not started:
            return self._anchor_count
        end = self._chunks[started - 1][1]
        return min(end, (target - off) // NS_PER_SECOND)
