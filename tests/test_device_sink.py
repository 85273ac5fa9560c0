"""The speakers sink on a real PortAudio stream: ALSA's ``null`` PCM under a test HOME.

The null device consumes audio as fast as it is given, so nothing here is paced by the
clock (but for ``paced_device``, which sleeps in the callback so that a test can find the
stream mid-play); every check compares counts with the audio the callback really handed
over. The pure ``PlayedCounter`` is checked against a sample-by-sample model first.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout import AgentPlayout, AudioFrame, PlayoutClosedError, PlayoutError
from agent_playout.sinks.device import (
    DeviceSink,
    NoOutputDeviceError,
    PlayedCounter,
    output_device_available,
)

from .conftest import RATE, REQUIRE_PORTAUDIO, frames_of, ramp, require_portaudio, stream

ASOUNDRC = 'pcm.!default {type plug slave.pcm "nullsink"}\npcm.nullsink {type null}\n'
GUARD_S = 10.0
"""Bounds an await that a bug could leave hanging; never reached when the code is right."""
LONG_S = 30
"""Seconds of audio that a null device paced at ``PACED_SPEEDUP`` takes 0.3 s to drain: long
enough to find the stream in the middle of it after a short sleep."""
PACED_SPEEDUP = 100
"""How much faster than real time ``paced_device`` plays (the bare null device drained these
30 s within one 0.5 ms poll on an idle machine)."""


@pytest.fixture
def sounddevice() -> ModuleType:
    return require_portaudio()


def restart_portaudio(sd: ModuleType) -> None:
    """PortAudio (and ALSA under it) reads ``$HOME/.asoundrc`` when it initialises."""
    sd._terminate()
    sd._initialize()


@pytest.fixture
def no_device(
    sounddevice: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """PortAudio restarted with HOME set to an empty directory, and restored afterwards."""
    with monkeypatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        restart_portaudio(sounddevice)
        if sounddevice.query_devices():
            pytest.skip("this machine has an audio device even without an .asoundrc")
        yield
    restart_portaudio(sounddevice)


@pytest.fixture
def null_device(
    sounddevice: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The ALSA null PCM as PortAudio's default output."""
    (tmp_path / ".asoundrc").write_text(ASOUNDRC)
    with monkeypatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        restart_portaudio(sounddevice)
        yield
    restart_portaudio(sounddevice)


