from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from agent_playout import AudioFrame, NullSink, PacedSink, VirtualClock
from agent_playout.core.units import NS_PER_SECOND
from agent_playout.sinks.wav import WavSink

from .conftest import RATE, ramp


def frame(samples: int, start: int = 0) -> AudioFrame:
    data = ramp(samples, start)
    return AudioFrame(data, RATE, 1, samples)


async def test_capture_returns_at_once_within_the_queue_limit(clock: VirtualClock) -> None:
    sink = NullSink(queue_size_ms=200, clock=clock)
    await sink.capture_frame(frame(4800))
    assert sink.samples_queued == 4800
    assert clock.now_ns() == 0


async def test_capture_waits_until_the_queue_is_back_to_its_limit(clock: VirtualClock) -> None:
    sink = NullSink(queue_size_ms=200, clock=clock)
    await sink.capture_frame(frame(4800))
    await clock.run(sink.capture_frame(frame(1200)))
    assert clock.now_ns() == 50_000_000
    assert sink.samples_played == 1200
    assert sink.samples_queued == 4800


async def test_played_count_is_exact_at_any_instant(clock: VirtualClock) -> None:
    sink = NullSink(queue_size_ms=5000, clock=clock)
    await sink.capture_frame(frame(72000))
    await clock.advance_ns(1_234_567_891)
    assert sink.samples_played == 1_234_567_891 * RATE // NS_PER_SECOND
    await clock.run(sink.wait_for_playout())
    assert clock.now_ns() == 3_000_000_000
    assert sink.samples_played == 72000


async def test_clear_keeps_a_short_falling_fade_that_still_plays(clock: VirtualClock) -> None:
    heard: list[np.ndarray] = []
    sink = PacedSink(queue_size_ms=1000, fade_ms=5, clock=clock, on_audio=heard.append)
    loud = AudioFrame(np.full(24000, 20000, np.int16), RATE, 1, 24000)
    await sink.capture_frame(loud)
    await clock.advance(0.1)
    sink.clear_queue()
    assert sink.samples_written == 2400 + 120
    await clock.run(sink.wait_for_playout())
    audio = np.concatenate(heard)
    assert audio.size == 2520
    tail = audio[2400:].astype(int)
    assert np.all(np.diff(tail) <= 0)
    assert tail[0] < 20000
    assert tail[-1] == 0


async def test_clear_without_fade_cuts_at_the_played_sample(clock: VirtualClock) -> None:
    sink = PacedSink(queue_size_ms=1000, fade_ms=0, clock=clock)
    await sink.capture_frame(frame(24000))
    await clock.advance(0.25)
    sink.clear_queue()
    assert sink.samples_played == sink.samples_written == 6000


async def test_a_capture_waiting_at_clear_returns_and_adds_nothing(clock: VirtualClock) -> None:
    sink = NullSink(queue_size_ms=100, clock=clock)
    await sink.capture_frame(frame(2400))
    waiting = asyncio.create_task(sink.capture_frame(frame(2400)))
    await clock.advance(0.01)
    assert not waiting.done()
    sink.clear_queue()
    await clock.settle()
    assert waiting.done()
    await clock.advance(1)
    assert sink.samples_played == 240


async def test_underrun_plays_silence_that_is_not_counted(clock: VirtualClock) -> None:
    sink = NullSink(clock=clock)
    await sink.capture_frame(frame(2400))
    await clock.advance(0.3)
    assert sink.samples_played == 2400
    await sink.capture_frame(frame(2400))
    assert sink.underruns == 1
    assert sink.underrun_ns == 200_000_000
    await clock.advance(0.05)
    assert sink.samples_played == 3600


async def test_pause_holds_position_and_resume_continues_from_the_same_sample(
    clock: VirtualClock,
) -> None:
    sink = NullSink(queue_size_ms=2000, clock=clock)
    await sink.capture_frame(frame(24000))
    await clock.advance(0.5)
    sink.pause()
    await clock.advance(10)
    assert sink.samples_played == 12000
    assert sink.samples_queued == 12000
    sink.resume()
    await clock.advance(0.25)
    assert sink.samples_played == 18000


async def test_an_idle_sink_schedules_no_timers(clock: VirtualClock) -> None:
    sink = NullSink(clock=clock)
    await sink.capture_frame(frame(480))
    await clock.run(sink.wait_for_playout())
    assert clock.next_deadline_ns() is None


async def test_wrong_format_is_refused_and_nothing_queued_is_lost(clock: VirtualClock) -> None:
    sink = NullSink(clock=clock)
    await sink.capture_frame(frame(480))
    with pytest.raises(ValueError, match="16000 Hz x1, this sink plays 24000 Hz x1"):
        await sink.capture_frame(AudioFrame(bytes(320), 16000, 1, 160))
    assert sink.samples_written == 480


async def test_wav_file_holds_exactly_what_was_played(clock: VirtualClock, tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    with WavSink(path, clock=clock, fade_ms=0) as sink:
        await sink.capture_frame(frame(4800))
        await clock.advance(0.1)
        sink.clear_queue()
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 2400
        written = np.frombuffer(wav.readframes(2400), dtype=np.int16)
    assert np.array_equal(written, ramp(2400))


async def test_reading_the_counts_never_hands_audio_to_the_listener(clock: VirtualClock) -> None:
    heard: list[np.ndarray] = []
    sink = PacedSink(RATE, 1, queue_size_ms=1000, clock=clock, on_audio=heard.append)
    await sink.capture_frame(frame(4800))
    await clock.advance(0.1)
    assert (sink.samples_played, sink.samples_queued, sink.underruns, sink.underrun_ns) == (
        2400,
        2400,
        0,
        0,
    )
    assert heard == []
    await clock.run(sink.wait_for_playout())
    assert np.array_equal(np.concatenate(heard), ramp(4800))


async def test_a_listener_that_fails_in_a_timer_fails_the_waiting_capture(
    clock: VirtualClock,
) -> None:
    def broken(samples: np.ndarray) -> None:
        raise OSError("disk full")

    sink = PacedSink(RATE, 1, queue_size_ms=100, clock=clock, on_audio=broken)
    await sink.capture_frame(frame(2400))
    capture = asyncio.create_task(sink.capture_frame(frame(2400, 2400)))
    await clock.advance(0.2)
    assert capture.done()
    with pytest.raises(OSError, match="disk full"):
        await capture
    assert sink.samples_played == 4800
