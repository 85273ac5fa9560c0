"""The receiving side for an aiortc peer: plays the remote track as a player would and reports
its counts to the sender in the receiver-report format.

aiortc's ``RTCRtpReceiver`` exposes no playout counters: its jitter buffer (capacity 16,
prefetch 4 packets) hands each complete Opus packet to a decoder thread, whose frames queue up
on the remote track until ``recv()`` takes them. So the reporter is the player: it takes each
frame as it arrives, and its counts mean what the browser's do:

- ``jitterBufferEmittedCount``: samples per channel of the frames taken for playout (each
  decoded packet's duration, as libwebrtc counts a packet when it extracts it);
- ``concealedSamples`` and ``concealmentEvents``: the gaps between frames' pts (packets that
  never came, which a player fills with silence); ``totalSamplesReceived`` is both together;
- ``packetsReceived`` and ``packetsLost``: the receiver's own ``getStats()`` ``inbound-rtp``
  figures, when a receiver is given;
- ``packetsDiscarded``: packets the player skipped that the receiver does not count lost
  (aiortc's jitter buffer drops a packet that comes too late, or too early for its 16 slots,
  and counts it received): the skipped packets less ``packetsLost``, never decreasing. Those
  two are what the sink charges as not heard; without a receiver every skip counts here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiortc import RTCDataChannel, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from ...clock import Clock, MonotonicClock
from .reports import is_report_request, report_text

__all__ = ["ReceiverReporter"]

logger = logging.getLogger("agent_playout")

REPORT_INTERVAL_MS = 50
"""Reports go out this often while the track is live (the contract's pace)."""


class ReceiverReporter:
    """Consumes a received audio ``track`` at the pace its frames arrive and reports over
    ``channel`` every ``interval_ms``, and at once on ``{"type": "report-now"}``.

    ``on_frame`` sees every frame taken (a test's ground truth, or a recorder). ``start()``
    begins; ``aclose()`` stops and sends a last report.
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        channel: RTCDataChannel,
        *,
        receiver: RTCRtpReceiver | None = None,
        interval_ms: int = REPORT_INTERVAL_MS,
        on_frame: Callable[[AudioFrame], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if track.kind != "audio":
            raise ValueError(f"track must be an audio track, got kind {track.kind!r}")
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self._track = track
        self._channel = channel
        self._receiver = receiver
        self._interval_ns = interval_ms * 1_000_000
        self._on_frame = on_frame
        self._clock: Clock = clock or MonotonicClock()
        self.emitted = 0
        """Samples per channel of the frames taken for playout."""
        self.concealed = 0
        """Samples per channel missing between frames (gaps in pts)."""
        self.concealment_events = 0
        self.skipped_packets = 0
        """Packets missing between the frames taken (a gap of ``n`` samples is ``n`` / the
        next frame's samples, rounded up)."""
        self.frames = 0
        self._next_pts: int | None = None
        self._packets_received: int | None = None
        self._packets_lost: int | None = None
        self._packets_discarded = 0
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        channel.on("message", self._on_message)

    def start(self) -> None:
        """Start playing the track and reporting."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._play()),
            asyncio.create_task(self._report_every_interval()),
        ]

    async def aclose(self) -> None:
        """Stop playing and reporting; a last report goes out if the channel is open."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.report()

    def report(self) -> None:
        """Send one report now (if the channel is open)."""
        if self._channel.readyState != "open":
            return
        inbound: dict[str, int | float] = {
            "totalSamplesReceived": self.emitted + self.concealed,
            "concealedSamples": self.concealed,
            "concealmentEvents": self.concealment_events,
            "jitterBufferEmittedCount": self.emitted,
        }
        if self._packets_received is not None:
            inbound["packetsReceived"] = self._packets_received
        if self._packets_lost is not None:
            inbound["packetsLost"] = self._packets_lost
        discarded = self.skipped_packets - (self._packets_lost or 0)
        self._packets_discarded = max(self._packets_discarded, discarded)
        inbound["packetsDiscarded"] = self._packets_discarded
        at_ms = self._clock.now_ns() / 1_000_000
        text = report_text(self._seq, at_ms, inbound)
        self._seq += 1
        self._channel.send(text)

    def _on_message(self, message: object) -> None:
        """Answer ``report-now``; never raises (pyee would re-raise it in aiortc's reader)."""
        if isinstance(message, str | bytes) and is_report_request(message):
            try:
                self.report()
            except Exception as error:  # the channel closing under us
                logger.debug("receiver report not sent: %s", error)

    def _take(self, frame: AudioFrame) -> None:
        pts, samples = frame.pts, frame.samples
        if pts is not None:
            if self._next_pts is not None and pts > self._next_pts:
                gap = pts - self._next_pts
                self.concealed += gap
                self.concealment_events += 1
                self.skipped_packets += -(-gap // max(samples, 1))
            self._next_pts = pts + samples
        self.emitted += samples
        self.frames += 1
        if self._on_frame is not None:
            self._on_frame(frame)

    async def _play(self) -> None:
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                break
            if isinstance(frame, AudioFrame):
                self._take(frame)
        self.report()

    async def _report_every_interval(self) -> None:
        clock = self._clock
        next_ns = clock.now_ns()
        while self._track.readyState == "live":
            await self._read_receiver_stats()
            try:
                self.report()
            except Exception as error:  # the channel closing under us
                logger.debug("receiver report not sent: %s", error)
            next_ns += self._interval_ns
            await clock.sleep_until(next_ns)

    async def _read_receiver_stats(self) -> None:
        if self._receiver is None:
            return
        try:
            stats = await self._receiver.getStats()
        except Exception as error:  # a transport closing under us: report without them
            logger.debug("receiver stats not read: %s", error)
            return
        for entry in stats.values():
            if getattr(entry, "type", None) == "inbound-rtp":
                self._packets_received = int(entry.packetsReceived)
                self._packets_lost = int(entry.packetsLost)
