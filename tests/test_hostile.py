"""The engine under hostile use of its public API: every handle finishes, nothing lies."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from agent_playout import (
    CLEANUP_TIMEOUT_S,
    AgentPlayout,
    AudioByteStream,
    AudioFrame,
    NullSink,
    PacedSink,
    PlayoutError,
    PlayoutHandle,
    PlayoutStateError,
    TimedText,
    TranscriptForwarder,
    TranscriptSegment,
    VirtualClock,
    truncation_for,
)
from agent_playout.core.units import NS_PER_SECOND
from agent_playout.engine.captions import CAPTION_BURST, CAPTION_PACE_NS

from .conftest import RATE, SlowClosingForwarder, frames_of, ramp, stream

TEXT = "one two three four five six seven eight nine ten"


class Listener:
    """Plays the part of LiveKit 0.12's MultimodalAgent: it keeps the handle it last started
    and, on ``playout_stopped``, commits that handle's heard text."""

    def __init__(self, playout: AgentPlayout) -> None:
        self.playout = playout
        self.playing: PlayoutHandle | None = None
        self.committed: list[tuple[str, str, bool, int]] = []
        self.current_at_stop: list[PlayoutHandle | None] = []
        playout.on("playout_stopped", self.stopped)

    def stopped(self, interrupted: bool) -> None:
        assert self.playing is not None
        handle = self.playing
        self.committed.append(
            (handle.item_id, handle.played_text, interrupted, handle.audio_samples)
        )
        self.current_at_stop.append(self.playout.current)

    def play(self, item_id: str, seconds: float, **kwargs: Any) -> PlayoutHandle:
        self.playing = play(self.playout, item_id, seconds, **kwargs)
        return self.playing


def play(
    playout: AgentPlayout,
    item_id: str,
    seconds: float,
    *,
    forwarder: Any = None,
    text: Any = None,
    audio: Any = None,
) -> PlayoutHandle:
    words = re.findall(r"\S+\s*", TEXT)
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=TranscriptForwarder() if forwarder is None else forwarder,
        text_stream=stream(words) if text is None else text,
        audio_stream=stream(frames_of(ramp(round(seconds * RATE)), 480))
        if audio is None
        else audio,
    )


def paced(clock: VirtualClock, **options: Any) -> tuple[AgentPlayout, PacedSink, list[np.ndarray]]:
    heard: list[np.ndarray] = []
    sink = PacedSink(RATE, 1, clock=clock, on_audio=heard.append, **options)
    return AgentPlayout(audio_source=sink), sink, heard


def total(heard: list[np.ndarray]) -> int:
    return sum(chunk.size for chunk in heard)


async def collect(forwarder: TranscriptForwarder) -> list[TranscriptSegment]:
    return [segment async for segment in forwarder.segments()]


# 1. Event order MultimodalAgent relies on


async def test_an_interrupted_item_is_stopped_before_interrupt_returns_with_its_final_text(
    clock: VirtualClock,
) -> None:
    playout, sink, heard = paced(clock)
    agent = Listener(playout)
    handle = agent.play("it_1", 3.0)
    await clock.advance(1.37)
    handle.interrupt()
    assert agent.committed == [("it_1", handle.played_text, True, handle.audio_samples)]
    assert agent.current_at_stop == [handle]
    committed_text = agent.committed[0][1]
    await clock.run(handle.wait_for_playout())
    await clock.run(sink.wait_for_playout())
    assert handle.played_text == committed_text != ""
    assert handle.audio_samples == total(heard) == agent.committed[0][3]


async def test_a_superseded_item_is_stopped_before_play_returns_the_new_handle(
    clock: VirtualClock,
) -> None:
    playout, _sink, heard = paced(clock)
    agent = Listener(playout)
    first = agent.play("it_1", 3.0)
    await clock.advance(1.0)
    second = agent.play("it_2", 0.5)
    assert [entry[0] for entry in agent.committed] == ["it_1"]
    assert agent.current_at_stop == [first]
    assert playout.current is second
    await clock.run(second.wait_for_playout())
    assert first.done()
    assert first.interrupted
    assert agent.committed[0] == ("it_1", first.played_text, True, first.audio_samples)
    assert agent.committed[0][1] != ""
    assert agent.committed[1] == ("it_2", TEXT, False, 12000)
    assert total(heard) == first.audio_samples + second.audio_samples


