"""Two aiortc peer connections on loopback in one process: a ``WebRtcSink``'s track to a
receiving peer whose ``ReceiverReporter`` reports back over the ``receiver-stats`` channel.

The ground truth is kept on both ends, outside the sink: ``Sent`` records every frame aiortc
took from the track (a pass-through track between the sink's and the sender), ``Received``
every frame the receiving peer took for playout, with its pts, and the emitted count each
report carried when it reached the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame
from av.frame import Frame

from agent_playout.sinks.base import faded
from agent_playout.sinks.webrtc import REPORT_CHANNEL_LABEL, ReceiverReporter, WebRtcSink

CONNECT_TIMEOUT_S = 10.0
OPUS_DELAY = 312
"""libopus's lookahead at 48 kHz (application "voip"), measured in ``test_webrtc_track``."""


def first_channel(frame: AudioFrame) -> np.ndarray:
    samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
    return samples.astype(np.int16)


class Sent(MediaStreamTrack):
    """Passes the sink's frames to the sender, keeping a copy of each: what went out. The
    frames numbered in ``skip`` never reach the sender: the receiver sees a gap in the
    timestamps with no packet missing, as after a packet its jitter buffer discarded."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack, skip: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.inner = inner
        self.skip = skip
        self.chunks: list[np.ndarray] = []
        self._taken = 0

    async def recv(self) -> Frame:
        while True:
            frame = await self.inner.recv()
            assert isinstance(frame, AudioFrame)
            self._taken += 1
            if self._taken - 1 not in self.skip:
                break
        self.chunks.append(first_channel(frame))
        return frame

    def stop(self) -> None:
        super().stop()
        self.inner.stop()

    def samples(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)


@dataclass
class Received:
    """What the receiving peer took for playout, in order, and what each report said."""

    chunks: list[np.ndarray] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    reported: list[int] = field(default_factory=list)
    """The emitted count of each report, as it reached the sender."""
    inbound: dict[str, float] = field(default_factory=dict)
    """The last report's ``inbound`` figures."""

    def take(self, frame: AudioFrame) -> None:
        assert frame.pts is not None
        self.pts.append(frame.pts)
        self.chunks.append(first_channel(frame))

    def samples(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    @property
    def emitted(self) -> int:
        return sum(chunk.size for chunk in self.chunks)


@dataclass
class Loopback:
    sink: WebRtcSink
    sender: RTCPeerConnection
    receiver: RTCPeerConnection
    reporter: ReceiverReporter
    sender_channel: RTCDataChannel
    receiver_channel: RTCDataChannel
    sent: Sent
    received: Received


async def _connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


async def _opened(channel: RTCDataChannel) -> None:
    if channel.readyState != "open":
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await opened.wait()


@contextlib.asynccontextmanager
async def loopback(
    sink: WebRtcSink,
    *,
    attach: bool = True,
    on_report: Callable[[], None] | None = None,
    interval_ms: int = 50,
    skip: frozenset[int] = frozenset(),
) -> AsyncIterator[Loopback]:
    """``sink`` sending to a receiving peer that reports back; both closed on the way out.

    ``on_report`` runs right after the sink took each report (its position is then new).
    """
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    received = Received()
    sent = Sent(sink.track, skip)
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    channels: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    receiver.on("track", tracks.put_nowait)
    receiver.on("datachannel", channels.put_nowait)
    sender.addTrack(sent)
    sender_channel = sender.createDataChannel(REPORT_CHANNEL_LABEL)
    if attach:
        sink.attach_channel(sender_channel)

    def reported(message: object) -> None:
        try:
            inbound = json.loads(message)["inbound"]
            count = int(inbound["jitterBufferEmittedCount"])
        except (ValueError, TypeError, KeyError):  # a test's garbage, which the sink refused
            return
        received.reported.append(count)
        received.inbound = inbound
        if on_report is not None:
            on_report()

    sender_channel.on("message", reported)
    reporter: ReceiverReporter | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await _connect(sender, receiver)
            track = await tracks.get()
            receiver_channel = await channels.get()
            audio = next(t for t in receiver.getTransceivers() if t.kind == "audio")
            reporter = ReceiverReporter(
                track,
                receiver_channel,
                receiver=audio.receiver,
                on_frame=received.take,
                interval_ms=interval_ms,
            )
            reporter.start()
            await _opened(receiver_channel)
            await _opened(sender_channel)
        yield Loopback(
            sink, sender, receiver, reporter, sender_channel, receiver_channel, sent, received
        )
    finally:
        if reporter is not None:
            await reporter.aclose()
        await sender.close()
        await receiver.close()


def chirp(samples: int, *, offset: int = 0) -> np.ndarray:
    """A rising chirp (no period, so no two stretches of it are alike) that starts at its
    peak, so an item's first sample is found exactly in what was sent."""
    t = (np.arange(samples) + offset) / 48000
    phase = 2 * np.pi * (200 * t + 1100 * t * t)
    return (12000 * np.cos(phase)).astype(np.int16)


def expected_heard(signal: np.ndarray, heard: int, fade: int) -> np.ndarray:
    """What the sink must have sent of ``signal`` cut at ``heard`` samples, the last ``fade``
    of them faded out."""
    cut = signal[:heard].copy()
    tail = min(fade, heard)
    if tail:
        cut[heard - tail :] = faded(cut[heard - tail :].reshape(-1, 1)).reshape(-1)
    return cut


def non_silent_span(samples: np.ndarray, threshold: int = 256) -> tuple[int, int] | None:
    """[first, last + 1) of the samples at or above ``threshold`` in magnitude, or None."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= threshold)
    if loud.size == 0:
        return None
    return int(loud[0]), int(loud[-1]) + 1


def item_samples_taken(received: Received, begins: int, count: int) -> int:
    """Samples of the item sent at stream ``[begins, begins + count)`` that are in the frames
    the receiver took: its own count of them, lost packets left out (its pts are the sender's
    stream positions, from its first packet, which was the track's first frame)."""
    start, end = begins + OPUS_DELAY, begins + OPUS_DELAY + count
    return sum(
        max(0, min(pts + chunk.size, end) - max(pts, start))
        for pts, chunk in zip(received.pts, received.chunks, strict=True)
    )
