"""The WebRTC output: an aiortc audio track fed by the playout, whose position is what the
receiver reports it played (extra ``[webrtc]``).

Position sources, on one 48 kHz axis:

- ``samples_sent``: audio the track handed to aiortc's Opus encoder, fade included: exact.
- ``samples_played``: the receiver's playout position. Its reports (``reports``: the W3C
  ``getStats()`` names) give it as the ``inbound-rtp`` ``jitterBufferEmittedCount``: the
  samples of the packets it took out of its jitter buffer to decode for playout, counted in
  Opus's 48 kHz clock per channel. libwebrtc adds a packet's duration when it extracts the
  packet, so the count leads what is audible by at most that 20 ms packet, and concealment and
  time-stretch (``insertedSamplesForDeceleration``, ``removedSamplesForAcceleration``) never
  enter it: they change when packets are taken, not how many. Where a receiver has no such
  count, its AudioWorklet's rendered ``frames`` (at its ``sampleRate``, converted to 48 kHz,
  counted from the track's first frame, as the page must) are the fallback; they include
  what the receiver concealed or stretched, so they are the rougher of the two. The count
  is mapped onto the sent axis: less ``OPUS_DELAY`` (the encoder's 312-sample lookahead),
  origin at the track's first frame, and the silence between items taken out. The
  ``media-playout`` stats are parsed but not used: Chromium keeps them device-wide, at the
  device's rate, so they cannot be tied to this track.
  It never exceeds ``samples_sent``, and it never decreases.

Axes. The receiver's counters start at its first packet. The track sends from its first
``recv()``, which aiortc makes only once DTLS is up, and it sends continuously (silence when
nothing is queued), so the receiver's first packet is the track's first frame and its count
keeps moving between items. A receiver that missed the first packets would start later and
under-count by what it missed: never over-count. Lost packets are never emitted, so after a
loss the position lags behind the truth by what was lost, for the same reason.

Interrupts. WebRTC cannot clear the receiver's buffer: what was sent still plays. On
``clear_queue`` the track stops feeding at once: the next frame carries the declick fade-out
of what was to be sent next (``fade_ms``, counted as sent and written), then silence.
``pause()`` fades out the same way and holds the queue; ``resume()`` sends on from the next
sample, faded in. After an interrupt the engine calls ``settle(start, end)``: once a report
reached ``end``, the listener heard the sent count less 20 ms for each packet the receiver
dropped over the item, ``packetsLost`` (never came) plus ``packetsDiscarded`` (came too late
to play). Concealment and time-stretch are not charged: a receiver conceals while a packet is
late and then still plays it, so they take nothing sent away. Each report is placed where the
receiver was, not by what had been sent when it arrived: at its receive front
(``packetsReceived + packetsLost`` packets, where a packet is counted dropped) when it gives
both, else at its playout position. The charge is the change in the drop count from the last
report placed at or before the item's first sample to the first that reached ``end``, never
below 0 (``packetsLost`` goes down when a late packet is played); so a gap in the silence
before the item, reported after its first frame went out, is not the item's
(``WebRtcScheduler`` states the rule and its edges).

Without a receiver (no channel ever attached, nothing relayed), ``samples_played`` is the sent
position: **unconfirmed**, an upper bound that is never called exact, and ``settle`` raises
``PositionUnconfirmedError`` at once. With a channel attached and no report yet,
``samples_played`` stays where it was (0 for a new sink): captions wait for the receiver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel

from ...clock import Clock, MonotonicClock, TimerHandle
from ...core.frames import Int16Array
from ...core.positions import samples_to_ns
from ...core.units import NS_PER_SECOND
from ...errors import OutputEndedError, PositionUnconfirmedError
from ..base import ClosesOnExit, SinkSurface, Waiters, buffer_settings, sink_samples
from .reports import REPORT_NOW, ReportError, parse_report
from .scheduler import FRAME, RATE, Delays, Settlement, WebRtcScheduler
from .track import WebRtcTrack

__all__ = ["TrackEndedError", "WebRtcSink"]

logger = logging.getLogger("agent_playout")

BAD_REPORT_LOG_INTERVAL_S = 1.0
"""At most one log line per this interval about bad reports (the rest are counted in it)."""

_BAD_REPORT_LOG_NS = round(BAD_REPORT_LOG_INTERVAL_S * NS_PER_SECOND)

ASK_INTERVAL_MS = 50
"""While a settle waits past the time its audio should have played, it asks the receiver for a
report this often (the contract's own report pace)."""

_ASK_INTERVAL_NS = ASK_INTERVAL_MS * 1_000_000


class TrackEndedError(OutputEndedError):
    """The WebRTC track ended (its peer connection closed, or the sink was closed)."""


class _Wait:
    """A wait on the receiver's reports: done when ``check`` holds or the receiver goes."""

    __slots__ = ("check", "future")

    def __init__(self, check: Callable[[], bool], future: asyncio.Future[None]) -> None:
        self.check = check
        self.future = future


class _Asking:
    """Asks for a report at a time, then every ``ASK_INTERVAL_MS`` until cancelled: a settle
    is not left to a receiver's own pace."""

    __slots__ = ("_ask", "_clock", "_timer")

    def __init__(self, clock: Clock, ask: Callable[[], None]) -> None:
        self._clock = clock
        self._ask = ask
        self._timer: TimerHandle | None = None

    def start(self, at_ns: int) -> None:
        self._timer = self._clock.call_at(at_ns, self._fire)

    def _fire(self) -> None:
        self._ask()
        self.start(self._clock.now_ns() + _ASK_INTERVAL_NS)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class WebRtcSink(SinkSurface, ClosesOnExit):
    """Plays 48 kHz audio into an aiortc track; its position is the receiver's reported playout.

    Give ``track`` to ``RTCPeerConnection.addTrack`` and the receiver's ``receiver-stats`` data
    channel to ``attach_channel``. ``capture_frame`` queues audio and returns once at most
    ``queue_size_ms`` of it waits to be sent; the track sends it at real time, 20 ms a frame.
    ``wait_for_playout`` returns once the receiver reports it played what was written, or
    ``settle_timeout_ms`` after it was all sent, so a silent receiver never wedges it.
    """

    def __init__(
        self,
        *,
        num_channels: int = 1,
        queue_size_ms: int = 200,
        fade_ms: float = 5,
        settle_timeout_ms: int = 1000,
        label: str = "webrtc",
        clock: Clock | None = None,
    ) -> None:
        queue_limit, fade = buffer_settings(RATE, num_channels, queue_size_ms, fade_ms)
        if settle_timeout_ms <= 0:
            raise ValueError(f"settle_timeout_ms must be positive, got {settle_timeout_ms}")
        super().__init__(RATE, num_channels)
        self._label = label
        self._clock: Clock = clock or MonotonicClock()
        self._scheduler = WebRtcScheduler(num_channels, queue_limit=queue_limit, fade=fade)
        self._settle_timeout_ns = settle_timeout_ms * 1_000_000
        self.track = WebRtcTrack(self._next_frame, num_channels, self._track_stopped)
        """The audio track to add to the peer connection."""
        self._first_frame_ns: int | None = None
        self._last_read_ns = 0
        self._frames = 0
        self._sent_waiters = Waiters()
        self._waits: list[_Wait] = []
        self._ended: TrackEndedError | None = None
        self._receiver = False
        self._receiver_gone = False
        self._send: Callable[[str], None] | None = None
        self._played_floor = 0
        self._settlement: Settlement | None = None
        self._bad_logged_ns: int | None = None
        self._bad_unlogged = 0
        self._warned_unconfirmed = False
        self._run_start: int | None = None
        """Where the audio since the last end of audio or clear began (audio axis)."""

    # What the engine reads.

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def label(self) -> str:
        return self._label

    @property
    def samples_played(self) -> int:
        """The receiver's playout position on the sent axis (see the module's docstring)."""
        scheduler = self._scheduler
        if not self._receiver:
            return scheduler.audio_sent
        if not scheduler.has_report:
            return self._played_floor
        return max(scheduler.played, self._played_floor)

    @property
    def samples_written(self) -> int:
        return self._scheduler.written

    @property
    def samples_sent(self) -> int:
        """Audio handed to the encoder, fade included (48 kHz, exact)."""
        return self._scheduler.audio_sent

    @property
    def samples_queued(self) -> int:
        """Audio accepted and not yet sent: the sink's own queue (the receiver's is not ours)."""
        return self._scheduler.queued

    @property
    def position_confirmed(self) -> bool:
        """Whether ``samples_played`` comes from a receiver's reports (else it is the sent
        position, unconfirmed)."""
        return self._receiver and self._scheduler.has_report

    @property
    def settlement(self) -> Settlement | None:
        """The last ``settle``'s outcome, or None before one."""
        return self._settlement

    def delays(self) -> Delays:
        """The sent-to-playout delay observed so far (count, median_ms, max_ms)."""
        return self._scheduler.delays()

    def _underrun_totals(self) -> tuple[int, int]:
        return self._scheduler.underruns()

    # The receiver's side.

    def attach_channel(self, channel: RTCDataChannel) -> None:
        """Take receiver reports from ``channel`` (label ``receiver-stats``), and ask it for one
        with ``{"type": "report-now"}`` when a settle needs it."""

        def send(text: str) -> None:
            if channel.readyState == "open":
                channel.send(text)

        self.expect_reports(send)
        channel.on("message", self._on_channel_message)
        channel.on("close", self.receiver_closed)
        if channel.readyState == "closed":
            self.receiver_closed()

    def expect_reports(self, send: Callable[[str], None] | None = None) -> None:
        """A receiver reports to this sink (through ``receive_message``, e.g. relayed by a
        server): ``samples_played`` waits for its reports from now on, holding where it was
        (the sent position, if audio went out unconfirmed before). ``send`` delivers the
        sink's requests for a report at once, if the relay can."""
        if not self._receiver:
            self._played_floor = self._scheduler.audio_sent
        self._receiver = True
        self._receiver_gone = False
        self._send = send

    def receive_message(self, message: object) -> None:
        """One message from the receiver: a report moves the position; anything else is logged
        (one line per ``BAD_REPORT_LOG_INTERVAL_S``) and changes nothing."""
        if not self._receiver:
            self.expect_reports(self._send)
        try:
            if not isinstance(message, str | bytes):
                raise ReportError(f"message is a {type(message).__name__}, not text")
            report = parse_report(message)
            self._scheduler.on_report(report, self._clock.now_ns())
        except ReportError as error:
            self._bad_report(error)
            return
        self._check_waits()

    def _on_channel_message(self, message: object) -> None:
        """A channel's message handler never raises: pyee would re-raise it inside aiortc's
        SCTP reader, and one bad message would stop every later one."""
        try:
            self.receive_message(message)
        except Exception:
            logger.exception("webrtc %s: failed to take a receiver message", self._label)

    def receiver_closed(self) -> None:
        """The reports stopped for good (the channel closed): waits on them end now."""
        self._receiver_gone = True
        self._check_waits(gone=True)

    # The rtc.AudioSource surface.

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame``; return once at most ``queue_size_ms`` waits to be sent."""
        self._raise_if_ended()
        samples = sink_samples(frame, RATE, self._channels)
        scheduler = self._scheduler
        if self._run_start is None and samples.size:
            self._run_start = scheduler.written
        scheduler.push(samples)
        target = scheduler.written - scheduler.queue_limit
        if scheduler.audio_sent < target:
            await self._wait_for_sent(target)

    def clear_queue(self) -> None:
        """Stop feeding now: the next frame carries a ``fade_ms`` fade-out, then silence."""
        self._scheduler.clear()
        self._run_start = None
        self._sent_waiters.end()
        self._check_waits()

    def pause(self) -> None:
        """Hold the queue: the next frame carries a ``fade_ms`` fade-out (sent and counted),
        then silence, until ``resume``; nothing queued is dropped."""
        self._scheduler.pause()
        self._paused = True

    def resume(self) -> None:
        """Send again from the sample after the pause's fade-out, faded in."""
        self._scheduler.resume()
        self._paused = False

    async def wait_for_playout(self) -> None:
        """Return once the receiver reports it played everything written (or cleared), or
        ``settle_timeout_ms`` after that was all sent; at once once sent, with no receiver."""
        self._raise_if_ended()
        scheduler = self._scheduler
        scheduler.end_of_audio()
        end = scheduler.written
        run_start, self._run_start = self._run_start, None
        if scheduler.audio_sent < end:
            await self._wait_for_sent(end)
        if not self._receiver or self._receiver_gone or self.samples_played >= end:
            return
        since = scheduler.stream_of(end if run_start is None else run_start) or 0
        confirmed = await self._wait_reports(
            lambda: scheduler.covers(end, since), self._clock.now_ns() + self._settle_timeout_ns
        )
        if not confirmed and not self._warned_unconfirmed:
            self._warned_unconfirmed = True
            logger.warning(
                "webrtc %s: the receiver did not report playing the end of the audio within"
                " %d ms of sending it; the item ends at what was sent",
                self._label,
                self._settle_timeout_ns // 1_000_000,
            )

    async def settle(self, start: int, end: int) -> int:
        """Samples of ``[start, end)`` on the ``samples_written`` axis that the listener heard,
        once the receiver's reports cover ``end``. ``PositionUnconfirmedError`` when it cannot
        learn that: no receiver, reports stopped, or nothing by ``settle_timeout_ms`` after
        ``end`` was due to play."""
        scheduler = self._scheduler
        if not self._receiver:
            self._unconfirmed(start, end)
            raise PositionUnconfirmedError(
                f"webrtc {self._label}: no receiver reports (no channel attached), so what"
                " the listener heard is unknown"
            )
        outcome = scheduler.settled(start, end)
        if outcome is None:
            self._ask_for_report()
            due = self._due_ns(end)
            ask = _Asking(self._clock, self._ask_for_report)
            ask.start(due + scheduler.median_delay_ns())
            try:
                confirmed = await self._wait_reports(
                    lambda: scheduler.settled(start, end) is not None,
                    due + self._settle_timeout_ns,
                )
            finally:
                ask.cancel()
            outcome = scheduler.settled(start, end)
            if not confirmed or outcome is None:
                self._unconfirmed(start, end)
                why = "the reports stopped" if self._receiver_gone else "no report covered it"
                raise PositionUnconfirmedError(
                    f"webrtc {self._label}: could not confirm samples [{start}, {end}):"
                    f" {why} within {self._settle_timeout_ns // 1_000_000} ms"
                )
        heard, lost = outcome
        self._settlement = Settlement(start, end, heard, lost, confirmed=True)
        return heard

    def close(self) -> None:
        """End the track: the sink sends no more, and every wait on it ends."""
        self.track.stop()

    # Inside.

    async def _next_frame(self) -> tuple[Int16Array, int]:
        """Wait until the next frame is due (aiortc's own pacing), then take it."""
        clock = self._clock
        if self._first_frame_ns is None:
            self._first_frame_ns = clock.now_ns()
        else:
            due = self._first_frame_ns + samples_to_ns(self._frames * FRAME, RATE)
            await clock.sleep_until(due)
        pts = self._frames * FRAME
        self._frames += 1
        self._last_read_ns = now = clock.now_ns()
        samples = self._scheduler.frame(now)
        self._sent_waiters.release(self._scheduler.audio_sent)
        return samples, pts

    def _track_stopped(self) -> None:
        if self._ended is not None:
            return
        self._ended = TrackEndedError(f"webrtc {self._label}: the track ended")
        self._sent_waiters.end(self._ended)
        self._receiver_gone = True
        self._check_waits(gone=True)

    def _raise_if_ended(self) -> None:
        if self._ended is not None:
            raise self._ended

    async def _wait_for_sent(self, target: int) -> None:
        """Wait until ``target`` audio was sent. Before the track's first frame that waits for
        the peer to connect; once it sends, a sender that stops reading it for
        ``settle_timeout_ms`` fails the wait (``TrackEndedError``). A pause only holds it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent_waiters.add(target, future)
        if self._first_frame_ns is None:
            await future
            return
        clock, timeout = self._clock, self._settle_timeout_ns
        timer: TimerHandle | None = None

        def watch() -> None:
            nonlocal timer
            if future.done():
                return
            if clock.now_ns() - self._last_read_ns < timeout:
                timer = clock.call_at(self._last_read_ns + timeout, watch)
                return
            future.set_exception(
                TrackEndedError(
                    f"webrtc {self._label}: the track was not read for {timeout // 1_000_000}"
                    " ms (its sender stopped)"
                )
            )

        timer = clock.call_at(self._last_read_ns + timeout, watch)
        try:
            await future
        finally:
            timer.cancel()

    async def _wait_reports(self, check: Callable[[], bool], deadline_ns: int) -> bool:
        """Wait until ``check`` holds after a report: True; False at ``deadline_ns`` or once the
        receiver is gone."""
        if check():
            return True
        if self._receiver_gone:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wait = _Wait(check, future)
        self._waits.append(wait)

        def overdue() -> None:
            if not future.done():
                future.set_result(None)

        timer: TimerHandle = self._clock.call_at(deadline_ns, overdue)
        try:
            await future
        finally:
            timer.cancel()
            if wait in self._waits:
                self._waits.remove(wait)
        return check()

    def _check_waits(self, *, gone: bool = False) -> None:
        for wait in list(self._waits):
            if wait.future.done():
                self._waits.remove(wait)
            elif gone or wait.check():
                self._waits.remove(wait)
                wait.future.set_result(None)

    def _due_ns(self, end: int) -> int:
        """When audio sample ``end - 1`` was (or will be) handed to the encoder."""
        scheduler = self._scheduler
        now = self._clock.now_ns()
        stream = scheduler.stream_after(end)
        if stream is not None:
            sent = scheduler.sent_at(max(stream - 1, 0))
            return now if sent is None else sent
        return now + samples_to_ns(max(end - scheduler.audio_sent, 0) + FRAME, RATE)

    def _ask_for_report(self) -> None:
        send = self._send
        if send is None or self._receiver_gone:
            return
        try:
            send(REPORT_NOW)
        except Exception as error:  # a channel closing under us: the reports will tell
            logger.debug("webrtc %s: could not ask for a report: %s", self._label, error)

    def _unconfirmed(self, start: int, end: int) -> None:
        self._settlement = Settlement(start, end, max(end - start, 0), 0, confirmed=False)

    def _bad_report(self, error: ReportError) -> None:
        now = self._clock.now_ns()
        last = self._bad_logged_ns
        if last is not None and now - last < _BAD_REPORT_LOG_NS:
            self._bad_unlogged += 1
            return
        more = f" ({self._bad_unlogged} more since the last line)" if self._bad_unlogged else ""
        self._bad_logged_ns = now
        self._bad_unlogged = 0
        logger.warning("webrtc %s: ignored a bad receiver report: %s%s", self._label, error, more)
