from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    PacedSink,
    PlayoutClosedError,
    PlayoutHandle,
    TimedText,
    TranscriptForwarder,
    VirtualClock,
)
from agent_playout.core.units import NS_PER_SECOND

from .conftest import (
    RATE,
    LiveKitShapedForwarder,
    SlowClosingForwarder,
    failing_stream,
    frames_of,
    ramp,
    stream,
)


class Recorder:
    """Collects the engine's events, in order."""

    def __init__(self, playout: AgentPlayout) -> None:
        self.events: list[tuple[str, Any]] = []
        playout.on("playout_started", lambda: self.events.append(("started", None)))
        playout.on(
            "playout_stopped", lambda interrupted: self.events.append(("stopped", interrupted))
        )


def make(clock: VirtualClock, **sink_options: Any) -> tuple[AgentPlayout, PacedSink, Recorder]:
    heard: list[np.ndarray] = []
    sink = PacedSink(RATE, 1, clock=clock, on_audio=heard.append, **sink_options)
    sink.heard = heard  # type: ignore[attr-defined]
    playout = AgentPlayout(audio_source=sink)
    return playout, sink, Recorder(playout)


def finished(handle: PlayoutHandle) -> bool:
    """Whether the handle is fully finished: ``wait_for_playout()`` returns without waiting."""
    waiting = handle.wait_for_playout()
    try:
        waiting.send(None)
    except StopIteration:
        return True
    waiting.close()
    return False


