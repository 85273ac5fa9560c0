"""The WebRTC sink's track against aiortc's own Opus encoder: the frames it takes, and the
lookahead the sink subtracts from a receiver's count."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder

from agent_playout import AudioFrame, VirtualClock
from agent_playout.sinks.webrtc import WebRtcSink
from agent_playout.sinks.webrtc.scheduler import FRAME, OPUS_DELAY


@pytest.mark.parametrize("channels", [1, 2])
async def test_aiortc_encodes_each_frame_into_one_packet_delayed_by_the_lookahead(
    clock: VirtualClock, channels: int
) -> None:
    sink = WebRtcSink(clock=clock, num_channels=channels)
    samples = np.full(4 * FRAME * channels, 2000, dtype=np.int16)
    await sink.capture_frame(AudioFrame(samples.tobytes(), 48000, channels, 4 * FRAME))
    encoder = OpusEncoder()
    timestamps = []
    for _ in range(4):
        frame = await clock.run(sink.track.recv())
        assert (frame.samples, len(frame.layout.channels)) == (FRAME, channels)
        payloads, timestamp = encoder.encode(frame)
        assert len(payloads) == 1
        timestamps.append(timestamp)
    # one packet per frame, 20 ms apart, from the first frame on: the receiver's first packet
    # is the track's first frame, and its decoded audio lags the input by the lookahead
    assert timestamps == [0, FRAME, 2 * FRAME, 3 * FRAME]
    assert encoder.first_packet_pts == -OPUS_DELAY