@pytest.fixture
def paced_device(
    null_device: None, sounddevice: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The null device paced like a sound card, ``PACED_SPEEDUP`` times faster than real
    time: PortAudio's callback thread sleeps after each block for that block's share."""
    real = sounddevice.OutputStream

    def paced(*args: Any, callback: Callable[..., None], **kwargs: Any) -> Any:
        rate = kwargs["samplerate"]

        def block(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            callback(outdata, frames, time_info, status)
            time.sleep(frames / rate / PACED_SPEEDUP)

        return real(*args, callback=block, **kwargs)

    monkeypatch.setattr(sounddevice, "OutputStream", paced)


@pytest.fixture
def opened_streams(sounddevice: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every real PortAudio stream a sink opens in the test, recorded as it is made."""
    streams: list[Any] = []
    real = sounddevice.OutputStream

    def recording(*args: Any, **kwargs: Any) -> Any:
        stream = real(*args, **kwargs)
        streams.append(stream)
        return stream

    monkeypatch.setattr(sounddevice, "OutputStream", recording)
    return streams


class Heard:
    """Collects what the sink handed to the device, through its ``on_audio`` hook."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.on_thread: set[int] = set()

    def __call__(self, audio: np.ndarray) -> None:
        self.on_thread.add(threading.get_ident())
        self.chunks.append(audio.copy())

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


def whole(signal: np.ndarray) -> AudioFrame:
    return AudioFrame(signal, RATE, 1, signal.size)


async def until(condition: Callable[[], object]) -> None:
    """Poll ``condition()`` between short sleeps (a bare ``sleep(0)`` spin would keep the
    GIL from the device thread); the deadline only guards against a hang."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.0005)


def hold_loop_until(condition: Callable[[], bool]) -> None:
    """Block the event loop's thread (as busy work would) while the device thread runs."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


@given(
    latency=st.integers(0, 400),
    blocks=st.lists(
        st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        max_size=60,
    ),
)
def test_played_counts_audio_at_least_latency_frames_behind_the_write_head(
    latency: int, blocks: list[tuple[int, int]]
) -> None:
    counter = PlayedCounter(latency)
    audio_before = [0]  # audio_before[i]: audio samples among the stream's first i frames
    for frames, audio in blocks:
        counter.add_block(frames, audio)
        last = audio_before[-1]
        audio_before += [last + i for i in range(1, audio + 1)] + [last + audio] * (frames - audio)
        written_frames = len(audio_before) - 1
        assert counter.played == audio_before[max(written_frames - latency, 0)]
        assert counter.delivered == last + audio


@pytest.mark.realtime
def test_no_output_device_says_so_and_points_to_the_wav_sink(no_device: None) -> None:
    assert not output_device_available()
    with pytest.raises(NoOutputDeviceError, match=r"no audio output device.*sinks\.wav\.WavSink"):
        DeviceSink()


def test_without_sounddevice_the_error_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert not output_device_available()
    with pytest.raises(NoOutputDeviceError, match=r"pip install 'agent-playout\[device\]'"):
        DeviceSink()


@pytest.mark.usefixtures("without_portaudio")
def test_without_portaudio_the_sink_says_no_device_and_gives_the_apt_line() -> None:
    assert not output_device_available()
    with pytest.raises(NoOutputDeviceError, match=r"PortAudio.*apt-get install libportaudio2"):
        DeviceSink()


@pytest.mark.usefixtures("without_portaudio")
def test_tests_needing_portaudio_skip_with_the_install_line_unless_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_PORTAUDIO, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install libportaudio2"):
        require_portaudio()
    monkeypatch.setenv(REQUIRE_PORTAUDIO, "1")
    with pytest.raises(pytest.fail.Exception, match=r"AGENT_PLAYOUT_REQUIRE_PORTAUDIO=1 but"):
        require_portaudio()


@pytest.mark.realtime
async def test_played_is_what_the_callback_delivered_minus_the_latency(paced_device: None) -> None:
    total = LONG_S * RATE
    async with DeviceSink(queue_size_ms=LONG_S * 1000) as sink:
        latency = sink.latency_samples
        assert latency > 0
        sink.pause()
        await sink.capture_frame(whole(ramp(total)))
        sink.resume()
        seen = [sink.counts()]

        def snapshot() -> bool:
            seen.append(sink.counts())
            return seen[-1].delivered == total

        await until(snapshot)
        # While the queue still holds audio, every block since resume was all audio: the
        # silence before it (frames - delivered) stays what it was at resume.
        streaming = [c for c in seen if c.written > c.delivered]
        assert len({c.frames - c.delivered for c in streaming}) == 1
        assert any(c.delivered > latency for c in streaming)
        for counts in streaming:
            assert counts.played == max(counts.delivered - latency, 0)
        assert [c.played for c in seen] == sorted(c.played for c in seen)


@pytest.mark.realtime
async def test_completion_plays_every_sample_in_order_exactly(null_device: None) -> None:
    heard = Heard()
    signal = ramp(RATE // 2)
    async with DeviceSink(queue_size_ms=100, on_audio=heard) as sink:
        for frame in frames_of(signal, 480):
            await sink.capture_frame(frame)
        # All played while the loop was held: the audio must still reach on_audio in time.
        hold_loop_until(lambda: sink.samples_played == signal.size)
        await sink.wait_for_playout()
        assert np.array_equal(heard.audio(), signal)
        assert sink.samples_played == sink.samples_written == signal.size
        counts = sink.counts()
        assert counts.delivered == counts.played == counts.written == signal.size
        assert sink.samples_queued == 0
    assert np.array_equal(heard.audio(), signal)


@pytest.mark.realtime
async def test_on_audio_follows_delivery_on_the_loop_thread_without_waiters(
    null_device: None,
) -> None:
    heard = Heard()
    signal = ramp(RATE)
    async with DeviceSink(queue_size_ms=1000, on_audio=heard) as sink:
        await sink.capture_frame(whole(signal))
        await until(lambda: heard.audio().size == signal.size)
    assert np.array_equal(heard.audio(), signal)
    assert heard.on_thread == {threading.get_ident()}


@pytest.mark.realtime
async def test_interrupt_through_the_engine_reports_what_the_callback_delivered(
    null_device: None,
) -> None:
    heard = Heard()
    signal = ramp(3 * RATE)
    async with DeviceSink(on_audio=heard) as sink:
        playout = AgentPlayout(audio_source=sink)
        for cut in (1200, 6000, 30000):
            before = heard.audio().size
            handle = playout.play(
                item_id=f"cut_{cut}",
                content_index=0,
                transcription_fwd=None,
                text_stream=stream([]),
                audio_stream=stream(frames_of(signal, 480), delay=0.002),
            )
            await until(lambda: handle.pushed_samples >= cut)  # noqa: B023
            handle.interrupt()
            await asyncio.wait_for(handle.wait_for_playout(), GUARD_S)
            await asyncio.wait_for(sink.wait_for_playout(), GUARD_S)
            played = handle.played_samples
            item = heard.audio()[before:]
            assert handle.interrupted
            assert 0 < played < signal.size
            assert item.size == played
            # All but the fade (at most 5 ms) is the signal itself; the fade never amplifies.
            assert np.array_equal(item[:-120], signal[: played - 120])
            assert np.all(np.abs(item[-120:]) <= signal[played - 120 : played])
        await playout.aclose()


@pytest.mark.realtime
async def test_pause_freezes_the_count_and_resume_plays_the_rest(paced_device: None) -> None:
    heard = Heard()
    signal = ramp(LONG_S * RATE)
    async with DeviceSink(queue_size_ms=LONG_S * 1000, on_audio=heard) as sink:
        await sink.capture_frame(whole(signal))
        await until(lambda: sink.counts().delivered > 0)
        sink.pause()
        await until(lambda: (c := sink.counts()).played == c.delivered)
        frozen = sink.counts()
        assert 0 < frozen.played < signal.size
        await until(lambda: sink.counts().frames > frozen.frames + 10 * sink.latency_samples)
        later = sink.counts()
        assert (later.delivered, later.played, later.written) == (
            frozen.delivered,
            frozen.played,
            frozen.written,
        )
        assert sink.samples_queued == signal.size - frozen.played
        sink.resume()
        await asyncio.wait_for(sink.wait_for_playout(), GUARD_S)
        assert sink.samples_played == signal.size
    assert np.array_equal(heard.audio(), signal)


async def blocks_pass(sink: DeviceSink) -> None:
    """Wait until the callback has handed the device a few more blocks."""
    frames = sink.counts().frames
    await until(lambda: sink.counts().frames > frames + 10 * max(sink.latency_samples, 256))


async def run_dry(sink: DeviceSink) -> None:
    """Play a short frame and wait until the sink, still expecting more, has run dry."""
    await sink.capture_frame(whole(ramp(2400)))
    await until(lambda: sink.underrun_samples > 0)


@pytest.mark.realtime
async def test_running_dry_while_audio_is_expected_counts_one_underrun_per_gap(
    null_device: None,
) -> None:
    async with DeviceSink(queue_size_ms=1000) as sink:
        await blocks_pass(sink)
        assert (sink.underruns, sink.underrun_samples) == (0, 0)  # idle before any audio
        await run_dry(sink)
        await blocks_pass(sink)
        assert sink.underruns == 1
        await sink.capture_frame(whole(ramp(2400)))
        await until(lambda: sink.underruns == 2)
        await asyncio.wait_for(sink.wait_for_playout(), GUARD_S)
        silence = sink.underrun_samples
        await blocks_pass(sink)  # no more audio is expected: this silence is no underrun
        assert (sink.underruns, sink.underrun_samples) == (2, silence)
        assert sink.underrun_ns == silence * 1_000_000_000 // RATE


async def stop_while_dry(sink: DeviceSink, stop: Callable[[], None]) -> int:
    """Run ``sink`` dry, then ``stop`` it: from then on no silence counts as an underrun.
    Returns the silence counted, in samples."""
    await run_dry(sink)
    stop()
    held = sink.underrun_samples
    await blocks_pass(sink)
    assert (sink.underruns, sink.underrun_samples) == (1, held)
    return held


@pytest.mark.realtime
async def test_a_pause_while_dry_adds_no_underrun_time_and_resume_continues_the_same_one(
    null_device: None,
) -> None:
    async with DeviceSink(queue_size_ms=1000) as sink:
        held = await stop_while_dry(sink, sink.pause)
        sink.resume()
        await until(lambda: sink.underrun_samples > held)
        assert sink.underruns == 1


@pytest.mark.realtime
async def test_a_clear_while_dry_ends_the_underrun_and_keeps_it_counted(
    null_device: None,
) -> None:
    async with DeviceSink(queue_size_ms=1000) as sink:
        await stop_while_dry(sink, sink.clear_queue)
        await sink.capture_frame(whole(ramp(2400)))
        await until(lambda: sink.underruns == 2)


@pytest.mark.realtime
async def test_clear_keeps_a_falling_fade_that_plays_and_counts(paced_device: None) -> None:
    heard = Heard()
    loud = np.full(LONG_S * RATE, 20000, np.int16)
    async with DeviceSink(queue_size_ms=LONG_S * 1000, fade_ms=5, on_audio=heard) as sink:
        await sink.capture_frame(whole(loud))
        await until(lambda: sink.counts().delivered > 0)
        sink.clear_queue()
        written = sink.samples_written
        await asyncio.wait_for(sink.wait_for_playout(), GUARD_S)
        assert sink.samples_played == written
    audio = heard.audio().astype(int)
    assert audio.size == written
    assert np.all(audio[:-120] == 20000)
    tail = audio[-120:]
    assert np.all(np.diff(tail) <= 0)
    assert tail[0] < 20000
    assert tail[-1] == 0


@pytest.mark.realtime
async def test_a_capture_waiting_at_clear_returns_and_only_the_fade_plays(
    null_device: None,
) -> None:
    heard = Heard()
    async with DeviceSink(queue_size_ms=0, on_audio=heard) as sink:
        sink.pause()
        waiting = asyncio.create_task(sink.capture_frame(whole(ramp(2400))))
        await until(lambda: sink.samples_written == 2400)
        assert not waiting.done()
        sink.clear_queue()
        await asyncio.wait_for(waiting, GUARD_S)
        assert sink.samples_written == 120
        sink.resume()
        await asyncio.wait_for(sink.wait_for_playout(), GUARD_S)
        assert sink.samples_played == 120
    assert heard.audio().size == 120


@pytest.mark.realtime
async def test_close_releases_the_stream_and_refuses_more_audio(
    null_device: None, opened_streams: list[Any]
) -> None:
    sink = DeviceSink(queue_size_ms=0)
    [stream] = opened_streams
    sink.pause()
    waiting = asyncio.create_task(sink.capture_frame(whole(ramp(2400))))
    await until(lambda: sink.samples_written == 2400)
    async with sink:
        pass
    await asyncio.wait_for(waiting, GUARD_S)
    assert stream.closed  # the PortAudio stream itself is released
    assert sink.samples_written == sink.samples_played == 0
    with pytest.raises(PlayoutClosedError):
        await sink.capture_frame(whole(ramp(480)))


@pytest.mark.realtime
async def test_a_stream_that_stops_by_itself_fails_the_waiters(
    null_device: None, opened_streams: list[Any]
) -> None:
    async with DeviceSink(queue_size_ms=0) as sink:
        [stream] = opened_streams
        sink.pause()
        waiting = asyncio.create_task(sink.capture_frame(whole(ramp(2400))))
        await until(lambda: sink.samples_written == 2400)
        await asyncio.to_thread(stream.abort)
        with pytest.raises(PlayoutError, match="stream stopped"):
            await asyncio.wait_for(waiting, GUARD_S)
        with pytest.raises(PlayoutError, match="stream stopped"):
            await sink.capture_frame(whole(ramp(480)))
        assert sink.samples_written == sink.samples_played


@pytest.mark.realtime
def test_an_output_device_is_reported_available(null_device: None) -> None:
    assert output_device_available()