def heard_audio(sink: PacedSink) -> np.ndarray:
    chunks = sink.heard  # type: ignore[attr-defined]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def play(
    playout: AgentPlayout,
    item_id: str,
    seconds: float,
    *,
    text: str = "hello there world",
    frame_ms: int = 20,
    forwarder: Any = None,
    start: int = 0,
) -> PlayoutHandle:
    signal = ramp(round(seconds * RATE), start)
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=forwarder if forwarder is not None else TranscriptForwarder(),
        text_stream=stream(re.findall(r"\S+\s*", text)),
        audio_stream=stream(frames_of(signal, RATE * frame_ms // 1000)),
    )


async def test_three_seconds_complete_as_exactly_72000_samples(clock: VirtualClock) -> None:
    playout, sink, recorder = make(clock)
    handle = play(playout, "it_1", 3.0)
    assert handle.audio_samples == 0
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 72000
    assert not handle.interrupted
    assert handle.done()
    assert clock.now_ns() == 3_000_000_000
    assert recorder.events == [("started", None), ("stopped", False)]
    assert np.array_equal(heard_audio(sink), ramp(72000))


async def test_position_is_zero_before_playing_and_tracks_the_clock_exactly(
    clock: VirtualClock,
) -> None:
    playout, _, _ = make(clock)
    handle = play(playout, "it_1", 2.0)
    assert handle.audio_samples == 0
    seen = []
    for _ in range(40):
        await clock.advance(0.0493)
        seen.append(handle.audio_samples)
        assert 0 <= handle.audio_samples <= handle.pushed_samples
    assert seen == sorted(seen)
    assert seen[9] == clock_samples(0.0493 * 10)
    await clock.run(handle.wait_for_playout())


def clock_samples(seconds: float) -> int:
    return round(seconds * NS_PER_SECOND) * RATE // NS_PER_SECOND


async def test_interrupt_reports_exactly_the_samples_the_listener_heard(
    clock: VirtualClock,
) -> None:
    for cut in (0.0, 0.0137, 0.5, 1.2345, 2.9):
        playout, sink, recorder = make(clock, fade_ms=5)
        handle = play(playout, f"cut_{cut}", 3.0)
        await clock.advance(cut)
        handle.interrupt()
        await clock.run(handle.wait_for_playout())
        await clock.run(sink.wait_for_playout())
        heard = heard_audio(sink)
        assert handle.audio_samples == heard.size
        assert handle.audio_samples == min(clock_samples(cut) + 120, 72000)
        assert recorder.events == [("started", None), ("stopped", True)]


async def test_interrupt_clears_the_sink_in_the_same_tick_and_finishes_without_time(
    clock: VirtualClock,
) -> None:
    playout, sink, _ = make(clock, fade_ms=0)
    handle = play(playout, "it_1", 3.0)
    await clock.advance(1.0)
    handle.interrupt()
    assert handle.done()
    assert handle.interrupted
    assert sink.samples_queued == 0
    before = clock.now_ns()
    await clock.settle()
    assert finished(handle)
    assert clock.now_ns() == before
    await clock.advance(1.0)
    assert heard_audio(sink).size == 24000


async def test_interrupt_then_play_starts_new_item_from_its_first_sample(
    clock: VirtualClock,
) -> None:
    playout, sink, recorder = make(clock, fade_ms=0)
    first = play(playout, "it_1", 3.0)
    await clock.advance(0.75)
    first.interrupt()
    second = play(playout, "it_2", 1.0, start=5000)
    await clock.run(second.wait_for_playout())
    assert first.audio_samples == 18000
    assert second.audio_samples == 24000
    audio = heard_audio(sink)
    assert np.array_equal(audio[18000:], ramp(24000, 5000))
    assert recorder.events == [
        ("started", None),
        ("stopped", True),
        ("started", None),
        ("stopped", False),
    ]


async def test_play_while_playing_supersedes_cleanly(clock: VirtualClock) -> None:
    playout, sink, recorder = make(clock, fade_ms=0)
    old_forwarder = TranscriptForwarder()
    old = play(playout, "old", 3.0, forwarder=old_forwarder)
    await clock.advance(0.5)
    new = play(playout, "new", 0.5, start=9000)
    assert old.interrupted
    assert old.done()
    assert sink.samples_queued == 0
    await clock.run(new.wait_for_playout())
    assert old_forwarder.closed
    assert old.audio_samples == 12000
    assert new.audio_samples == 12000
    assert not new.interrupted
    assert np.array_equal(heard_audio(sink)[12000:], ramp(12000, 9000))
    assert [name for name, _ in recorder.events] == ["started", "stopped", "started", "stopped"]
    assert recorder.events[1] == ("stopped", True)


async def test_many_rapid_supersedes_leave_one_item_playing(clock: VirtualClock) -> None:
    playout, _, recorder = make(clock)
    handles = [play(playout, f"it_{i}", 1.0) for i in range(20)]
    await clock.run(handles[-1].wait_for_playout())
    for handle in handles[:-1]:
        await handle.wait_for_playout()
        assert handle.interrupted
    assert handles[-1].audio_samples == 24000
    stops = [value for name, value in recorder.events if name == "stopped"]
    starts = [name for name, _ in recorder.events if name == "started"]
    assert len(starts) == len(stops)
    assert stops[-1] is False


async def test_a_failing_audio_stream_ends_the_item_logged_once_with_its_id(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    playout, sink, recorder = make(clock, fade_ms=0)
    frames = frames_of(ramp(24000), 480)
    audio = failing_stream(frames, RuntimeError("model stream broke"))
    text = stream(["hi"])
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = playout.play(
            item_id="it_err",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=text,
            audio_stream=audio,
        )
        await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, RuntimeError)
    assert handle.interrupted
    assert sink.samples_queued == 0
    assert recorder.events == [("started", None), ("stopped", True)]
    records = [r for r in caplog.records if "it_err" in r.getMessage()]
    assert len(records) == 1


async def test_a_failing_text_stream_stops_the_text_logged_once_and_the_audio_plays_on(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    playout, sink, recorder = make(clock, fade_ms=0)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = playout.play(
            item_id="it_err",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=failing_stream(["hi "], RuntimeError("model stream broke")),
            audio_stream=stream(frames_of(ramp(24000), 480)),
        )
        await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert isinstance(handle.text_error, RuntimeError)
    assert not handle.interrupted
    assert handle.audio_samples == heard_audio(sink).size == 24000
    assert recorder.events == [("started", None), ("stopped", False)]
    records = [r for r in caplog.records if "it_err" in r.getMessage()]
    assert len(records) == 1


async def test_a_failing_started_listener_is_logged_and_the_item_plays_on(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    playout, sink, _ = make(clock)
    stopped: list[bool] = []

    def broken() -> None:
        raise ValueError("listener broke")

    playout.on("playout_started", broken)
    playout.on("playout_stopped", stopped.append)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = play(playout, "it_1", 1.0)
        await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert handle.audio_samples == heard_audio(sink).size == 24000
    assert np.array_equal(heard_audio(sink), ramp(24000))
    assert stopped == [False]
    assert [r.item_id for r in caplog.records] == ["it_1"]  # type: ignore[attr-defined]


async def test_a_failing_stopped_listener_cannot_wedge_the_handle(clock: VirtualClock) -> None:
    playout, _, _ = make(clock)

    def broken(interrupted: bool) -> None:
        raise ValueError("listener broke")

    playout.on("playout_stopped", broken)
    handle = play(playout, "it_1", 0.2)
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 4800
    second = play(playout, "it_2", 0.2)
    await clock.run(second.wait_for_playout())
    assert second.audio_samples == 4800


class BrokenSink(NullSink):
    """A sink whose device fails after a number of captures."""

    def __init__(self, clock: VirtualClock, fail_after: int) -> None:
        super().__init__(clock=clock)
        self.captures = 0
        self.fail_after = fail_after
        self.cleared = 0

    async def capture_frame(self, frame: Any) -> None:
        self.captures += 1
        if self.captures > self.fail_after:
            raise OSError("device unplugged")
        await super().capture_frame(frame)

    def clear_queue(self) -> None:
        self.cleared += 1
        super().clear_queue()


async def test_a_failing_sink_ends_the_item_and_clears(clock: VirtualClock) -> None:
    sink = BrokenSink(clock, fail_after=3)
    playout = AgentPlayout(audio_source=sink)
    recorder = Recorder(playout)
    handle = play(playout, "it_1", 1.0)
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, OSError)
    assert sink.cleared == 1
    assert recorder.events == [("started", None), ("stopped", True)]
    assert handle.audio_samples <= 3 * 1200


async def test_events_pair_only_for_items_that_produced_audio(clock: VirtualClock) -> None:
    playout, _, recorder = make(clock)
    silent = playout.play(
        item_id="silent",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream(["no audio here"]),
        audio_stream=stream([]),
    )
    await clock.run(silent.wait_for_playout())
    assert recorder.events == []
    assert silent.audio_samples == 0
    assert not silent.interrupted


async def test_a_format_change_mid_item_is_named_and_what_was_queued_still_plays(
    clock: VirtualClock,
) -> None:
    playout, sink, recorder = make(clock)
    good = frames_of(ramp(4800), 480)
    bad = AudioFrame(np.zeros(160, np.int16), 16000, 1, 160)
    handle = playout.play(
        item_id="it_rate",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream([*good, bad, *good]),
    )
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, ValueError)
    assert "changed format mid-stream, from 24000 Hz x1 to 16000 Hz x1" in str(handle.error)
    assert handle.audio_samples == 4800
    assert np.array_equal(heard_audio(sink), ramp(4800))
    assert recorder.events == [("started", None), ("stopped", True)]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (None, "yielded None"),
        (
            SimpleNamespace(
                data=memoryview(np.zeros(4, np.float32)),
                sample_rate=RATE,
                num_channels=1,
                samples_per_channel=4,
            ),
            "int16 PCM, got a memoryview of 'f'",
        ),
        (
            SimpleNamespace(
                data=b"\x01\x02\x03", sample_rate=RATE, num_channels=1, samples_per_channel=1
            ),
            "even byte length, got 3 bytes",
        ),
        (b"raw bytes", "got bytes"),
    ],
)
async def test_bad_frames_get_a_clear_error(clock: VirtualClock, item: Any, message: str) -> None:
    playout, _, _ = make(clock)
    handle = playout.play(
        item_id="it_bad",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream([item]),
    )
    await clock.run(handle.wait_for_playout())
    assert handle.error is not None
    assert message in str(handle.error)


