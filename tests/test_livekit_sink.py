"""The real ``rtc.AudioSource``, with the audio out of a ``LocalAudioTrack`` as ground truth.

Only the native quirks are tested here, in real time: whole 10 ms frames, captures that wait,
a clear that empties the source whole, the queue measurement, and exact positions at random
interrupts. The policy is proven on synthetic timelines in test_livekit_scheduler.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agent_playout import AgentPlayout, AudioFrame, PlayoutHandle
from agent_playout.errors import PlayoutClosedError

from .conftest import RATE, frames_of, ramp, stream

rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")

from agent_playout.sinks.livekit import sink as sink_module  # noqa: E402
from agent_playout.sinks.livekit.modes import Mode  # noqa: E402
from agent_playout.sinks.livekit.sink import LiveKitSink, SourceQueueError  # noqa: E402

from .livekit_truth import (  # noqa: E402
    Listener,
    heard_as_reported,
    heard_through,
    spin_until_just_after_a_tick,
)

pytestmark = pytest.mark.realtime


def play(playout: AgentPlayout, item_id: str, signal: np.ndarray) -> PlayoutHandle:
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(signal, 480)),
    )


@pytest.fixture
async def rig(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[AgentPlayout, LiveKitSink, Listener]]:
    queue_ms = getattr(request, "param", 1000)
    source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_ms)
    listener = Listener(source)
    sink = LiveKitSink(source, queue_size_ms=queue_ms)
    await sink.ready()
    playout = AgentPlayout(audio_source=sink)
    yield playout, sink, listener
    await playout.aclose()
    await listener.aclose()
    await source.aclose()


@pytest.mark.parametrize("rig", [1000, 200], indirect=True)
async def test_interrupt_position_includes_the_fade_heard_out_of_the_track(
    rig: tuple[AgentPlayout, LiveKitSink, Listener],
) -> None:
    playout, sink, listener = rig
    rng = random.Random(7)
    confirmed = 0
    for trial in range(5):
        before = (await listener.settled()).size
        signal = ramp(round(1.5 * RATE), start=trial * 7)
        handle = play(playout, f"it_{trial}", signal)
        await asyncio.sleep(rng.uniform(0.06, 0.6))
        handle.interrupt()
        await handle.wait_for_playout()
        heard = (await listener.settled())[before:]
        assert heard_as_reported(
            heard, signal, sink.fade_samples, handle.played_samples, handle.position_confirmed
        )
        confirmed += handle.position_confirmed is True
    assert confirmed >= 3


async def test_a_raw_audio_source_is_accepted_and_completes_exactly() -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=source)
    try:
        signal = ramp(12120)
        handle = play(playout, "whole", signal)
        await asyncio.wait_for(handle.wait_for_playout(), 3)
        assert handle.audio_samples == 12120
        assert np.array_equal(await listener.settled(), signal)
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()


@pytest.mark.parametrize("queue_ms", [50, 200, 1000])
async def test_a_plain_source_reports_exact_positions_whatever_its_queue(
    queue_ms: int, caplog: pytest.LogCaptureFixture
) -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_ms)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=source)
    fade = 240
    try:
        with caplog.at_level(logging.WARNING, logger="agent_playout"):
            for trial, cut_s in enumerate((0.5, 1.0, 0.23)):
                before = (await listener.settled()).size
                signal = ramp(round(1.5 * RATE), start=trial * 11)
                handle = play(playout, f"cut_{trial}", signal)
                await asyncio.sleep(cut_s)
                handle.interrupt()
                await handle.wait_for_playout()
                heard = (await listener.settled())[before:]
                assert handle.error is None
                assert heard_as_reported(
                    heard, signal, fade, handle.played_samples, handle.position_confirmed
                )
        assert "failed to capture frame" not in caplog.text
        assert isinstance(playout.sink, LiveKitSink)
        assert playout.sink.queue_size_ms == queue_ms
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()


@pytest.mark.parametrize("rig", [1000], indirect=True)
async def test_interrupt_followed_at_once_by_play_works_every_time(
    rig: tuple[AgentPlayout, LiveKitSink, Listener],
) -> None:
    playout, sink, listener = rig
    signals = [ramp(2 * RATE, start=1000 * trial) for trial in range(7)]
    handles = [play(playout, "first", signals[0])]
    for trial in range(1, 7):
        await asyncio.sleep(0.08)
        handles[-1].interrupt()
        handles.append(play(playout, f"next_{trial}", signals[trial]))
    await asyncio.sleep(0.15)
    handles[-1].interrupt()
    await handles[-1].wait_for_playout()
    heard = await listener.settled()
    for handle, signal in zip(handles, signals, strict=True):
        assert handle.error is None
        assert handle.played_samples > 0
        result = heard_through(heard, signal, sink.fade_samples)
        assert result is not None
        assert result[0] == handle.played_samples
        heard = heard[result[1] :]
    assert heard.size == 0


@pytest.mark.parametrize("rig", [200], indirect=True)
async def test_pause_holds_everything_and_resume_continues_from_the_same_sample(
    rig: tuple[AgentPlayout, LiveKitSink, Listener],
) -> None:
    playout, sink, listener = rig
    signal = ramp(round(1.2 * RATE), start=500)
    handle = play(playout, "paused", signal)
    await asyncio.sleep(0.3)
    playout.pause()
    await asyncio.sleep(0.05)
    stopped_at = handle.played_samples
    await asyncio.sleep(0.25)
    heard_paused = await listener.settled()
    assert handle.played_samples == stopped_at
    assert heard_through(heard_paused, signal, sink.fade_samples) == (
        stopped_at,
        heard_paused.size,
    )
    playout.resume()
    await asyncio.wait_for(handle.wait_for_playout(), 3)
    assert handle.audio_samples == signal.size
    fade = sink.fade_samples
    steps = np.linspace(0.0, 1.0, fade + 1, dtype=np.float32)
    expected = signal.copy()
    expected[stopped_at - fade : stopped_at] = (
        signal[stopped_at - fade : stopped_at] * steps[::-1][1:]
    )
    expected[stopped_at : stopped_at + fade] = signal[stopped_at : stopped_at + fade] * steps[1:]
    assert np.array_equal(await listener.settled(), expected[expected != 0])


@pytest.mark.parametrize("rig", [200], indirect=True)
async def test_a_clear_the_event_loop_runs_late_leaves_the_position_unconfirmed(
    rig: tuple[AgentPlayout, LiveKitSink, Listener], caplog: pytest.LogCaptureFixture
) -> None:
    """An interrupt just after a tick puts the clear off by a few ms; a loop blocked then
    runs it ticks late, so more was heard than counted: the item says so."""
    playout, sink, listener = rig
    phase = sink._scheduler.counter.phase_ns
    assert phase is not None
    for attempt in range(10):
        before = (await listener.settled()).size
        signal = ramp(round(1.5 * RATE), start=attempt * 13)
        handle = play(playout, f"late_{attempt}", signal)
        await asyncio.sleep(0.3)
        spin_until_just_after_a_tick(sink.clock, phase)
        with caplog.at_level(logging.WARNING, logger="agent_playout"):
            handle.interrupt()
            put_off = sink._scheduler.mode is Mode.STOPPING
            time.sleep(0.035)  # noqa: ASYNC251 - the point: the loop is blocked
            await handle.wait_for_playout()
        heard = (await listener.settled())[before:]
        if put_off:
            break
        assert heard_through(heard, signal, sink.fade_samples) == (
            handle.played_samples,
            heard.size,
        )
    assert put_off, "no interrupt in 10 landed just after a tick"
    assert handle.position_confirmed is False
    assert "the item's position is unconfirmed" in caplog.text
    assert heard_as_reported(heard, signal, sink.fade_samples, handle.played_samples, False)
    # blocked 35 ms from 0.5-2 ms after a tick: ticks 10, 20 and 30 ms on released
    # frames the count does not have (one of them is in its place as the faded tail)
    assert heard.size >= handle.played_samples + 2 * 240


async def _arriving_with_a_gap(signal: np.ndarray, gap_s: float) -> AsyncIterator[AudioFrame]:
    """The model's audio: the first half at once, then nothing for ``gap_s``, then the rest."""
    frames = frames_of(signal, 480)
    for index, frame in enumerate(frames):
        if index == len(frames) // 2:
            await asyncio.sleep(gap_s)
        yield frame