async def test_a_completed_item_is_stopped_once_its_forwarder_has_closed(
    clock: VirtualClock,
) -> None:
    playout, _sink, _heard = paced(clock)
    agent = Listener(playout)
    forwarder = SlowClosingForwarder()
    handle = agent.play("it_1", 0.5, forwarder=forwarder)
    await clock.advance(0.6)
    assert handle.state.value == "finished"
    assert agent.committed == []
    forwarder.release.set()
    await clock.run(handle.wait_for_playout())
    assert agent.committed == [("it_1", TEXT, False, 12000)]


async def test_a_play_while_a_completed_item_winds_down_stops_that_item_first(
    clock: VirtualClock,
) -> None:
    playout, _sink, _heard = paced(clock)
    agent = Listener(playout)
    forwarder = SlowClosingForwarder()
    first = agent.play("it_1", 0.5, forwarder=forwarder)
    await clock.advance(0.6)
    second = agent.play("it_2", 0.5)
    assert agent.committed == [("it_1", "", False, 12000)]
    assert agent.current_at_stop == [first]
    assert not first.interrupted
    forwarder.release.set()
    await clock.run(second.wait_for_playout())
    assert [entry[0] for entry in agent.committed] == ["it_1", "it_2"]


async def test_the_forwarder_holds_the_frozen_position_when_the_stop_is_emitted(
    clock: VirtualClock,
) -> None:
    """A cut whose 5 ms fade crosses into the next word: that word was heard, and the
    forwarder says so already in the ``playout_stopped`` handler."""
    playout, _, _ = paced(clock, fade_ms=5)
    words = [TimedText("one ", start=0.0, end=0.5), TimedText("two ", start=0.5, end=1.0)]
    forwarder = TranscriptForwarder()
    seen: list[str] = []
    playout.on("playout_stopped", lambda interrupted: seen.append(forwarder.played_text))
    handle = play(playout, "it_1", 1.0, forwarder=forwarder, text=stream(words))
    await clock.advance(0.498)
    handle.interrupt()
    assert handle.audio_samples == round(0.498 * RATE) + 120
    assert seen == ["one two "]


# 2. Listener errors


class Boom(BaseException):
    """A BaseException that is not an Exception, as a listener might raise."""


async def test_a_stopped_listener_raising_a_base_exception_cannot_wedge_the_handle(
    clock: VirtualClock,
) -> None:
    playout, sink, heard = paced(clock)

    def broken(interrupted: bool) -> None:
        raise Boom

    playout.on("playout_stopped", broken)
    completed = play(playout, "it_1", 0.2)
    await clock.run(completed.wait_for_playout())
    assert completed.audio_samples == 4800
    assert not completed.interrupted
    cut = play(playout, "it_2", 1.0)
    await clock.advance(0.1)
    with pytest.raises(Boom):
        cut.interrupt()
    await clock.run(cut.wait_for_playout())
    assert cut.interrupted
    playout.off("playout_stopped", broken)
    last = play(playout, "it_3", 0.2)
    await clock.run(last.wait_for_playout())
    await clock.run(sink.wait_for_playout())
    assert last.audio_samples == 4800
    assert total(heard) == 4800 + cut.audio_samples + 4800


async def test_a_stopped_listener_raising_cancelled_error_cannot_wedge_the_handle(
    clock: VirtualClock,
) -> None:
    playout, _, _ = paced(clock)

    def cancels(interrupted: bool) -> None:
        raise asyncio.CancelledError

    playout.on("playout_stopped", cancels)
    handle = play(playout, "it_1", 0.2)
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 4800
    playout.off("playout_stopped", cancels)
    second = play(playout, "it_2", 0.2)
    await clock.run(second.wait_for_playout())
    assert second.audio_samples == 4800


# 3. Wedged handles