async def test_non_str_text_gets_a_clear_text_error_and_the_audio_plays(
    clock: VirtualClock,
) -> None:
    playout, sink, _ = make(clock)
    handle = playout.play(
        item_id="it_text",
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=stream([42]),
        audio_stream=stream(frames_of(ramp(2400), 480)),
    )
    await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert isinstance(handle.text_error, TypeError)
    assert "text_stream of item 'it_text' must yield str or TimedText, got int" in str(
        handle.text_error
    )
    assert handle.audio_samples == heard_audio(sink).size == 2400


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"item_id": ""}, TypeError, "item_id must be a non-empty str"),
        ({"item_id": 7}, TypeError, "item_id must be a non-empty str, got 7"),
        ({"content_index": -1}, ValueError, "content_index must be >= 0, got -1"),
        ({"content_index": 1.5}, TypeError, "content_index must be an int, got 1.5"),
        ({"text_stream": ["a"]}, TypeError, "text_stream must be an async iterable, got list"),
        ({"audio_stream": None}, TypeError, "audio_stream must be an async iterable"),
        ({"transcription_fwd": object()}, TypeError, "TTSSegmentsForwarder methods"),
    ],
)
async def test_bad_arguments_are_refused_and_the_current_item_plays_on(
    clock: VirtualClock, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    playout, _, _ = make(clock)
    current = play(playout, "current", 1.0)
    arguments: dict[str, Any] = {
        "item_id": "next",
        "content_index": 0,
        "transcription_fwd": None,
        "text_stream": stream([]),
        "audio_stream": stream([]),
        **kwargs,
    }
    with pytest.raises(error, match=message):
        playout.play(**arguments)
    await clock.run(current.wait_for_playout())
    assert current.audio_samples == 24000
    assert not current.interrupted


def test_play_outside_a_running_loop_says_so() -> None:
    async def make_playout() -> AgentPlayout:
        return AgentPlayout(audio_source=NullSink())

    playout = asyncio.run(make_playout())
    with pytest.raises(RuntimeError, match="running event loop"):
        playout.play(
            item_id="x",
            content_index=0,
            transcription_fwd=None,
            text_stream=stream([]),
            audio_stream=stream([]),
        )


async def test_closed_playout_refuses_to_play(clock: VirtualClock) -> None:
    playout, _, _ = make(clock)
    handle = play(playout, "it_1", 1.0)
    await clock.advance(0.1)
    await playout.aclose()
    assert handle.interrupted
    with pytest.raises(PlayoutClosedError, match="closed"):
        play(playout, "it_2", 1.0)


async def test_done_follows_the_seed(clock: VirtualClock) -> None:
    playout, _, _ = make(clock)
    handle = play(playout, "it_1", 1.0)
    assert not handle.done()
    handle.interrupt()
    assert handle.done()
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    assert handle.done()


async def test_played_text_follows_the_played_audio(clock: VirtualClock) -> None:
    playout, _, _ = make(clock)
    forwarder = TranscriptForwarder()
    handle = play(playout, "it_1", 2.0, text="one two three four", forwarder=forwarder)
    await clock.advance(0.01)
    early = forwarder.played_text
    await clock.run(handle.wait_for_playout())
    assert early == "one "
    assert forwarder.played_text == "one two three four"
    assert handle.text_chars == len(forwarder.played_text)


async def test_idle_playout_keeps_no_timers_or_tasks(clock: VirtualClock) -> None:
    tasks_before = asyncio.all_tasks()
    playout, _, _ = make(clock)
    handle = play(playout, "it_1", 0.5)
    await clock.run(handle.wait_for_playout())
    await clock.settle()
    assert clock.next_deadline_ns() is None
    assert asyncio.all_tasks() - tasks_before == set()


async def test_livekit_style_frames_are_accepted(clock: VirtualClock) -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    playout, sink, _ = make(clock)
    signal = ramp(4800)
    frames = [
        rtc.AudioFrame(signal[i : i + 480].tobytes(), RATE, 1, 480) for i in range(0, 4800, 480)
    ]
    handle = playout.play(
        item_id="it_rtc",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames),
    )
    await clock.run(handle.wait_for_playout())
    assert np.array_equal(heard_audio(sink), signal)