@pytest.mark.parametrize("rig", [200], indirect=True)
async def test_late_audio_is_an_underrun_that_the_position_does_not_count(
    rig: tuple[AgentPlayout, LiveKitSink, Listener],
) -> None:
    playout, _, listener = rig
    signal = ramp(round(0.6 * RATE), start=500)
    handle = playout.play(
        item_id="late",
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=_arriving_with_a_gap(signal, 0.7),
    )
    await asyncio.sleep(0.55)
    assert handle.played_samples == signal.size // 2
    await asyncio.wait_for(handle.wait_for_playout(), 3)
    assert handle.audio_samples == signal.size
    assert handle.underruns == 1
    assert handle.underrun_seconds is not None
    assert 0 < handle.underrun_seconds < 0.7
    assert np.array_equal(await listener.settled(), signal)


async def test_a_source_without_a_queue_is_refused_with_the_reason() -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=0)
    try:
        with pytest.raises(ValueError, match="queue_size_ms must be a multiple of 10 and >= 10"):
            LiveKitSink(source, queue_size_ms=0)
        with pytest.raises(ValueError, match="got 205"):
            LiveKitSink(source, queue_size_ms=205)
    finally:
        await source.aclose()


@pytest.mark.parametrize(("made_ms", "told_ms"), [(1000, 200), (200, 1000), (50, 200)])
async def test_a_source_whose_queue_is_not_the_one_told_is_refused_before_any_audio(
    made_ms: int, told_ms: int
) -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=made_ms)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=LiveKitSink(source, queue_size_ms=told_ms))
    try:
        handle = play(playout, "told_wrong", ramp(RATE))
        await asyncio.wait_for(handle.wait_for_playout(), 5)
        assert isinstance(handle.error, SourceQueueError)
        assert f"queue is {made_ms} ms, not queue_size_ms={told_ms}" in str(handle.error)
        assert handle.played_samples == 0
        assert (await listener.settled()).size == 0
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()