async def _cancelled_upstream(frames: list[AudioFrame]) -> AsyncIterator[AudioFrame]:
    for frame in frames:
        await asyncio.sleep(0)
        yield frame
    raise asyncio.CancelledError


async def test_an_audio_stream_raising_cancelled_error_ends_the_item_with_an_error(
    clock: VirtualClock,
) -> None:
    playout, _, _ = paced(clock, fade_ms=0)
    handle = play(playout, "it_1", 0.0, audio=_cancelled_upstream(frames_of(ramp(4800), 480)))
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, PlayoutError)
    assert "audio_stream of item 'it_1' raised CancelledError" in str(handle.error)
    assert handle.interrupted
    second = play(playout, "it_2", 0.2)
    await clock.run(second.wait_for_playout())
    assert second.audio_samples == 4800


async def test_a_started_listener_that_cancels_its_task_changes_nothing(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    playout, _sink, heard = paced(clock)

    def cancel_own_task() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()

    playout.on("playout_started", cancel_own_task)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = play(playout, "it_1", 1.0)
        await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert not handle.interrupted
    assert handle.audio_samples == total(heard) == 24000
    assert np.array_equal(np.concatenate(heard), ramp(24000))
    assert [record.item_id for record in caplog.records] == ["it_1"]  # type: ignore[attr-defined]


async def test_a_sink_failing_while_the_item_stops_still_finishes_the_handle(
    clock: VirtualClock,
) -> None:
    """An output that fails once 0.3 s has played (a closed file, a full disk)."""
    played: list[np.ndarray] = []

    def write(samples: np.ndarray) -> None:
        if sum(chunk.size for chunk in played) >= 7200:
            raise OSError("disk full")
        played.append(samples)

    sink = PacedSink(RATE, 1, clock=clock, on_audio=write)
    playout = AgentPlayout(audio_source=sink)
    handle = play(playout, "it_1", 2.0)
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, OSError)
    assert handle.interrupted
    assert handle.audio_samples == handle.played_samples == sink.samples_written
    assert handle.underruns == 0
    handle.interrupt()
    second = play(playout, "it_2", 0.2)
    await clock.run(second.wait_for_playout())
    assert second.done()