async def test_audio_is_read_ahead_of_the_listener_up_to_the_limit(clock: VirtualClock) -> None:
    sink = NullSink(clock=clock, queue_size_ms=100)
    eager = AgentPlayout(audio_source=sink)
    handle = play(eager, "eager", 5.0)
    await clock.advance(0.01)
    assert handle.received_samples == 5 * RATE
    await clock.run(handle.wait_for_playout())

    bounded = AgentPlayout(audio_source=NullSink(clock=clock, queue_size_ms=100), read_ahead_ms=500)
    handle = play(bounded, "bounded", 5.0)
    for _ in range(20):
        await clock.advance(0.2)
        ahead = handle.received_samples - handle.played_samples
        assert ahead <= RATE * (0.5 + 0.1 + 2 * 0.05 + 0.02)
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 5 * RATE


async def _all_at_once(frames: list[AudioFrame]) -> AsyncIterator[AudioFrame]:
    """A model's answer already received in full: the stream never waits, so never yields."""
    for frame in frames:
        yield frame


async def test_a_long_answer_sent_at_once_lets_other_sessions_run_every_100_ms_of_audio(
    clock: VirtualClock,
) -> None:
    playout = AgentPlayout(audio_source=NullSink(clock=clock, queue_size_ms=100))
    handle = playout.play(
        item_id="long",
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=stream([]),
        audio_stream=_all_at_once(frames_of(ramp(5 * RATE), RATE // 50)),
    )
    seen: list[int] = []

    async def other_session() -> None:
        while handle.received_samples < 5 * RATE:
            seen.append(handle.received_samples)
            await asyncio.sleep(0)

    probe = asyncio.ensure_future(other_session())
    await clock.advance(0.01)
    assert probe.done()
    steps = np.diff([*seen, 5 * RATE])
    assert steps.max() <= RATE * (0.1 + 0.02)
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 5 * RATE


def test_a_negative_read_ahead_is_refused() -> None:
    with pytest.raises(ValueError, match="read_ahead_ms must be >= 0, got -1"):
        AgentPlayout(audio_source=NullSink(), read_ahead_ms=-1)


async def test_empty_frames_are_skipped_without_starting_the_item(clock: VirtualClock) -> None:
    playout, _, recorder = make(clock)
    empty = AudioFrame(np.zeros(0, np.int16), RATE, 1, 0)
    handle = playout.play(
        item_id="it_empty",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream([empty, empty, *frames_of(ramp(480), 480)]),
    )
    await clock.run(handle.wait_for_playout())
    assert handle.error is None
    assert handle.audio_samples == 480
    assert recorder.events == [("started", None), ("stopped", False)]


async def test_an_unmappable_channel_layout_is_named(clock: VirtualClock) -> None:
    playout = AgentPlayout(audio_source=NullSink(RATE, 2, clock=clock))
    handle = playout.play(
        item_id="it_3ch",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream([AudioFrame(np.zeros(9, np.int16), RATE, 3, 3)]),
    )
    await clock.run(handle.wait_for_playout())
    assert isinstance(handle.error, ValueError)
    assert "cannot map 3 channels to 2" in str(handle.error)


async def test_interrupt_finishes_the_handle_in_one_turn_of_the_loop(clock: VirtualClock) -> None:
    tasks_before = asyncio.all_tasks()
    playout, _, recorder = make(clock, fade_ms=0)
    handle = play(playout, "it_1", 3.0)
    await clock.advance(1.0)
    waiter = asyncio.create_task(handle.wait_for_playout())
    await asyncio.sleep(0)
    handle.interrupt()
    await asyncio.sleep(0)
    assert finished(handle)
    assert recorder.events == [("started", None), ("stopped", True)]
    assert not waiter.done()
    await asyncio.sleep(0)
    assert waiter.done()
    assert asyncio.all_tasks() - tasks_before == set()


async def test_a_cancelled_waiter_leaves_the_other_waiters_waiting(clock: VirtualClock) -> None:
    playout, _, _ = make(clock)
    handle = play(playout, "it_1", 1.0)
    cancelled = asyncio.create_task(handle.wait_for_playout())
    kept = asyncio.create_task(handle.wait_for_playout())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert cancelled.cancelled()
    assert not kept.done()
    await clock.run(kept)
    assert kept.result() is None
    assert handle.audio_samples == 24000
    assert finished(handle)


async def _ending_slowly(clock: VirtualClock, signal: np.ndarray) -> AsyncIterator[AudioFrame]:
    """Audio whose stream, once cancelled, takes 50 ms to end."""
    try:
        for frame in frames_of(signal, 480):
            await clock.sleep_until(clock.now_ns() + 20_000_000)
            yield frame
    finally:
        await clock.sleep_until(clock.now_ns() + 50_000_000)


async def test_cancelling_the_item_task_while_a_stream_ends_finishes_the_handle_after_it(
    clock: VirtualClock,
) -> None:
    playout, _, recorder = make(clock, fade_ms=0)
    tasks_before = asyncio.all_tasks()
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=_ending_slowly(clock, ramp(RATE)),
    )
    (task,) = asyncio.all_tasks() - tasks_before  # the item's own task, made by play()
    await clock.advance(0.1)
    handle.interrupt()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert not finished(handle)
    await clock.advance(0.05)
    await clock.settle()
    assert finished(handle)
    assert task.cancelled()
    assert recorder.events == [("started", None), ("stopped", True)]


async def test_cancelling_the_item_task_while_the_forwarder_closes_still_finishes_the_handle(
    clock: VirtualClock,
) -> None:
    playout, _, recorder = make(clock, fade_ms=0)
    forwarder = SlowClosingForwarder()
    tasks_before = asyncio.all_tasks()
    handle = play(playout, "it_1", 1.0, forwarder=forwarder)
    (task,) = asyncio.all_tasks() - tasks_before  # the item's own task, made by play()
    await clock.advance(0.1)
    handle.interrupt()
    await clock.settle()
    assert forwarder.closing
    assert not finished(handle)
    task.cancel()
    await clock.settle()
    assert finished(handle)
    assert task.cancelled()
    assert recorder.events == [("started", None), ("stopped", True)]


class _TranscriptShaped(LiveKitShapedForwarder):
    """Not a ``TranscriptForwarder``, but with all its capabilities the engine uses."""

    def __init__(self) -> None:
        super().__init__()
        self.lookaheads = 0

    @property
    def item_id(self) -> str | None:
        return self.inner.item_id

    @item_id.setter
    def item_id(self, item_id: str | None) -> None:
        self.inner.item_id = item_id

    def push_text(self, text: str | TimedText) -> None:  # type: ignore[override]
        self.texts.append(text)
        self.inner.push_text(text)

    @property
    def timestamp_repairs(self) -> int:
        return self.inner.timestamp_repairs

    def set_playout_position(self, played_samples: int) -> int | None:
        return self.inner.set_playout_position(played_samples)

    def next_caption_sample(self) -> int | None:
        self.lookaheads += 1
        return self.inner.next_caption_sample()


async def _play_timed(clock: VirtualClock, forwarder: Any) -> PlayoutHandle:
    playout, _, _ = make(clock)
    words = [TimedText("one ", start=0.0, end=0.4), TimedText("two", start=0.5, end=0.9)]
    handle = playout.play(
        item_id="it_shaped",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=stream(words),
        audio_stream=stream(frames_of(ramp(RATE), 480)),
    )
    await clock.run(handle.wait_for_playout())
    return handle


async def test_a_forwarder_with_the_transcript_capabilities_is_treated_as_one(
    clock: VirtualClock,
) -> None:
    forwarder = _TranscriptShaped()
    handle = await _play_timed(clock, forwarder)
    assert forwarder.item_id == "it_shaped"
    assert [type(text) for text in forwarder.texts] == [TimedText, TimedText]
    assert forwarder.lookaheads > 0
    assert handle.played_text == "one two"
    assert handle.text_error is None


async def test_a_forwarder_with_only_the_livekit_methods_is_given_plain_text(
    clock: VirtualClock,
) -> None:
    forwarder = LiveKitShapedForwarder()
    handle = await _play_timed(clock, forwarder)
    assert forwarder.texts == ["one ", "two"]
    assert not hasattr(forwarder, "item_id")
    assert handle.played_text == "one two"  # the item completed: all of it was heard
    assert handle.text_error is None
