"""The WebRTC sink against a real aiortc receiving peer on loopback: interrupts settle to what the
receiver got, and the playout position follows the receiver's own count."""

from __future__ import annotations

import asyncio
import logging
import random

import numpy as np
import pytest

from agent_playout import AudioFrame, PositionUnconfirmedError
from agent_playout.sinks.webrtc import TrackEndedError, WebRtcSink

from .webrtc_loopback import (
    OPUS_DELAY,
    Loopback,
    chirp,
    expected_heard,
    loopback,
    non_silent_span,
)

pytestmark = pytest.mark.realtime

CHUNK = 2400
"""The engine's 50 ms chunks at 48 kHz."""

FRAME = 960
FADE = 240
OPUS_SMEAR = 64
"""How far Opus moves the edges of audio in what is decoded, at the 256 threshold of
``non_silent_span``: its pre-echo and its ringing after a cut (measured at most 2 samples
before the onset and 35 after the end of a 5 ms fade, at aiortc's 96 kbit/s)."""


async def feed(sink: WebRtcSink, signal: np.ndarray) -> None:
    for start in range(0, signal.size, CHUNK):
        piece = signal[start : start + CHUNK]
        await sink.capture_frame(AudioFrame(piece.tobytes(), 48000, 1, piece.size))


def stream_start(sent: np.ndarray, after: int) -> int:
    """Where the next item begins in what was sent: its first non-zero sample after ``after``."""
    return after + int(np.flatnonzero(sent[after:])[0])


async def interrupt_after(lb: Loopback, signal: np.ndarray, delay_s: float) -> tuple[int, int]:
    """Play ``signal``, cut it after ``delay_s``, settle: (the item's start on the audio axis,
    heard)."""
    sink = lb.sink
    start = sink.samples_written
    feeder = asyncio.create_task(feed(sink, signal))
    await asyncio.sleep(delay_s)
    sink.clear_queue()
    feeder.cancel()
    end = sink.samples_written
    assert end == sink.samples_sent + FADE
    heard = await sink.settle(start, end)
    assert sink.settlement is not None
    assert sink.settlement.confirmed
    assert (sink.settlement.start, sink.settlement.end) == (start, end)
    return start, heard


async def test_random_interrupts_settle_to_exactly_what_the_receiver_took() -> None:
    rng = random.Random(16)
    signal = chirp(48000)
    sink = WebRtcSink(label="loop")
    async with loopback(sink) as lb:
        after = 0
        for _ in range(3):
            start, heard = await interrupt_after(lb, signal, rng.uniform(0.15, 0.6))
            await asyncio.sleep(0.05)  # a few silent frames after the cut go out too
            sent = lb.sent.samples()
            begins = stream_start(sent, after)
            # exactly ``heard`` samples of the item went out, fade included, then silence
            ends = begins + heard
            assert np.array_equal(sent[begins:ends], expected_heard(signal, heard, FADE))
            assert not sent[ends:].any()
            # ... and the receiver took every frame that holds them, with no gap
            assert lb.reporter.concealed == 0
            assert lb.received.emitted >= ends + OPUS_DELAY
            # the receiver's own non-silent samples: the same span, to the codec's smear
            span = non_silent_span(lb.received.samples()[begins:])
            assert span is not None
            first, last = span
            assert abs(first - OPUS_DELAY) <= OPUS_SMEAR
            assert abs((last - first) - heard) <= OPUS_SMEAR
            after = ends
            assert heard == sink.samples_written - start


async def test_playout_position_follows_the_receivers_emitted_count() -> None:
    sink = WebRtcSink(label="follow")
    checks: list[tuple[int, int, int]] = []
    state: dict[str, int] = {}

    def on_report() -> None:
        if "begins" not in state:
            return
        base = state["begins"]
        truth_reported = min(max(received.reported[-1] - OPUS_DELAY - base, 0), state["length"])
        truth_now = min(max(received.emitted - OPUS_DELAY - base, 0), state["length"])
        checks.append((sink.samples_played - state["start"], truth_reported, truth_now))

    signal = chirp(24000)
    async with loopback(sink, on_report=on_report) as lb:
        received = lb.received
        await asyncio.sleep(0.1)
        start = sink.samples_written
        begins_stream = len(lb.sent.chunks) * FRAME
        state.update(start=start, length=signal.size)
        await feed(sink, signal)
        sent = lb.sent.samples()
        state["begins"] = stream_start(sent, min(begins_stream, sent.size) - FRAME)
        await sink.wait_for_playout()
        assert sink.samples_played == start + signal.size
    moving = [c for c in checks if 0 < c[1] < signal.size]
    assert len(moving) >= 5
    for played, reported, now in checks:
        assert played == reported  # exactly the report's count, mapped
        assert played <= now  # never ahead of the receiver
        assert now - played <= FRAME  # within one frame of its live count


async def test_channel_closed_mid_item_settle_raises_and_nothing_waits() -> None:
    sink = WebRtcSink(label="closing", settle_timeout_ms=500)
    async with loopback(sink) as lb:
        start = sink.samples_written
        feeder = asyncio.create_task(feed(sink, chirp(48000)))
        await asyncio.sleep(0.2)
        lb.receiver_channel.close()
        await asyncio.sleep(0.1)
        sink.clear_queue()
        feeder.cancel()
        end = sink.samples_written
        async with asyncio.timeout(1.0):
            with pytest.raises(PositionUnconfirmedError, match="closing"):
                await sink.settle(start, end)
            await sink.wait_for_playout()
        assert sink.settlement is not None
        assert not sink.settlement.confirmed
        assert sink.samples_played <= sink.samples_sent


async def test_garbage_on_the_channel_is_logged_and_the_position_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = WebRtcSink(label="noisy")
    async with loopback(sink) as lb:
        await asyncio.sleep(0.15)
        before = sink.samples_played
        with caplog.at_level(logging.WARNING, logger="agent_playout"):
            lb.receiver_channel.send("not json")
            lb.receiver_channel.send('{"type": "receiver-report", "seq": "x"}')
            await asyncio.sleep(0.1)
        lines = [r.getMessage() for r in caplog.records if "noisy" in r.getMessage()]
        assert len(lines) == 1  # rate limited
        assert "not JSON" in lines[0]
        signal = chirp(9600)
        start = sink.samples_written
        await feed(sink, signal)
        await sink.wait_for_playout()
        assert sink.samples_played == start + signal.size >= before


async def test_peer_closing_mid_item_ends_the_captures() -> None:
    sink = WebRtcSink(label="gone")
    async with loopback(sink) as lb:
        feeder = asyncio.create_task(feed(sink, chirp(96000)))
        await asyncio.sleep(0.2)
        await lb.sender.close()
        async with asyncio.timeout(1.0):
            with pytest.raises(TrackEndedError):
                await feeder
        with pytest.raises(PositionUnconfirmedError):
            await sink.settle(0, sink.samples_written + 48000)