@pytest.mark.parametrize(
    "case", ["before_forward raises", "TimedText at 1e305 s", "push_text raises"]
)
async def test_a_caption_error_stops_the_captions_not_the_voice(
    clock: VirtualClock, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    playout, _, heard = paced(clock)
    text: Any = stream(["one ", "two"])
    if case == "before_forward raises":

        def before_forward(text: str) -> str:
            raise RuntimeError("rewrite broke")

        forwarder = TranscriptForwarder(before_forward=before_forward)
    elif case == "TimedText at 1e305 s":
        forwarder = TranscriptForwarder()

        async def timed() -> AsyncIterator[TimedText]:
            yield TimedText("one ", start=0.0, end=0.1)
            yield TimedText("two", start=1e305, end=1e306)  # refused: past a day

        text = timed()
    else:
        forwarder = TranscriptForwarder()

        def refuse(text: object) -> None:
            raise RuntimeError("push broke")

        forwarder.push_text = refuse  # type: ignore[method-assign]
    segments = asyncio.create_task(collect(forwarder))
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = play(playout, "it_1", 1.0, forwarder=forwarder, text=text)
        await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert not handle.interrupted
    assert handle.text_error is not None
    assert handle.audio_samples == total(heard) == 24000
    assert forwarder.closed
    await asyncio.wait_for(segments, 1)
    assert [record.item_id for record in caplog.records] == ["it_1"]  # type: ignore[attr-defined]


class CountingForwarder(TranscriptForwarder):
    """Counts the caption driver's wakes: each one reports the position once."""

    def __init__(self) -> None:
        super().__init__()
        self.reports = 0

    def set_playout_position(self, played_samples: int) -> int | None:
        self.reports += 1
        return super().set_playout_position(played_samples)


async def test_text_denser_than_the_audio_wakes_the_captions_at_their_pace_not_per_sample(
    clock: VirtualClock,
) -> None:
    playout, _sink, _heard = paced(clock)
    forwarder = CountingForwarder()
    dense = "a " * 20_000  # more words than one second has milliseconds
    handle = play(playout, "it_dense", 1.0, forwarder=forwarder, text=stream([dense]))
    await clock.advance(0.5)
    half = forwarder.reports
    # one report before the first frame, one at it, a burst, then one per pace
    assert 0 < half <= 2 + CAPTION_BURST + 500_000_000 // CAPTION_PACE_NS
    heard_at_half = handle.played_text
    assert 0 < len(heard_at_half) < len(dense)
    await clock.run(handle.wait_for_playout())
    assert handle.played_text.strip() == dense.strip()


async def test_a_48khz_item_of_odd_length_into_a_24khz_sink_keeps_its_captions(
    clock: VirtualClock,
) -> None:
    playout, sink, heard = paced(clock)
    forwarder = TranscriptForwarder()
    segments = asyncio.create_task(collect(forwarder))
    signal = ramp(48001)
    frames = [
        AudioFrame(signal[i : i + 960], 48000, 1, signal[i : i + 960].size)
        for i in range(0, 48001, 960)
    ]
    handle = play(playout, "it_48k", 0.0, forwarder=forwarder, audio=stream(frames))
    await clock.run(handle.wait_for_playout())
    assert handle.text_error is None
    assert handle.error is None
    assert handle.played_text == TEXT
    assert handle.input_played_samples == 48001
    assert handle.audio_samples == total(heard) == sink.samples_played
    await asyncio.wait_for(segments, 1)
    assert [segment.text for segment in segments.result() if segment.final] == [TEXT]


async def _hangs_in_cleanup(frames: list[AudioFrame]) -> AsyncIterator[AudioFrame]:
    try:
        for frame in frames:
            await asyncio.sleep(0)
            yield frame
        await asyncio.Event().wait()
    finally:
        await asyncio.Event().wait()


class HangingForwarder(TranscriptForwarder):
    async def aclose(self) -> None:
        await super().aclose()
        await asyncio.Event().wait()


@pytest.mark.parametrize("where", ["audio stream", "text stream", "forwarder"])
async def test_user_code_that_never_ends_its_cleanup_cannot_wedge_the_item_or_the_next(
    clock: VirtualClock, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    playout, _sink, heard = paced(clock, fade_ms=0)
    frames = frames_of(ramp(24000), 480)
    kwargs: dict[str, Any] = {}
    if where == "audio stream":
        kwargs["audio"] = _hangs_in_cleanup(frames)
    elif where == "text stream":
        kwargs["text"] = _hangs_in_cleanup([])  # type: ignore[arg-type]
    else:
        kwargs["forwarder"] = HangingForwarder()
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        first = play(playout, "it_1", 1.0, **kwargs)
        await clock.advance(0.5)
        first.interrupt()
        stopped_ns = clock.now_ns()
        second = play(playout, "it_2", 0.5)
        await clock.run(first.wait_for_playout())
        assert clock.now_ns() - stopped_ns == round(CLEANUP_TIMEOUT_S * NS_PER_SECOND)
        await clock.run(second.wait_for_playout())
    assert first.audio_samples == 12000
    assert second.audio_samples == 12000
    assert total(heard) == 24000
    assert [record.item_id for record in caplog.records] == ["it_1"]  # type: ignore[attr-defined]
    assert "did not end within" in caplog.records[0].getMessage()


# 4. Audio after interrupt()


async def test_interrupt_after_a_rejected_frame_still_clears_what_is_queued(
    clock: VirtualClock,
) -> None:
    playout, _sink, heard = paced(clock, fade_ms=0, queue_size_ms=1000)
    frames: list[Any] = [*frames_of(ramp(48000), 480), b"not a frame"]
    handle = play(playout, "it_1", 0.0, audio=stream(frames))
    await clock.advance(1.1)
    assert isinstance(handle.error, TypeError)
    assert handle.done()
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    await clock.advance(3.0)
    assert handle.audio_samples == total(heard) == 26400


# 5. A bad text token


@pytest.mark.parametrize("token", [None, b"bytes", 42])
async def test_a_bad_text_token_stops_the_text_not_the_voice(
    clock: VirtualClock, token: object, caplog: pytest.LogCaptureFixture
) -> None:
    playout, _sink, heard = paced(clock)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = playout.play(
            item_id="it_text",
            content_index=0,
            transcription_fwd=None,
            text_stream=stream(["hello ", token]),
            audio_stream=stream(frames_of(ramp(24000), 480)),
        )
        await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert not handle.interrupted
    assert isinstance(handle.text_error, TypeError)
    assert f"of item 'it_text' must yield str or TimedText, got {type(token).__name__}" in str(
        handle.text_error
    )
    assert handle.audio_samples == total(heard) == 24000
    assert [record.item_id for record in caplog.records] == ["it_text"]  # type: ignore[attr-defined]


# 6. Frame headers


def rtc_frame(samples: np.ndarray, **header: Any) -> Any:
    rtc = pytest.importorskip("livekit.rtc", reason="needs the [livekit] extra (in [dev])")
    fields = {"sample_rate": RATE, "num_channels": 1, "samples_per_channel": samples.size}
    fields.update(header)
    return rtc.AudioFrame(samples.tobytes(), **fields)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"num_channels": 0}, "num_channels must be a positive int, got 0"),
        ({"samples_per_channel": 0}, "samples_per_channel is 0 but its data holds 24000"),
        ({"samples_per_channel": -5}, "samples_per_channel must be an int >= 0, got -5"),
        ({"sample_rate": 24000.0}, "sample_rate must be a positive int, got 24000.0"),
        ({"sample_rate": True}, "sample_rate must be a positive int, got True"),
        ({"sample_rate": 16000}, "changed format mid-stream, from 24000 Hz x1 to 16000 Hz x1"),
    ],
)
async def test_a_bad_rtc_frame_header_is_named_and_what_was_queued_still_plays(
    clock: VirtualClock, header: dict[str, Any], message: str
) -> None:
    playout, sink, heard = paced(clock)
    good = [rtc_frame(ramp(480, start)) for start in range(0, 12000, 480)]
    bad = rtc_frame(ramp(24000, 12000), **header)
    handle = play(playout, "it_bad", 0.0, audio=stream([*good, bad, *good]))
    await clock.run(handle.wait_for_playout())
    await clock.run(sink.wait_for_playout())
    assert isinstance(handle.error, ValueError)
    assert message in str(handle.error)
    assert "'it_bad'" in str(handle.error)
    assert handle.interrupted
    assert handle.audio_samples == total(heard) == 12000
    assert np.array_equal(np.concatenate(heard), ramp(12000))
    assert isinstance(handle.audio_samples, int)


