"""The WebRTC output: an aiortc track whose position is what the receiving peer reports.

Both peers run in this process over loopback: the receiving one plays the track with
``ReceiverReporter`` (what a browser page does with its ``getStats()``), reporting over the
``receiver-stats`` data channel. The answer is cut 0.6 s in; the heard count is what the
receiver confirmed. Run: ``python examples/webrtc_loopback.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from agent_playout import AgentPlayout, AudioFrame, TranscriptForwarder
from agent_playout.sinks.webrtc import ReceiverReporter, WebRtcSink

RATE = 24000


async def texts() -> AsyncIterator[str]:
    yield "Your table is booked for eight, on the terrace by the river."


async def frames(seconds: float) -> AsyncIterator[AudioFrame]:
    t = np.arange(round(seconds * RATE)) / RATE
    tone = (6000 * np.sin(2 * np.pi * (220 + 200 * t) * t)).astype(np.int16)
    for start in range(0, tone.size, RATE // 50):
        chunk = tone[start : start + RATE // 50]
        yield AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)


async def connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    """Offer and answer within the process (a page does this over HTTP)."""
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


async def main() -> None:
    sink = WebRtcSink()  # 48 kHz; AgentPlayout resamples to it
    sender = RTCPeerConnection()
    sender.addTrack(sink.track)
    sink.attach_channel(sender.createDataChannel("receiver-stats"))

    receiver = RTCPeerConnection()
    got: asyncio.Queue[MediaStreamTrack | RTCDataChannel] = asyncio.Queue()
    receiver.on("track", got.put_nowait)
    receiver.on("datachannel", got.put_nowait)
    await connect(sender, receiver)
    track, channel = await got.get(), await got.get()
    assert isinstance(track, MediaStreamTrack)
    assert isinstance(channel, RTCDataChannel)
    reporter = ReceiverReporter(track, channel)  # plays the track, reports what it took
    reporter.start()

    playout = AgentPlayout(audio_source=sink)
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=texts(),
        audio_stream=frames(2.0),
    )
    await asyncio.sleep(0.6)
    handle.interrupt()  # the track stops feeding now; the receiver plays what it has
    await handle.wait_for_playout()  # ... until its reports cover the cut
    print(f"confirmed by the receiver: {handle.position_confirmed}")
    print(f"heard: {handle.played_samples} samples at 48 kHz: {handle.played_text!r}")
    settled = sink.settlement
    assert settled is not None
    print(f"sent: {settled.end - settled.start}, lost or discarded: {settled.lost}")
    delays = sink.delays()
    print(f"sent to played: median {delays.median_ms:.0f} ms, max {delays.max_ms:.0f} ms")
    await playout.aclose()
    await reporter.aclose()
    await sender.close()
    await receiver.close()


if __name__ == "__main__":
    asyncio.run(main())