async def test_an_interrupt_while_the_queue_is_measured_plays_nothing() -> None:
    source = rtc.AudioSource(RATE, 1)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=source)
    try:
        handle = play(playout, "too_soon", ramp(RATE))
        await asyncio.sleep(0.05)
        handle.interrupt()
        await asyncio.wait_for(handle.wait_for_playout(), 3)
        assert handle.error is None
        assert handle.played_samples == 0
        follow = ramp(6000, start=300)
        after = play(playout, "after", follow)
        await asyncio.wait_for(after.wait_for_playout(), 3)
        assert after.audio_samples == follow.size
        assert np.array_equal(await listener.settled(), follow)
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()


async def _feed(sink: LiveKitSink, signal: np.ndarray) -> None:
    """Hand ``signal`` to the sink in 20 ms frames, as the engine does."""
    for frame in frames_of(signal, 480):
        await sink.capture_frame(frame)


async def test_a_native_clear_that_raises_leaves_only_the_faded_tail_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rtc's ``clear_queue()`` raising (at a stop that clears at once, before the tail is
    made) reaches the caller, and what the sink holds is still only the faded tail: the
    next capture never plays on from the cut."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    sink = LiveKitSink(source, queue_size_ms=200)
    try:
        await sink.ready()
        phase = sink._scheduler.counter.phase_ns
        assert phase is not None
        feeding = asyncio.ensure_future(_feed(sink, ramp(RATE)))
        await asyncio.sleep(0.3)
        while True:  # 5-7 ms after a tick, with no capture waiting: the clear runs at once
            while not 5_000_000 <= (sink.clock.now_ns() - phase) % 10_000_000 <= 7_000_000:
                pass
            if sink._scheduler._waiting is None:
                break
            await asyncio.sleep(0.01)
        assert sink._scheduler.held.pending_count > sink.fade_samples

        def refuse() -> None:
            raise RuntimeError("native clear refused")

        monkeypatch.setattr(source, "clear_queue", refuse)
        with pytest.raises(RuntimeError, match="native clear refused"):
            sink.clear_queue()
        assert 0 < sink._scheduler.held.pending_count <= sink.fade_samples
        feeding.cancel()
    finally:
        monkeypatch.undo()  # the sink's aclose() clears the real source
        await sink.aclose()
        await source.aclose()


async def test_aclose_after_a_put_off_clear_lets_it_and_the_fade_finish_first(
    loop_failures: list[dict[str, object]],
) -> None:
    """A clear put off past a tick, then ``aclose()``: the clear and the faded tail run
    before it returns, so the source can be closed at once with nothing of the sink left
    to fail on it, and what was heard is the signal to the cut and the whole fade."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    listener = Listener(source)
    sink = LiveKitSink(source, queue_size_ms=200)
    try:
        await sink.ready()
        phase = sink._scheduler.counter.phase_ns
        assert phase is not None
        signal = ramp(RATE)
        feeding = asyncio.ensure_future(_feed(sink, signal))
        await asyncio.sleep(0.3)
        spin_until_just_after_a_tick(sink.clock, phase)
        sink.clear_queue()
        assert sink._scheduler.mode is Mode.STOPPING
        await asyncio.wait_for(sink.aclose(), 2)
        assert sink.samples_played == sink.samples_written
        await source.aclose()
        await asyncio.sleep(0.1)
        assert loop_failures == []
        heard = await listener.settled()
        assert heard_through(heard, signal, sink.fade_samples) == (sink.samples_played, heard.size)
        with pytest.raises(PlayoutClosedError):
            await asyncio.wait_for(feeding, 1)  # its next frame came after the close
    finally:
        await sink.aclose()
        await listener.aclose()
        await source.aclose()


async def test_a_closed_sink_refuses_audio_and_a_second_aclose_returns() -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    sink = LiveKitSink(source, queue_size_ms=200)
    try:
        await sink.ready()
        await sink.aclose()
        await asyncio.wait_for(sink.aclose(), 0.1)
        with pytest.raises(PlayoutClosedError, match="LiveKitSink is closed"):
            await sink.capture_frame(frames_of(ramp(480), 480)[0])
        with pytest.raises(PlayoutClosedError, match="LiveKitSink is closed"):
            await sink.ready()
        sink.clear_queue()
        assert sink.samples_written == 0
    finally:
        await source.aclose()


async def test_aclose_while_the_queue_is_measured_stops_measuring_at_once() -> None:
    """rtc's default queue takes about 0.4 s to measure: closing does not wait for it."""
    source = rtc.AudioSource(RATE, 1)
    sink = LiveKitSink(source)
    try:
        await asyncio.sleep(0.05)
        assert sink.queue_size_ms is None
        started = time.monotonic()
        await sink.aclose()
        assert time.monotonic() - started < 0.2
        assert sink.queue_size_ms is None
        with pytest.raises(PlayoutClosedError):
            await sink.ready()
    finally:
        await source.aclose()