async def test_an_items_first_rtc_frame_with_no_rate_or_channels_is_named(
    clock: VirtualClock,
) -> None:
    playout, _, heard = paced(clock)
    first = play(playout, "it_first", 0.0, audio=stream([rtc_frame(ramp(2400))]))
    await clock.run(first.wait_for_playout())
    assert first.audio_samples == total(heard) == 2400
    empty = rtc_frame(np.zeros(0, np.int16), sample_rate=0, num_channels=0, samples_per_channel=5)
    handle = play(playout, "it_bad", 0.0, audio=stream([empty]))
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, ValueError)
    assert "sample_rate must be a positive int, got 0" in str(handle.error)
    assert "'it_bad'" in str(handle.error)
    assert total(heard) == 2400


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_a_byte_stream_refuses_a_typed_buffer_that_is_not_int16(dtype: Any) -> None:
    byte_stream = AudioByteStream(RATE, 1, 480)
    with pytest.raises(TypeError, match="int16 PCM, got a memoryview of"):
        byte_stream.write(memoryview(np.zeros(480, dtype=dtype)))
    with pytest.raises(TypeError, match="int16 PCM, got a memoryview of"):
        AudioFrame(memoryview(np.zeros(480, dtype=dtype)), RATE, 1, 480)
    assert len(byte_stream.write(memoryview(np.zeros(480, dtype=np.int16)))) == 1


# 7. A completed item stays completed


