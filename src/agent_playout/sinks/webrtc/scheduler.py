"""The WebRTC output's positions, sans I/O: what the track sent, and where the receiver's reports
put its playout, on one exact sample axis.

No asyncio, no clock, no peer. ``WebRtcScheduler`` is told what the shell did (audio queued, a
20 ms frame handed to the encoder at t, a clear) and what the receiver said (a parsed report,
received at t), each with the sender's time in int ns, and answers in int samples at 48 kHz.

Two axes:

- the **stream axis** counts every sample the track handed to the encoder, silence included:
  the receiver's counters live on it (they start at its first packet, and the track sends
  continuously from its first frame);
- the **audio axis** counts only queued audio (``samples_written``, ``samples_sent``,
  ``samples_played``), as every sink of this package does. ``_segments`` maps one onto the
  other: where in the stream each run of audio went.
"""

from __future__ import annotations

import bisect
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from ...core.frames import Int16Array
from ...core.units import NS_PER_SECOND
from ..base import UnderrunMeter, faded, take_samples
from .reports import COUNTERS, ReceiverReport, ReportError

RATE = 48000
"""The track's rate: Opus's clock, at which every receiver counter is kept."""

FRAME = 960
"""Samples per channel in one 20 ms frame (aiortc's and the browsers' Opus packet)."""

OPUS_DELAY = 312
"""Samples by which aiortc's Opus encoder (libopus, application "voip", 48 kHz) delays the
audio: its lookahead, ``OPUS_GET_LOOKAHEAD``, which libav reports as the first packet's pts of
-312. A receiver that has decoded ``n`` stream samples has the input up to ``n - 312``."""

DELAY_WINDOW = 4096
"""Sent-to-playout delays kept for the median (the maximum covers them all)."""

SEGMENT_MEMORY = 65_536
"""Runs of audio remembered on the stream axis (one per stretch sent without a gap)."""

FRAME_MEMORY = 3000
"""Send times remembered, one per frame (60 s): enough for any report still to come."""

DROP_MEMORY = 65_536
"""Changes of the receiver's drop count remembered (one per report that moved it)."""


@dataclass(frozen=True, slots=True)
class Delays:
    """The sent-to-playout delay observed so far: a stream sample's send time to the arrival of
    the report that says the receiver took it out for playout (report transit included)."""

    count: int
    median_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """The last ``settle``: samples ``[start, end)`` on the audio axis, how many the listener
    heard, and how many were charged as dropped over them (packets the receiver reported lost
    or discarded, 20 ms each). ``confirmed`` is False when the receiver could not tell:
    ``heard`` is then the sent count, an upper bound."""

    start: int
    end: int
    heard: int
    lost: int
    confirmed: bool


class _Drops:
    """A run of reports with one drop count (``packetsLost + packetsDiscarded``): where its
    first report was placed on the stream axis, and how far the run's playout went."""

    __slots__ = ("dropped", "placed", "reached")

    def __init__(self, placed: int, dropped: int, reached: int) -> None:
        self.placed = placed
        self.dropped = dropped
        self.reached = reached


