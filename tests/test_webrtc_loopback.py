"""The WebRTC sink against a real aiortc receiving peer on loopback: interrupts settle to what the
receiver got, and the playout position follows the receiver's own count."""

from __future__ import annotations

import asyncio
import logging
import random
import re

import numpy as np
import pytest

from agent_playout import AgentPlayout, AudioFrame, PositionUnconfirmedError, TranscriptForwarder
from agent_playout.sinks.webrtc import TrackEndedError, WebRtcSink

from .conftest import frames_of, stream
from .webrtc_loopback import (
    OPUS_DELAY,
    Loopback,
    chirp,
    expected_heard,
    item_samples_taken,
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
    """Play ``signal``, cut it after ``delay_s``, settle: (the samples sent, fade included, and
    how many the sink says were heard)."""
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
    return end - start, heard


def check_cut(lb: Loopback, signal: np.ndarray, after: int, sent_count: int, heard: int) -> int:
    """What went out is the item cut at ``sent_count``, fade included, then silence; ``heard``
    is exactly the receiver's own count of those samples; returns where the item ended."""
    sent = lb.sent.samples()
    begins = stream_start(sent, after)
    ends = begins + sent_count
    assert np.array_equal(sent[begins:ends], expected_heard(signal, sent_count, FADE))
    assert not sent[ends:].any()
    assert lb.received.emitted + lb.reporter.concealed >= ends + OPUS_DELAY
    assert heard == item_samples_taken(lb.received, begins, sent_count)
    return begins


async def test_random_interrupts_settle_to_exactly_what_the_receiver_took() -> None:
    rng = random.Random(16)
    signal = chirp(48000)
    sink = WebRtcSink(label="loop")
    async with loopback(sink) as lb:
        after = 0
        for _ in range(3):
            sent_count, heard = await interrupt_after(lb, signal, rng.uniform(0.15, 0.6))
            await asyncio.sleep(0.05)  # a few silent frames after the cut go out too
            begins = check_cut(lb, signal, after, sent_count, heard)
            if lb.reporter.concealed == 0:  # no loss: the whole cut was heard
                assert heard == sent_count
                # the receiver's own non-silent samples: the same span, to the codec's smear
                span = non_silent_span(lb.received.samples()[begins:])
                assert span is not None
                first, last = span
                assert abs(first - OPUS_DELAY) <= OPUS_SMEAR
                assert abs((last - first) - heard) <= OPUS_SMEAR
            after = begins + sent_count
        # the reporter's figures from the aiortc receiver's own getStats()
        inbound = lb.received.inbound
        assert inbound["packetsReceived"] >= inbound["jitterBufferEmittedCount"] // FRAME
        assert inbound["packetsLost"] >= 0
        assert inbound["totalSamplesReceived"] == (
            inbound["jitterBufferEmittedCount"] + inbound["concealedSamples"]
        )


async def test_a_packet_the_receiver_never_played_is_charged_as_discarded() -> None:
    sink = WebRtcSink(label="skips")
    signal = chirp(48000)
    async with loopback(sink, skip=frozenset({30})) as lb:  # 0.6 s in: inside the item
        await asyncio.sleep(0.3)
        sent_count, heard = await interrupt_after(lb, signal, 0.6)
        begins = stream_start(lb.sent.samples(), 0)  # the skip is after it: no shift
        assert lb.received.inbound["packetsDiscarded"] == 1
        assert lb.received.inbound["packetsLost"] == 0
        assert sink.settlement is not None
        assert sink.settlement.lost == FRAME
        assert heard == sent_count - FRAME
        # the skipped frame was the item's, and the receiver's pts keep the stream's axis
        assert begins < 30 * FRAME
        assert begins + sent_count >= 31 * FRAME
        assert heard == item_samples_taken(lb.received, begins, sent_count)


async def test_a_reporter_answers_report_now_so_a_settle_need_not_wait_for_its_pace() -> None:
    sink = WebRtcSink(label="asked")
    signal = chirp(48000)
    async with loopback(sink, interval_ms=10_000) as lb:
        await asyncio.sleep(0.1)
        sent_count, heard = await asyncio.wait_for(
            interrupt_after(lb, signal, 0.2), timeout=0.2 + 0.6
        )
        await asyncio.sleep(0.05)
        check_cut(lb, signal, 0, sent_count, heard)
        assert len(lb.received.reported) >= 2  # the first, and the answers to the asks


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


async def test_an_engine_interrupt_ends_at_what_the_receiver_took() -> None:
    sink = WebRtcSink(label="engine")
    text = "the quick brown fox jumps over the lazy dog and runs away"
    signal = chirp(48000)
    seen: list[tuple[int, int]] = []
    state: dict[str, int] = {}

    def on_report() -> None:
        if "after" not in state or handle.interrupted:
            return
        if "begins" not in state:
            sent = lb.sent.samples()
            if not sent[state["after"] :].any():
                return
            state["begins"] = stream_start(sent, state["after"])
        truth = max(lb.received.emitted - OPUS_DELAY - state["begins"], 0)
        seen.append((handle.played_samples, truth))

    playout = AgentPlayout(audio_source=sink)
    async with loopback(sink, on_report=on_report) as lb:
        await asyncio.sleep(0.05)
        handle = playout.play(
            item_id="it_rtc",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=stream(re.findall(r"\S+\s*", text)),
            audio_stream=stream(frames_of(signal, 480, rate=48000)),
        )
        state["after"] = len(lb.sent.chunks) * FRAME
        await asyncio.sleep(random.Random(7).uniform(0.3, 0.6))
        handle.interrupt()
        await handle.wait_for_playout()
        heard = handle.played_samples
        assert handle.position_confirmed is True
        assert sink.settlement is not None
        check_cut(lb, signal, state["after"], sink.settlement.end - sink.settlement.start, heard)
        assert seen
        # until the interrupt (the engine then holds the sent count until the settle)
        assert all(played <= truth for played, truth in seen)  # captions never ahead
        assert text.startswith(handle.played_text.strip())
        assert 0 < len(handle.played_text) < len(text)
    await playout.aclose()
