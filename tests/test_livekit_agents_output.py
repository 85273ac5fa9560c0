"""``ExactAudioOutput`` driven by LiveKit Agents 1.x's own ``forward_generation``, its
``playback_position`` checked against the audio out of a ``LocalAudioTrack`` read back with
an ``rtc.AudioStream`` on the same source (no server), beside LiveKit's own room output."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from .conftest import RATE, ramp
from .livekit_agents_required import require_livekit_agents

agents = require_livekit_agents()

from livekit import rtc  # noqa: E402
from livekit.agents.types import TimedString  # noqa: E402
from livekit.agents.voice import io  # noqa: E402
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer  # noqa: E402

from agent_playout.integrations.livekit_agents import ExactAudioOutput  # noqa: E402
from agent_playout.integrations.livekit_agents import output as output_module  # noqa: E402
from agent_playout.sinks.livekit.modes import Mode  # noqa: E402

from .livekit_agents_drive import Speech, TTSFrames, heard_text, started_room_output  # noqa: E402
from .livekit_truth import (  # noqa: E402
    Listener,
    heard_as_reported,
    heard_through,
    spin_until_just_after_a_tick,
)

pytestmark = pytest.mark.realtime

runs_reported = pytest.mark.skipif(
    not hasattr(io, "PlaybackProgressedEvent"),
    reason=f"livekit-agents {agents.__version__} has no playback_progressed (1.8.9 has)",
)

QUEUE_MS = 200
TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away home."


@pytest.fixture
async def rig() -> AsyncIterator[tuple[ExactAudioOutput, Listener]]:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    listener = Listener(source)
    output = ExactAudioOutput(source=source, queue_size_ms=QUEUE_MS)
    await output.sink.ready()
    yield output, listener
    await output.aclose()
    await listener.aclose()
    await source.aclose()


def events(output: io.AudioOutput, name: str) -> list[object]:
    seen: list[object] = []
    output.on(name, seen.append)
    return seen


async def test_random_interrupts_report_the_samples_the_track_carried_and_the_words_heard(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    tap = output.transcription_tap()
    finished = events(output, "playback_finished")
    rng = random.Random(17)
    for trial in range(3):
        before = (await listener.settled()).size
        signal = ramp(round(1.5 * RATE), start=trial * 11)
        speech = Speech(output, signal, text=TEXT, text_output=tap)
        await speech.first_frame
        await asyncio.sleep(rng.uniform(0.05, 1.0))
        speech.interrupt()
        spoken = await speech.result()
        heard = (await listener.settled())[before:]
        samples = output.last_playback_samples
        assert spoken.played == "partial"
        assert round(spoken.position * RATE) == samples
        confirmed = await output.last_playback_confirmed()
        assert heard_as_reported(heard, signal, output.sink.fade_samples, samples, confirmed)
        assert spoken.transcript == heard_text(TEXT, speech.audio.yielded, samples)
        assert 0 < len(spoken.transcript) < len(TEXT)
    assert len(finished) == 3


async def test_tts_aligned_words_are_heard_by_their_own_times(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    words = TEXT.split(" ")
    # all the words in the first half of the audio, which no syllable estimate would place
    starts = [0.7 * index / len(words) for index in range(len(words))]
    timed = [
        TimedString(f"{word} ", start_time=start, end_time=start + 0.05)
        for word, start in zip(words, starts, strict=True)
    ]
    signal = ramp(round(1.5 * RATE))
    speech = Speech(output, signal, text=timed, text_output=output.transcription_tap())
    await speech.first_frame
    await asyncio.sleep(0.4)
    speech.interrupt()
    spoken = await speech.result()
    samples = output.last_playback_samples
    assert heard_through(await listener.settled(), signal, output.sink.fade_samples) is not None
    heard = [word for word, start in zip(words, starts, strict=True) if start * RATE < samples]
    assert spoken.transcript == " ".join(heard) + " "
    assert 0 < len(heard) < len(words)


async def test_the_text_of_a_speech_cut_before_its_audio_is_not_the_next_ones(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, _ = rig
    tap = output.transcription_tap()
    silent = ramp(RATE)
    unheard = Speech(
        output,
        silent,
        text="Words nobody heard.",
        text_output=tap,
        audio=TTSFrames(silent, stall_at=0, stall=5.0),  # the TTS never answers
    )
    await asyncio.sleep(0.1)
    unheard.interrupt()
    assert (await unheard.result()).played == "skipped"
    signal = ramp(RATE)
    speech = Speech(output, signal, text=TEXT, text_output=tap)
    await speech.first_frame
    await asyncio.sleep(0.5)
    speech.interrupt()
    spoken = await speech.result()
    assert spoken.transcript == heard_text(TEXT, speech.audio.yielded, output.last_playback_samples)
    assert spoken.transcript


@runs_reported
async def test_a_speech_played_out_reports_its_whole_length_and_its_runs(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    started, progressed = events(output, "playback_started"), events(output, "playback_progressed")
    signal = ramp(RATE // 2 + 123)
    spoken = await Speech(
        output, signal, text=TEXT, text_output=output.transcription_tap()
    ).result()
    assert (await listener.settled()).tolist() == signal.tolist()
    assert spoken.played == "full"
    assert output.last_playback_samples == signal.size
    assert len(started) == 1
    assert [(p.offset, round(p.duration * RATE)) for p in progressed] == [(0.0, signal.size)]


@runs_reported
async def test_a_false_interruption_pauses_and_resumes_without_losing_a_sample(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    progressed = events(output, "playback_progressed")
    signal = ramp(RATE)
    speech = Speech(output, signal)
    await speech.first_frame
    await asyncio.sleep(0.3)
    output.pause()
    await asyncio.sleep(0.2)
    output.resume()
    spoken = await speech.result()
    heard = await listener.settled()
    first, second = ((round(p.offset * RATE), round(p.duration * RATE)) for p in progressed)
    fade = output.sink.fade_samples
    assert spoken.played == "full"
    assert output.last_playback_samples == signal.size
    assert first[0] == 0
    assert second[0] == first[1]
    assert first[1] + second[1] == signal.size
    assert heard[: first[1] - fade].tolist() == signal[: first[1] - fade].tolist()
    rest = signal.size - second[0] - fade
    assert heard[-rest:].tolist() == signal[-rest:].tolist()


@runs_reported
async def test_a_stalled_tts_splits_the_runs_where_the_source_ran_dry(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    progressed = events(output, "playback_progressed")
    signal = ramp(RATE // 2)
    stall_at = 4800  # 200 ms in, the provider stalls for 400 ms
    speech = Speech(output, signal, audio=TTSFrames(signal, stall_at=stall_at, stall=0.4))
    spoken = await speech.result()
    assert (await listener.settled()).tolist() == signal.tolist()
    assert spoken.played == "full"
    runs = [(round(p.offset * RATE), round(p.duration * RATE), p.started_at) for p in progressed]
    assert [run[:2] for run in runs] == [(0, stall_at), (stall_at, signal.size - stall_at)]
    # the stall began as the first 200 ms were queued: the second run starts 0.4 s after
    # the first, once the first had ended
    assert runs[1][2] - runs[0][2] > max(0.35, stall_at / RATE)


async def test_an_interrupt_while_paused_reports_what_played_before_the_pause(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    signal = ramp(RATE)
    speech = Speech(output, signal, text=TEXT, text_output=output.transcription_tap())
    await speech.first_frame
    await asyncio.sleep(0.3)
    output.pause()
    await asyncio.sleep(0.1)
    speech.interrupt()
    spoken = await speech.result()
    output.resume()
    heard = await listener.settled()
    assert heard_through(heard, signal, output.sink.fade_samples) == (
        output.last_playback_samples,
        heard.size,
    )
    assert spoken.transcript == heard_text(TEXT, speech.audio.yielded, output.last_playback_samples)


async def test_an_interrupt_as_the_speech_starts_reports_the_few_samples_that_went_out(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    signal = ramp(RATE, start=5000)  # a fade of its first samples must not look like them
    speech = Speech(output, signal)
    speech.interrupt()  # forward_generation still lets its first frames through
    spoken = await speech.result()
    heard = await listener.settled()
    samples = round(spoken.position * RATE)
    assert heard_through(heard, signal, output.sink.fade_samples) == (samples, heard.size)
    assert samples < speech.audio.yielded < signal.size


async def test_livekit_transcript_synchronizer_keeps_working_on_top(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    captions: list[str] = []

    class Captions(io.TextOutput):
        async def capture_text(self, text: str) -> None:
            captions.append(text)

        def flush(self) -> None:
            pass

    synchronizer = TranscriptSynchronizer(
        next_in_chain_audio=output,
        next_in_chain_text=Captions(label="captions", next_in_chain=None),
    )
    try:
        signal = ramp(round(1.5 * RATE))
        speech = Speech(
            synchronizer.audio_output, signal, text=TEXT, text_output=synchronizer.text_output
        )
        await speech.first_frame
        await asyncio.sleep(0.7)
        speech.interrupt()
        spoken = await speech.result()
        heard = await listener.settled()
        confirmed = await output.last_playback_confirmed()
    finally:
        await synchronizer.aclose()
    position = round(spoken.position * RATE)
    assert heard_as_reported(heard, signal, output.sink.fade_samples, position, confirmed)
    assert spoken.transcript is not None
    assert TEXT.startswith(spoken.transcript)
    assert captions
    assert TEXT.startswith("".join(captions))


async def test_livekit_room_output_side_by_side_is_off_where_this_output_is_exact(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    room = rtc.Room()
    theirs = await started_room_output(room)
    their_listener = Listener(theirs._audio_source)
    rng = random.Random(5)
    errors: dict[str, list[int]] = {"ours": [], "theirs": []}
    try:
        for trial in range(2):
            for name, target, ears in (
                ("ours", output, listener),
                ("theirs", theirs, their_listener),
            ):
                before = (await ears.settled()).size
                signal = ramp(RATE, start=trial)
                speech = Speech(target, signal)
                await speech.first_frame
                await asyncio.sleep(rng.uniform(0.1, 0.7))
                speech.interrupt()
                spoken = await speech.result()
                heard = (await ears.settled())[before:]
                if name == "ours" and not await output.last_playback_confirmed():
                    continue  # the output said its clear ran late: not a trial to compare
                fade = output.sink.fade_samples if name == "ours" else 0
                truth = heard_through(heard, signal, fade)
                assert truth is not None
                errors[name].append(round(spoken.position * RATE) - truth[0])
    finally:
        await theirs.aclose()
        await their_listener.aclose()
    assert errors["ours"]
    assert set(errors["ours"]) == {0}
    assert all(abs(error) < RATE // 10 for error in errors["theirs"]), errors


async def test_a_frame_at_another_rate_is_refused_naming_both_and_loses_nothing(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    output, listener = rig
    wrong = rtc.AudioFrame(ramp(441).tobytes(), 44100, 1, 441)
    with pytest.raises(ValueError, match=r"44100 Hz x1; ExactAudioOutput plays 24000 Hz x1"):
        await output.capture_frame(wrong)
    nothing = await asyncio.wait_for(output.wait_for_playout(), 1)  # no segment was opened
    assert nothing.playback_position == 0
    signal = ramp(RATE // 4)
    spoken = await Speech(output, signal).result()
    assert spoken.played == "full"
    assert (await listener.settled()).tolist() == signal.tolist()


async def test_a_room_that_is_not_connected_is_named_before_any_audio_is_taken() -> None:
    room = rtc.Room()
    output = ExactAudioOutput(room)
    try:
        with pytest.raises(RuntimeError, match="room '' is not connected"):
            await output.capture_frame(rtc.AudioFrame(ramp(240).tobytes(), RATE, 1, 240))
        nothing = await asyncio.wait_for(output.wait_for_playout(), 1)  # no segment was opened
        assert nothing.playback_position == 0
    finally:
        await output.aclose()


def test_an_output_with_nowhere_to_play_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a room to publish to, or a source"):
        ExactAudioOutput()


async def speak(output: ExactAudioOutput, signal: np.ndarray) -> None:
    """Hand ``signal`` to the output in 20 ms rtc frames, as a TTS would, and end it."""
    for start in range(0, signal.size, 480):
        chunk = signal[start : start + 480]
        await output.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size))
    output.flush()


async def test_a_cut_whose_clear_the_event_loop_runs_late_is_not_confirmed(
    rig: tuple[ExactAudioOutput, Listener],
) -> None:
    """A clear put off just after a tick and then held up by a blocked loop released audio
    past ``playback_position``; the output says so instead of passing it as exact."""
    output, listener = rig
    phase = output.sink._scheduler.counter.phase_ns
    assert phase is not None
    for attempt in range(10):
        before = (await listener.settled()).size
        signal = ramp(RATE, start=attempt * 13)
        await speak(output, signal)
        await asyncio.sleep(0.2)
        spin_until_just_after_a_tick(output.sink.clock, phase)
        output.clear_buffer()
        put_off = output.sink._scheduler.mode is Mode.STOPPING
        time.sleep(0.035)  # noqa: ASYNC251 - the point: the loop is blocked
        confirmed = await output.last_playback_confirmed()
        heard = (await listener.settled())[before:]
        samples = output.last_playback_samples
        if put_off:
            break
        assert confirmed
        assert heard_through(heard, signal, output.sink.fade_samples) == (samples, heard.size)
    assert put_off, "no clear in 10 landed just after a tick"
    assert not confirmed
    assert heard_as_reported(heard, signal, output.sink.fade_samples, samples, False)
    assert heard.size >= samples + 2 * 240


async def test_a_clear_the_source_never_finishes_is_not_confirmed_after_the_bound(
    rig: tuple[ExactAudioOutput, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    output, _ = rig
    assert await output.last_playback_confirmed()  # nothing was cut yet
    monkeypatch.setattr(output_module, "CONFIRM_TIMEOUT_S", 0.05)
    never = asyncio.Event()

    async def settle_never(start: int, end: int) -> int:
        await never.wait()
        return end - start

    monkeypatch.setattr(output.sink, "settle", settle_never)
    signal = ramp(RATE // 2)
    await output.capture_frame(rtc.AudioFrame(signal.tobytes(), RATE, 1, signal.size))
    output.flush()
    await asyncio.sleep(0.1)
    output.clear_buffer()
    assert not await output.last_playback_confirmed()


async def test_closing_the_output_and_its_source_right_after_a_cut_fails_nothing(
    loop_failures: list[dict[str, object]],
) -> None:
    """An app closes the output, then its own source, at once after a barge-in whose clear
    was put off past a tick: ``aclose()`` lets that clear and its fade run first, so no
    callback fails on the closed source, and what went out is the cut and its fade."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    listener = Listener(source)
    output = ExactAudioOutput(source=source, queue_size_ms=QUEUE_MS)
    try:
        await output.sink.ready()
        phase = output.sink._scheduler.counter.phase_ns
        assert phase is not None
        signal = ramp(RATE)
        await speak(output, signal)
        await asyncio.sleep(0.1)
        spin_until_just_after_a_tick(output.sink.clock, phase)
        output.clear_buffer()
        assert output.sink._scheduler.mode is Mode.STOPPING
        await asyncio.wait_for(output.aclose(), 2)
        await source.aclose()
        await asyncio.sleep(0.1)
        assert loop_failures == []
        heard = await listener.settled()
        samples = output.last_playback_samples
        assert heard_through(heard, signal, output.sink.fade_samples) == (samples, heard.size)
    finally:
        await output.aclose()
        await listener.aclose()
        await source.aclose()
