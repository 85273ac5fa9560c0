"""Resampling, pause and underruns through the engine, on the virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    PacedSink,
    PlayoutStateError,
    TimedText,
    TranscriptForwarder,
    VirtualClock,
)
from agent_playout.sinks.wav import WavSink

from .conftest import RATE, frames_of, ramp, stream


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)
    return np.repeat(mono, channels) if channels > 1 else mono


@pytest.mark.parametrize(
    ("in_rate", "in_channels", "sink_rate", "sink_channels"),
    [(22050, 1, 48000, 2), (16000, 1, 8000, 1), (48000, 2, 24000, 1), (24000, 1, 44100, 1)],
)
async def test_any_input_format_completes_with_the_seed_count_of_its_duration(
    clock: VirtualClock, in_rate: int, in_channels: int, sink_rate: int, sink_channels: int
) -> None:
    playout = AgentPlayout(audio_source=NullSink(sink_rate, sink_channels, clock=clock))
    signal = tone(2.0, in_rate, in_channels)
    step = in_rate // 50
    frames = [
        AudioFrame(signal[i * in_channels : (i + step) * in_channels], in_rate, in_channels, step)
        for i in range(0, signal.size // in_channels, step)
    ]
    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames),
    )
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 48000
    assert abs(handle.played_samples - 2 * sink_rate) <= 1


async def test_interrupt_of_a_resampled_item_matches_the_file_and_the_seed_units(
    clock: VirtualClock, tmp_path: Path
) -> None:
    with WavSink(tmp_path / "out.wav", 48000, 1, clock=clock, fade_ms=0) as sink:
        playout = AgentPlayout(audio_source=sink)
        handle = playout.play(
            item_id="it",
            content_index=0,
            transcription_fwd=None,
            text_stream=stream([]),
            audio_stream=stream(frames_of(tone(3.0, 22050), 441, rate=22050)),
        )
        await clock.advance(1.25)
        handle.interrupt()
        await clock.run(handle.wait_for_playout())
        assert sink.frames_written == handle.played_samples == 60000
    assert handle.audio_samples == 30000


async def test_pause_freezes_audio_and_text_and_resume_continues(clock: VirtualClock) -> None:
    heard: list[np.ndarray] = []
    sink = PacedSink(clock=clock, on_audio=heard.append, fade_ms=5)
    playout = AgentPlayout(audio_source=sink)
    forwarder = TranscriptForwarder()
    words = [TimedText(f"w{i} ", i * 0.25, i * 0.25 + 0.2) for i in range(8)]
    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=stream(words),
        audio_stream=stream(frames_of(ramp(2 * RATE), 480)),
    )
    await clock.advance(0.6)
    playout.pause()
    await clock.advance(0.1)
    frozen = (handle.audio_samples, forwarder.played_text)
    await clock.advance(30)
    assert (handle.audio_samples, forwarder.played_text) == frozen
    assert frozen == (round(0.6 * RATE) + 120, "w0 w1 w2 ")
    playout.resume()
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 2 * RATE
    audio = np.concatenate(heard)
    assert audio.size == 2 * RATE
    untouched = np.r_[0 : round(0.6 * RATE), round(0.6 * RATE) + 240 : 2 * RATE]
    assert np.array_equal(audio[untouched], ramp(2 * RATE)[untouched])


async def test_interrupt_while_paused_plays_nothing_more(clock: VirtualClock) -> None:
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(ramp(RATE), 480)),
    )
    await clock.advance(0.3)
    playout.pause()
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    playout.resume()
    await clock.advance(1)
    assert handle.audio_samples == round(0.3 * RATE)
    assert playout.sink.samples_played == round(0.3 * RATE)


async def test_pause_needs_a_sink_that_can(clock: VirtualClock) -> None:
    class NoPause:
        sample_rate, num_channels, queued_duration = RATE, 1, 0.0

        async def capture_frame(self, frame: object) -> None: ...

        def clear_queue(self) -> None: ...

        async def wait_for_playout(self) -> None: ...

    playout = AgentPlayout(audio_source=NoPause())
    with pytest.raises(PlayoutStateError, match="NoPause cannot pause"):
        playout.pause()


async def test_late_audio_plays_silence_that_is_not_counted(clock: VirtualClock) -> None:
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    forwarder = TranscriptForwarder()

    async def stalling() -> AsyncIterator[AudioFrame]:
        for index, frame in enumerate(frames_of(ramp(RATE), 480)):
            if index == 25:
                await clock.sleep_until(clock.now_ns() + 700_000_000)
            yield frame

    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=stream([TimedText("early ", 0.1, 0.2), TimedText("late", 0.6, 0.7)]),
        audio_stream=stalling(),
    )
    await clock.advance(0.65)
    assert handle.audio_samples == round(0.5 * RATE)
    assert forwarder.played_text == "early "
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == RATE
    assert handle.underruns == 1
    # audio is read ahead of the sink, so the stall runs from 0 to 0.7 s: dry from 0.5 s
    assert handle.underrun_seconds == pytest.approx(0.2, abs=1e-6)
    assert forwarder.played_text == "early late"
    assert clock.now_ns() == 1_200_000_000


async def test_sinks_without_underrun_counts_report_none(clock: VirtualClock) -> None:
    class Plain:
        sample_rate, num_channels, queued_duration = RATE, 1, 0.0

        async def capture_frame(self, frame: object) -> None:
            await asyncio.sleep(0)

        def clear_queue(self) -> None: ...

        async def wait_for_playout(self) -> None: ...

    playout = AgentPlayout(audio_source=Plain())
    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(ramp(480), 480)),
    )
    await handle.wait_for_playout()
    assert handle.underruns is None


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("sink_rate", [24000, 48000])
async def test_a_completed_item_reports_what_the_sink_played_at_any_input_rate(
    clock: VirtualClock, rate: int, sink_rate: int
) -> None:
    sink = NullSink(sink_rate, 1, clock=clock)
    playout = AgentPlayout(audio_source=sink)
    length = rate * 1579 // 1000 + 7
    signal = ramp(length)
    step = rate // 50
    frames = [
        AudioFrame(signal[i : i + step], rate, 1, signal[i : i + step].size)
        for i in range(0, length, step)
    ]
    handle = playout.play(
        item_id=f"it_{rate}",
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=stream(["every sample counts"]),
        audio_stream=stream(frames),
    )
    await clock.run(handle.wait_for_playout())
    assert not handle.interrupted
    assert handle.played_samples == sink.samples_played
    assert handle.audio_samples == sink.samples_played * 24000 // sink_rate
    assert handle.input_played_samples == length