async def test_an_interrupt_right_after_completion_leaves_the_item_completed(
    clock: VirtualClock,
) -> None:
    playout, sink, heard = paced(clock)
    stops: list[bool] = []
    playout.on("playout_stopped", stops.append)
    handle = play(playout, "it_1", 1.0)
    await clock.advance(0.9)

    async def interrupt_once_drained() -> None:
        await sink.wait_for_playout()
        handle.interrupt()

    late = asyncio.create_task(interrupt_once_drained())
    await clock.run(handle.wait_for_playout())
    await late
    assert not handle.interrupted
    assert stops == [False]
    assert handle.audio_samples == total(heard) == 24000
    completed = not handle.interrupted
    assert (
        truncation_for(
            item_id="it_1",
            content_index=0,
            heard_samples=handle.audio_samples,
            sent_samples=24000,
            completed=completed,
        )
        is None
    )


# 9. Smaller ones


async def test_a_forwarder_closed_by_an_earlier_item_is_refused_by_play(
    clock: VirtualClock,
) -> None:
    playout, _, _ = paced(clock)
    forwarder = TranscriptForwarder()
    first = play(playout, "it_1", 0.2, forwarder=forwarder)
    await clock.run(first.wait_for_playout())
    current = play(playout, "it_2", 0.2)
    with pytest.raises(ValueError, match="transcription_fwd of item 'it_3' was closed"):
        play(playout, "it_3", 0.2, forwarder=forwarder)
    await clock.run(current.wait_for_playout())
    assert current.audio_samples == 4800
    assert not current.interrupted


async def test_two_playouts_on_one_sink_are_refused_until_the_first_is_closed(
    clock: VirtualClock,
) -> None:
    sink = NullSink(clock=clock)
    first = AgentPlayout(audio_source=sink)
    with pytest.raises(PlayoutStateError, match="already driven by another AgentPlayout"):
        AgentPlayout(audio_source=sink)
    await first.aclose()
    second = AgentPlayout(audio_source=sink)
    handle = play(second, "it_1", 0.2)
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == sink.samples_played == 4800


async def test_two_playouts_on_one_rtc_source_are_refused_however_it_is_wrapped() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="needs the [livekit] extra (in [dev])")
    from agent_playout.sinks.livekit import LiveKitSink

    source = rtc.AudioSource(RATE, 1)
    first = AgentPlayout(audio_source=source)
    with pytest.raises(PlayoutStateError, match="AudioSource is already driven"):
        AgentPlayout(audio_source=source)
    with pytest.raises(PlayoutStateError, match="AudioSource is already driven"):
        AgentPlayout(audio_source=LiveKitSink(source))
    await first.aclose()
    wrapped = AgentPlayout(audio_source=LiveKitSink(source))
    with pytest.raises(PlayoutStateError, match="already driven"):
        AgentPlayout(audio_source=source)
    await wrapped.aclose()
    await source.aclose()


@pytest.mark.realtime
async def test_interrupt_from_another_thread_stops_the_item_on_the_loop() -> None:
    heard: list[np.ndarray] = []
    sink = PacedSink(RATE, 1, on_audio=heard.append)
    playout = AgentPlayout(audio_source=sink)
    loop_thread = threading.get_ident()
    stopped_on: list[int] = []
    playout.on("playout_stopped", lambda interrupted: stopped_on.append(threading.get_ident()))
    handle = play(playout, "it_1", 2.0)
    await asyncio.sleep(0.1)
    await asyncio.to_thread(handle.interrupt)
    await asyncio.wait_for(handle.wait_for_playout(), 1)
    await asyncio.wait_for(sink.wait_for_playout(), 1)
    assert handle.interrupted
    assert 0 < handle.audio_samples == total(heard) < 48000
    assert stopped_on == [loop_thread]

    second = play(playout, "it_2", 2.0)
    await asyncio.sleep(0.1)
    done = await asyncio.to_thread(second.interrupt_threadsafe)
    await asyncio.wait_for(asyncio.wrap_future(done), 1)
    assert second.interrupted
    frozen = second.audio_samples
    await asyncio.wait_for(second.wait_for_playout(), 1)
    assert second.audio_samples == frozen
    assert stopped_on == [loop_thread, loop_thread]
    await playout.aclose()
