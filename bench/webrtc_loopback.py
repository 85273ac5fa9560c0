"""``python -m bench.webrtc_loopback``: the WebRTC output's error against a real aiortc receiver.

Two peer connections on loopback in this process. The sink's frames pass through a recording
track on their way to aiortc (what went out); the receiving peer plays the track with
``ReceiverReporter`` and keeps every frame it took, with its pts (what it got). At
``--interrupts`` random cuts (seeded), it prints, per cut and in all:

- the position error: the settled heard count less the receiver's own count of the item's
  samples in the frames it took (0 is exact);
- while the audio plays, how far ``samples_played`` was behind the receiver's live count when
  each report arrived (never ahead is the rule; one 20 ms frame is the target);
- the sent-to-playout delay the sink observed (median, max) and how long each settle took.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame as AvFrame
from av.frame import Frame

from agent_playout import AudioFrame
from agent_playout.sinks.webrtc import REPORT_CHANNEL_LABEL, ReceiverReporter, WebRtcSink
from agent_playout.sinks.webrtc.scheduler import OPUS_DELAY

RATE = 48000
CHUNK = 2400


class Recorded(MediaStreamTrack):
    """The sink's track, passed through: keeps each frame's first channel (what went out)."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.inner = inner
        self.chunks: list[np.ndarray] = []

    async def recv(self) -> Frame:
        frame = await self.inner.recv()
        assert isinstance(frame, AvFrame)
        self.chunks.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
        return frame

    def stop(self) -> None:
        super().stop()
        self.inner.stop()


class Taken:
    """The frames the receiver took for playout: (pts, samples) each."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int]] = []

    def take(self, frame: AvFrame) -> None:
        assert frame.pts is not None
        self.frames.append((frame.pts, frame.samples))

    @property
    def emitted(self) -> int:
        return sum(samples for _, samples in self.frames)

    def of_item(self, begins: int, count: int) -> int:
        """The item's samples (at stream ``[begins, begins + count)``) in the frames taken."""
        start, end = begins + OPUS_DELAY, begins + OPUS_DELAY + count
        return sum(max(0, min(p + n, end) - max(p, start)) for p, n in self.frames)


def chirp(samples: int) -> np.ndarray:
    t = np.arange(samples) / RATE
    return (12000 * np.cos(2 * np.pi * (200 * t + 1100 * t * t))).astype(np.int16)


async def connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


async def feed(sink: WebRtcSink, signal: np.ndarray) -> None:
    for start in range(0, signal.size, CHUNK):
        piece = signal[start : start + CHUNK]
        await sink.capture_frame(AudioFrame(piece.tobytes(), RATE, 1, piece.size))


async def measure(interrupts: int, seed: int) -> None:
    rng = random.Random(seed)
    signal = chirp(RATE)
    sink = WebRtcSink(label="bench")
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    recorded, taken = Recorded(sink.track), Taken()
    got: asyncio.Queue[MediaStreamTrack | RTCDataChannel] = asyncio.Queue()
    receiver.on("track", got.put_nowait)
    receiver.on("datachannel", got.put_nowait)
    sender.addTrack(recorded)
    channel = sender.createDataChannel(REPORT_CHANNEL_LABEL)
    sink.attach_channel(channel)
    behind: list[int] = []
    item: dict[str, int] = {}

    def on_report(_: object) -> None:
        if "begins" in item:
            live = min(max(taken.emitted - OPUS_DELAY - item["begins"], 0), item["sent"])
            behind.append(live - (sink.samples_played - item["start"]))

    channel.on("message", on_report)
    await connect(sender, receiver)
    track, remote_channel = await got.get(), await got.get()
    assert isinstance(track, MediaStreamTrack)
    assert isinstance(remote_channel, RTCDataChannel)
    reporter = ReceiverReporter(track, remote_channel, on_frame=taken.take)
    reporter.start()
    errors: list[int] = []
    settle_ms: list[float] = []
    try:
        await asyncio.sleep(0.3)
        after = 0
        for index in range(interrupts):
            item.clear()
            start = sink.samples_written
            feeder = asyncio.create_task(feed(sink, signal))
            cut_s = rng.uniform(0.1, 0.9)
            await asyncio.sleep(0.05)
            sent = np.concatenate(recorded.chunks)
            begins = after + int(np.flatnonzero(sent[after:])[0])
            item.update(start=start, begins=begins, sent=signal.size)
            await asyncio.sleep(cut_s - 0.05)
            sink.clear_queue()
            feeder.cancel()
            end = sink.samples_written
            item["sent"] = end - start
            cleared = time.perf_counter()
            heard = await sink.settle(start, end)
            settle_ms.append((time.perf_counter() - cleared) * 1000)
            item.clear()
            truth = taken.of_item(begins, end - start)
            errors.append(heard - truth)
            print(
                f"cut {index + 1:3d} at {cut_s:.3f} s: heard {heard}, receiver took {truth},"
                f" error {heard - truth:+d} samples, settled in {settle_ms[-1]:.0f} ms"
            )
            after = begins + end - start
            await asyncio.sleep(0.1)
    finally:
        await reporter.aclose()
        await sender.close()
        await receiver.close()
    delays = sink.delays()
    exact = sum(error == 0 for error in errors)
    worst = max(map(abs, errors))
    print(f"position error at {len(errors)} cuts: {exact} exact, max |error| {worst} samples")
    print(
        f"playing, behind the receiver's live count at each report: median"
        f" {statistics.median(behind):.0f}, max {max(behind)}, min {min(behind)} samples"
        f" ({sum(b > 960 for b in behind)} of {len(behind)} more than a 20 ms frame)"
    )
    print(f"sent to playout: median {delays.median_ms:.1f} ms, max {delays.max_ms:.1f} ms")
    print(
        f"settle after a cut: median {statistics.median(settle_ms):.0f} ms,"
        f" max {max(settle_ms):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interrupts", type=int, default=20, help="random cuts (default 20)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(measure(args.interrupts, args.seed))


if __name__ == "__main__":
    main()
