"""Two aiortc peer connections on loopback in one process: a ``WebRtcSink``'s track to a
receiving peer whose ``ReceiverReporter`` reports back over the ``receiver-stats`` channel, and
which keeps every sample it took for playout (the ground truth)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

from agent_playout.sinks.webrtc import REPORT_CHANNEL_LABEL, ReceiverReporter, WebRtcSink

CONNECT_TIMEOUT_S = 10.0


@dataclass
class Received:
    """What the receiving peer took for playout: every frame's first channel, in order."""

    chunks: list[np.ndarray] = field(default_factory=list)
    emitted: list[int] = field(default_factory=list)

    def take(self, frame: AudioFrame) -> None:
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        self.chunks.append(samples.astype(np.int16))

    def samples(self) -> np.ndarray:
        if not self.chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.chunks)


@dataclass
class Loopback:
    sink: WebRtcSink
    sender: RTCPeerConnection
    receiver: RTCPeerConnection
    reporter: ReceiverReporter
    sender_channel: RTCDataChannel
    receiver_channel: RTCDataChannel
    received: Received


async def _connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


@contextlib.asynccontextmanager
async def loopback(sink: WebRtcSink, *, attach: bool = True) -> AsyncIterator[Loopback]:
    """``sink`` sending to a receiving peer that reports back; both closed on the way out."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    received = Received()
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    channels: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    receiver.on("track", tracks.put_nowait)
    receiver.on("datachannel", channels.put_nowait)
    sender.addTrack(sink.track)
    sender_channel = sender.createDataChannel(REPORT_CHANNEL_LABEL)
    if attach:
        sink.attach_channel(sender_channel)
    reporter: ReceiverReporter | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await _connect(sender, receiver)
            track = await tracks.get()
            receiver_channel = await channels.get()
            audio = next(t for t in receiver.getTransceivers() if t.kind == "audio")
            reporter = ReceiverReporter(
                track, receiver_channel, receiver=audio.receiver, on_frame=received.take
            )
            reporter.start()
            while receiver_channel.readyState != "open":
                await asyncio.sleep(0.01)
        yield Loopback(sink, sender, receiver, reporter, sender_channel, receiver_channel, received)
    finally:
        if reporter is not None:
            await reporter.aclose()
        await sender.close()
        await receiver.close()
