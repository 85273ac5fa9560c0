"""The WAV sink through the engine on the virtual clock: the file holds exactly what was
heard, whenever and however its ``with`` block is left."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from agent_playout import AgentPlayout, PlayoutClosedError, PlayoutHandle, VirtualClock
from agent_playout.core.units import NS_PER_SECOND
from agent_playout.sinks.wav import WavSink

from .conftest import RATE, frames_of, ramp, stream

FADE = RATE * 5 // 1000
"""WavSink's default 5 ms fade-out, in samples."""


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def play_ramp(playout: AgentPlayout, seconds: float) -> PlayoutHandle:
    signal = ramp(round(seconds * RATE))
    return playout.play(
        item_id="item_1",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(signal, 480)),
    )


async def cut_and_leave_the_block(clock: VirtualClock, path: Path, cut_at: float) -> int:
    """The README's code as written: play 2 s into a WavSink, interrupt at ``cut_at``, wait
    for the playout and leave the ``with`` block at once; returns ``played_samples``."""

    async def main() -> int:
        with WavSink(path, RATE, 1, clock=clock) as sink:
            playout = AgentPlayout(audio_source=sink, clock=clock)
            handle = play_ramp(playout, 2.0)
            await clock.sleep_until(round(cut_at * NS_PER_SECOND))
            handle.interrupt()
            await handle.wait_for_playout()
        return handle.played_samples

    return await clock.run(main())


@pytest.mark.parametrize("cut_at", [0.3, 0.5137, 1.0])
async def test_leaving_the_block_right_after_an_interrupt_keeps_the_fade_in_the_file(
    clock: VirtualClock, tmp_path: Path, cut_at: float
) -> None:
    """The file ends where ``played_samples`` says, its fade-out included."""
    path = tmp_path / "answer.wav"
    played = await cut_and_leave_the_block(clock, path, cut_at)
    written = wav_samples(path)
    assert written.size == played
    cut = played - FADE
    assert np.array_equal(written[:cut], ramp(cut))
    assert np.all(np.abs(written[cut:]) <= np.abs(ramp(played)[cut:]))  # the fade, falling
    assert written[-1] != ramp(played)[-1]


async def test_closing_while_an_item_plays_ends_it_with_an_error(
    clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "answer.wav"
    sink = WavSink(path, RATE, 1, clock=clock)
    playout = AgentPlayout(audio_source=sink, clock=clock)

    async def main() -> PlayoutHandle:
        handle = play_ramp(playout, 2.0)
        await clock.sleep_until(500_000_000)
        sink.close()
        await handle.wait_for_playout()
        return handle

    handle = await clock.run(main())
    assert handle.done()
    assert isinstance(handle.error, PlayoutClosedError)
    assert f"WavSink for {path} is closed" in str(handle.error)
    written = wav_samples(path)
    assert written.size == handle.played_samples
    assert np.array_equal(written, ramp(written.size))
    assert 0.4 * RATE <= written.size <= 0.5 * RATE
    await clock.run(playout.aclose())


async def test_a_closed_sink_refuses_audio_and_waits_with_a_clear_error(
    clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "answer.wav"
    sink = WavSink(path, RATE, 1, clock=clock)
    sink.close()
    frame = frames_of(ramp(480), 480)[0]
    with pytest.raises(PlayoutClosedError, match=r"WavSink for .*answer\.wav is closed"):
        await sink.capture_frame(frame)
    with pytest.raises(PlayoutClosedError, match="is closed"):
        await sink.wait_for_playout()
    sink.close()  # closing twice is harmless
    assert wav_samples(path).size == 0


async def test_reading_counts_writes_nothing_and_never_raises(
    clock: VirtualClock, tmp_path: Path
) -> None:
    path = tmp_path / "answer.wav"
    with WavSink(path, RATE, 1, clock=clock) as sink:
        await sink.capture_frame(frames_of(ramp(4800), 4800)[0])
        size_before = path.stat().st_size
        await clock.advance(0.1)
        assert (sink.underruns, sink.samples_played, sink.frames_written) == (0, 2400, 2400)
        assert path.stat().st_size == size_before  # the read wrote nothing to the file
    sink.close()
    assert (sink.underruns, sink.samples_played, sink.frames_written) == (0, 2400, 2400)
    assert np.array_equal(wav_samples(path), ramp(2400))


class MovingClock(VirtualClock):
    """A virtual clock that, like a real one, moves a little between any two reads: each
    read is 50 µs (more than a sample) later than the one before, and timers fire that late."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now_ns(self) -> int:
        self.reads += 1
        return super().now_ns() + self.reads * 50_000


@pytest.mark.parametrize("cut_at", [0.3, 0.5137])
async def test_the_file_keeps_the_whole_fade_when_the_clock_moves_between_reads(
    tmp_path: Path, cut_at: float
) -> None:
    path = tmp_path / "answer.wav"
    played = await cut_and_leave_the_block(MovingClock(), path, cut_at)
    assert wav_samples(path).size == played