async def test_aclose_gives_up_on_a_capture_the_source_never_finishes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A source that never returns from a capture (a wedged native side) cannot hold
    ``aclose()`` past its bound: the capture is abandoned, and that is logged."""
    monkeypatch.setattr(sink_module, "_CLOSE_TIMEOUT_NS", 50_000_000)
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    sink = LiveKitSink(source, queue_size_ms=200)
    try:
        await sink.ready()
        never = asyncio.Event()

        async def capture_never(frame: object) -> None:
            await never.wait()

        monkeypatch.setattr(source, "capture_frame", capture_never)
        feeding = asyncio.ensure_future(_feed(sink, ramp(RATE // 2)))
        await asyncio.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger="agent_playout"):
            await asyncio.wait_for(sink.aclose(), 1)
        assert "did not finish this sink's clear or captures within" in caplog.text
        await asyncio.gather(feeding, return_exceptions=True)
    finally:
        await sink.aclose()
        await source.aclose()


async def test_a_playout_closes_the_sink_it_made_for_a_plain_source(
    loop_failures: list[dict[str, object]],
) -> None:
    """``AgentPlayout(audio_source=source)`` made the source's ``LiveKitSink`` itself, so its
    ``aclose()`` closes it: after an interrupt the faded tail is out when it returns, and
    the source can be closed at once."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=source)
    sink = playout.sink
    assert isinstance(sink, LiveKitSink)
    try:
        await sink.ready()
        phase = sink._scheduler.counter.phase_ns
        assert phase is not None
        signal = ramp(RATE)
        handle = play(playout, "closing", signal)
        await asyncio.sleep(0.3)
        spin_until_just_after_a_tick(sink.clock, phase)
        handle.interrupt()
        await asyncio.wait_for(playout.aclose(), 3)
        assert sink.samples_played == sink.samples_written
        await source.aclose()
        await asyncio.sleep(0.1)
        assert loop_failures == []
        heard = await listener.settled()
        assert heard_as_reported(
            heard, signal, sink.fade_samples, handle.played_samples, handle.position_confirmed
        )
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()


async def test_closing_the_sink_under_an_item_ends_it_at_once_unconfirmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app that closes the sink while an item plays, its clear put off past a tick: the
    clear never runs, so the item ends at once with ``PlayoutClosedError`` and its count
    unconfirmed, not after the playout's cleanup bound (3 s) waiting for that clear."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    sink = LiveKitSink(source, queue_size_ms=200)
    playout = AgentPlayout(audio_source=sink)
    try:
        await sink.ready()
        phase = sink._scheduler.counter.phase_ns
        assert phase is not None
        handle = play(playout, "closed_under", ramp(RATE))
        await asyncio.sleep(0.3)
        spin_until_just_after_a_tick(sink.clock, phase)
        sink.clear_queue()
        closing = asyncio.ensure_future(sink.aclose())
        await asyncio.sleep(0)
        closing.cancel()  # the app gave up on the close: the clear is abandoned
        await asyncio.gather(closing, return_exceptions=True)
        with caplog.at_level(logging.WARNING, logger="agent_playout"):
            await asyncio.wait_for(handle.wait_for_playout(), 1)
        assert isinstance(handle.error, PlayoutClosedError)
        assert handle.position_confirmed is False
        assert "the sink was closed before the clear" in caplog.text
        with pytest.raises(PlayoutClosedError):
            await sink.wait_for_playout()
    finally:
        await playout.aclose()
        await source.aclose()