class ReportLedger:
    """The good reports so far: what they say, and the counters they must never go below."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.emitted: int | None = None
        """Stream samples the receiver took out for playout (its jitterBufferEmittedCount, or
        the worklet's fallback count at 48 kHz), or None before a report with either."""
        self.packets_lost = 0
        """The last ``packetsLost`` reported: it goes down when a packet counted lost came
        late and was played."""
        self.packets_discarded = 0
        self.packets_received: int | None = None
        self._counters: dict[tuple[str, str], int] = {}

    def check(self, report: ReceiverReport, stream_sent: int) -> int | None:
        """The report's emitted count, if it is consistent with the previous ones and with
        what was sent; ``ReportError`` naming the field otherwise. Nothing is kept yet."""
        if self.seq is not None and report.seq <= self.seq:
            raise ReportError(f"seq is {report.seq}, not above the previous {self.seq}")
        for section, name, attribute in COUNTERS:
            stats = getattr(report, section)
            value = None if stats is None else getattr(stats, attribute)
            before = self._counters.get((section, attribute))
            if value is not None and before is not None and value < before:
                raise ReportError(f"{section}.{name} decreased from {before} to {value}")
        emitted = _emitted(report)
        if emitted is not None and emitted > stream_sent:
            field = (
                "inbound.jitterBufferEmittedCount"
                if report.inbound is not None
                and report.inbound.jitter_buffer_emitted_count is not None
                else "worklet.frames"
            )
            raise ReportError(f"{field} says {emitted} samples, more than the {stream_sent} sent")
        return emitted

    def keep(self, report: ReceiverReport, emitted: int | None) -> None:
        """Keep a checked report."""
        self.seq = report.seq
        for section, _, attribute in COUNTERS:
            stats = getattr(report, section)
            value = None if stats is None else getattr(stats, attribute)
            if value is not None:
                self._counters[(section, attribute)] = value
        if emitted is not None and (self.emitted is None or emitted > self.emitted):
            self.emitted = emitted
        inbound = report.inbound
        if inbound is not None:
            if inbound.packets_lost is not None:
                self.packets_lost = inbound.packets_lost
            if inbound.packets_discarded is not None:
                self.packets_discarded = inbound.packets_discarded
            if inbound.packets_received is not None:
                self.packets_received = inbound.packets_received

    @property
    def dropped(self) -> int:
        """Packets the receiver will never play: lost (never came) or discarded (came too late).
        A packet counted lost that comes too late moves to discarded, so the sum holds."""
        return self.packets_lost + self.packets_discarded

    def front(self) -> int | None:
        """The receiver's receive front on the stream axis: the end of the highest packet it
        got, ``(packetsReceived + packetsLost)`` packets of ``FRAME`` from its first, which is
        the track's first frame; None without both counters."""
        if self.packets_received is None:
            return None
        return max(self.packets_received + self.packets_lost, 0) * FRAME


def _emitted(report: ReceiverReport) -> int | None:
    """Stream samples taken out for playout: ``jitterBufferEmittedCount``, else the worklet's
    rendered frames converted to 48 kHz (rounded down)."""
    inbound, worklet = report.inbound, report.worklet
    if inbound is not None and inbound.jitter_buffer_emitted_count is not None:
        return inbound.jitter_buffer_emitted_count
    if worklet is not None and worklet.frames is not None:
        rate = worklet.sample_rate or RATE
        return worklet.frames * RATE // rate
    return None


class WebRtcScheduler:
    """The queue, the two axes and the receiver's position, for one track.

    The receiver's playout position on the stream axis is its emitted count less the Opus
    delay, never above what was sent; mapped onto the audio axis it is ``played``.

    What the listener did not hear of what was sent is the packets the receiver dropped:
    ``packetsLost`` (never came) plus ``packetsDiscarded`` (came too late to play), 20 ms
    (``FRAME``) each. Concealment is not charged: a receiver conceals while a packet is late
    and then still plays it, or stretches time to catch up, and neither takes any sent audio
    away. Each report is placed on the stream axis where the receiver was: at its receive
    front (``ReportLedger.front``) when it gives ``packetsReceived`` and ``packetsLost``, for
    a packet is counted dropped there, else at its playout position; never before the
    previous report's place. A settle of stream span ``[S, E)`` charges the change in the
    drop count from the last report placed at or before ``S`` (the stream's start, with
    nothing dropped, if none) to the first report whose playout position, plus the packets
    charged, reaches ``E``; it waits until one does. The change is never charged below 0
    (``packetsLost`` goes down when a packet counted lost arrives late and is played) nor
    above the item. A drop counted first between two reports lies past the earlier one's
    front, so with fronts no drop inside the span escapes the charge, and one in the silence
    just before ``S`` is charged only if no report placed it before ``S`` (a report interval
    at most). Placed at its playout position instead, a report may already count a drop
    the receiver saw ahead of its playout, up to its jitter-buffer delay into the item.
    """

    def __init__(self, num_channels: int = 1, *, queue_limit: int, fade: int) -> None:
        if num_channels <= 0:
            raise ValueError(f"num_channels must be positive, got {num_channels}")
        self.channels = num_channels
        self.queue_limit = queue_limit
        self.fade = fade
        self.written = 0
        """Audio accepted and not cleared: where the next queued sample goes."""
        self.audio_sent = 0
        """Audio handed to the encoder, fade included."""
        self.stream_sent = 0
        """Every sample handed to the encoder, silence included."""
        self.ledger = ReportLedger()
        self._queue: deque[Int16Array] = deque()
        self._queued = 0
        self._segment_streams: list[int] = []
        self._segments: list[tuple[int, int, int]] = []
        """(stream start, audio start, samples) of each run of audio sent."""
        self._frame_times: deque[int] = deque(maxlen=FRAME_MEMORY)
        self._frames_sent = 0
        self._drops: list[_Drops] = [_Drops(0, 0, 0)]
        self._drop_places: list[int] = [0]
        self._delays: deque[int] = deque(maxlen=DELAY_WINDOW)
        self._delay_count = 0
        self._delay_max = 0
        self._played = 0
        self._expecting = False
        self._stop_at: int | None = None
        """While paused: the audio count at which the pause's fade-out ends."""
        self._underruns = UnderrunMeter()

    # The queue.

    @property
    def queued(self) -> int:
        """Audio accepted and not yet handed to the encoder."""
        return self._queued

    def push(self, samples: Int16Array) -> None:
        """Queue interleaved ``samples`` after what is queued."""
        count = samples.size // self.channels
        if count == 0:
            return
        self._queue.append(samples)
        self._queued += count
        self.written += count
        self._expecting = True

    def clear(self) -> int:
        """Drop the queue but its next ``fade`` samples, faded out: the next frame carries them
        (while paused, only the pause's fade-out still to go). Returns ``written``, which then
        is what was sent plus that fade."""
        if self._stop_at is not None:
            keep = min(max(self._stop_at - self.audio_sent, 0), self._queued)
            head = take_samples(self._queue, keep * self.channels)
            self._queue.clear()
            if keep:
                self._queue.append(head)
        else:
            keep = min(self.fade, self._queued)
            head = take_samples(self._queue, keep * self.channels)
            self._queue.clear()
            if keep:
                self._queue.append(self._faded(head, down=True))
        self._queued = keep
        self.written = self.audio_sent + keep
        self._expecting = False
        self._underruns.forget()
        return self.written

    @property
    def paused(self) -> bool:
        return self._stop_at is not None

    def pause(self) -> None:
        """Hold the queue: the next frame carries a fade-out of its next ``fade`` samples (sent
        and counted), then silence until ``resume``."""
        if self._stop_at is not None:
            return
        keep = min(self.fade, self._queued)
        if keep:
            head = take_samples(self._queue, keep * self.channels)
            self._queue.appendleft(self._faded(head, down=True))
        self._stop_at = self.audio_sent + keep
        self._underruns.forget()

    def resume(self) -> None:
        """Send the held queue again from the sample after the pause's fade-out, faded in."""
        if self._stop_at is None:
            return
        pending = min(max(self._stop_at - self.audio_sent, 0), self._queued)
        keep = min(self.fade, self._queued - pending)
        if keep:
            head = take_samples(self._queue, (pending + keep) * self.channels)
            split = pending * self.channels
            self._queue.appendleft(self._faded(head[split:], down=False))
            if pending:
                self._queue.appendleft(head[:split])
        self._stop_at = None

    def _faded(self, samples: Int16Array, *, down: bool) -> Int16Array:
        return faded(samples.reshape(-1, self.channels), down=down).reshape(-1)

    def end_of_audio(self) -> None:
        """No more audio is expected for now: running dry is no underrun."""
        self._expecting = False
        self._underruns.forget()

    def frame(self, now_ns: int) -> Int16Array:
        """The next 20 ms frame, handed to the encoder at ``now_ns``: queued audio first, then
        silence, so the receiver's axis keeps moving when nothing is queued."""
        channels = self.channels
        count = min(self._queued, FRAME)
        if self._stop_at is not None:
            count = min(count, max(self._stop_at - self.audio_sent, 0))
        out = np.zeros(FRAME * channels, dtype=np.int16)
        if count:
            out[: count * channels] = take_samples(self._queue, count * channels)
            self._queued -= count
            self._underruns.refilled(self.stream_sent)
            self._add_segment(self.stream_sent, self.audio_sent, count)
            self.audio_sent += count
        if count < FRAME and self._expecting and self._stop_at is None:
            self._underruns.went_dry(self.stream_sent + count)
        self._frame_times.append(now_ns)
        self._frames_sent += 1
        self.stream_sent += FRAME
        return out

    def _add_segment(self, stream: int, audio: int, count: int) -> None:
        if self._segments:
            last_stream, last_audio, last_count = self._segments[-1]
            if last_stream + last_count == stream and last_audio + last_count == audio:
                self._segments[-1] = (last_stream, last_audio, last_count + count)
                return
        self._segments.append((stream, audio, count))
        self._segment_streams.append(stream)
        if len(self._segments) > SEGMENT_MEMORY:
            half = SEGMENT_MEMORY // 2
            del self._segments[:half]
            del self._segment_streams[:half]

    # The axes.

    def audio_before(self, stream: int) -> int:
        """Audio samples placed before stream position ``stream``."""
        index = bisect.bisect_left(self._segment_streams, stream) - 1
        if index < 0:
            return 0 if not self._segments else min(self._segments[0][1], self.audio_sent)
        start, audio, count = self._segments[index]
        return audio + min(count, stream - start)

    def stream_after(self, audio: int) -> int | None:
        """The stream position just after audio sample ``audio - 1`` (0 for 0); None if that
        sample was not sent yet, or was sent so long ago that it is forgotten."""
        if audio <= 0:
            return 0
        if audio > self.audio_sent:
            return None
        segments = self._segments
        low, high = 0, len(segments)
        while low < high:  # the first run ending at or after ``audio``
            middle = (low + high) // 2
            if segments[middle][1] + segments[middle][2] < audio:
                low = middle + 1
            else:
                high = middle
        if low == len(segments) or segments[low][1] >= audio:
            return None
        start, first, _ = segments[low]
        return start + audio - first

    def stream_of(self, audio: int) -> int | None:
        """The stream position of audio sample ``audio``: sent, or to be sent (the next frame)."""
        if audio >= self.audio_sent:
            return self.stream_sent
        after = self.stream_after(audio + 1)
        return None if after is None else after - 1

    def sent_at(self, stream: int) -> int | None:
        """When the frame holding stream sample ``stream`` was handed over, if remembered."""
        index = stream // FRAME - (self._frames_sent - len(self._frame_times))
        if 0 <= index < len(self._frame_times):
            return self._frame_times[index]
        return None

    # The receiver.

    @property
    def has_report(self) -> bool:
        return self.ledger.emitted is not None

    @property
    def receiver_stream(self) -> int:
        """Stream samples the receiver has played out, by its reports (0 before any)."""
        emitted = self.ledger.emitted
        if emitted is None:
            return 0
        return min(max(emitted - OPUS_DELAY, 0), self.stream_sent)

    @property
    def played(self) -> int:
        """The receiver's position on the audio axis: never decreasing, never above sent."""
        played = min(self.audio_before(self.receiver_stream), self.audio_sent)
        if played > self._played:
            self._played = played
        return self._played

    def on_report(self, report: ReceiverReport, now_ns: int) -> None:
        """A report arrived at ``now_ns``: move the position; ``ReportError`` if it is
        inconsistent (then nothing changes)."""
        ledger = self.ledger
        before = self.receiver_stream
        emitted = ledger.check(report, self.stream_sent)
        ledger.keep(report, emitted)
        reached = self.receiver_stream
        self._place_drops(reached)
        if reached > before and reached > 0:
            sent = self.sent_at(reached - 1)
            if sent is not None:
                delay = max(now_ns - sent, 0)
                self._delays.append(delay)
                self._delay_count += 1
                self._delay_max = max(self._delay_max, delay)

    def delays(self) -> Delays:
        """The sent-to-playout delays: median of the last ``DELAY_WINDOW``, max of all."""
        if not self._delays:
            return Delays(0, None, None)
        return Delays(
            self._delay_count,
            statistics.median(self._delays) / 1_000_000,
            self._delay_max / 1_000_000,
        )

    def median_delay_ns(self) -> int:
        """The median delay so far (0 before any)."""
        return round(statistics.median(self._delays)) if self._delays else 0

    def _place_drops(self, reached: int) -> None:
        """Note the report just kept: where it goes on the stream axis, and its drop count."""
        ledger, last = self.ledger, self._drops[-1]
        front = ledger.front()
        placed = reached if front is None else min(front, self.stream_sent)
        placed = max(placed, self._drop_places[-1])
        if ledger.dropped == last.dropped:
            last.reached = max(last.reached, reached)
            return
        self._drops.append(_Drops(placed, ledger.dropped, reached))
        self._drop_places.append(placed)
        if len(self._drops) > DROP_MEMORY:
            half = DROP_MEMORY // 2
            del self._drops[:half]
            del self._drop_places[:half]

    def dropped_over(self, since_stream: int, stream_end: int) -> int | None:
        """Samples charged as dropped over stream ``[since_stream, stream_end)`` once a report
        reached ``stream_end`` (see the class docstring); None while none has."""
        if not self.has_report:
            return None
        index = max(bisect.bisect_right(self._drop_places, since_stream) - 1, 0)
        base = self._drops[index].dropped
        for run in self._drops[index:]:
            charged = max(run.dropped - base, 0) * FRAME
            if run.reached + charged >= stream_end:
                return charged
        return None

    def covers(self, audio_end: int, since_stream: int) -> bool:
        """Whether a report reached audio ``audio_end``, counting the packets dropped since
        ``since_stream`` as passed (a dropped packet is never emitted)."""
        stream_end = self.stream_after(audio_end)
        if stream_end is None:
            return False
        return self.dropped_over(since_stream, stream_end) is not None

    def settled(self, start: int, end: int) -> tuple[int, int] | None:
        """(heard, lost) of audio ``[start, end)`` once the reports cover ``end``, else None."""
        if end <= start:
            return 0, 0
        since = self.stream_of(start)
        if since is None:
            since = 0
        stream_end = self.stream_after(end)
        if stream_end is None:
            return None
        dropped = self.dropped_over(since, stream_end)
        if dropped is None:
            return None
        lost = min(dropped, end - start)
        return end - start - lost, lost

    def underruns(self) -> tuple[int, int]:
        """Underruns so far and their length in ns, on the stream's sent clock."""
        meter = self._underruns
        return meter.count(), meter.length(self.stream_sent) * NS_PER_SECOND // RATE
