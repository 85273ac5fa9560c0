"""Random schedules of plays, interrupts, supersedes, pauses, stalls and faults on the virtual
clock; the engine's invariants are checked after every step and at the end."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    PacedSink,
    PlayoutHandle,
    TranscriptForwarder,
    VirtualClock,
)

from .conftest import RATE, ramp

FADE_SAMPLES = RATE * 5 // 1000
"""All a stopped item may leave in the sink: the fade-out that still plays."""


class CountingForwarder(TranscriptForwarder):
    """Counts ``aclose`` calls: the engine must close each forwarder exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()


class FaultySink(PacedSink):
    """The reference sink with an injected device failure and an optional slow capture."""

    def __init__(self, clock: VirtualClock, fail_at: int | None, slow_ms: int) -> None:
        super().__init__(RATE, 1, clock=clock, queue_size_ms=100)
        self.captures = 0
        self.fail_at = fail_at
        self.slow_ns = slow_ms * 1_000_000

    async def capture_frame(self, frame: Any) -> None:
        self.captures += 1
        if self.captures == self.fail_at:
            raise OSError("injected device failure")
        if self.slow_ns:
            await self.clock.sleep_until(self.clock.now_ns() + self.slow_ns)
        await super().capture_frame(frame)


@dataclass(frozen=True)
class Play:
    frames: int
    frame_ms: int
    stall_at: int | None
    stall_ms: int
    raise_at: int | None
    bad_frame_at: int | None
    text_fails: bool
    listener_fails: bool


@dataclass(frozen=True)
class Step:
    kind: str
    play: Play | None = None
    ms: int = 0


plays = st.builds(
    Play,
    frames=st.integers(0, 30),
    frame_ms=st.sampled_from([10, 20, 33, 50]),
    stall_at=st.none() | st.integers(0, 30),
    stall_ms=st.integers(0, 400),
    raise_at=st.none() | st.integers(0, 30),
    bad_frame_at=st.none() | st.integers(0, 30),
    text_fails=st.booleans(),
    listener_fails=st.booleans(),
)
steps = st.one_of(
    st.builds(Step, kind=st.just("play"), play=plays),
    st.builds(Step, kind=st.just("interrupt")),
    st.builds(Step, kind=st.just("pause")),
    st.builds(Step, kind=st.just("resume")),
    st.builds(Step, kind=st.just("advance"), ms=st.integers(0, 300)),
)


@dataclass
class World:
    clock: VirtualClock
    sink: FaultySink
    playout: AgentPlayout
    handles: list[tuple[PlayoutHandle, CountingForwarder]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    failing_listeners: set[int] = field(default_factory=set)
    loop_errors: list[dict[str, Any]] = field(default_factory=list)
    queued_at_stop: list[int] = field(default_factory=list)


def audio_stream(clock: VirtualClock, play: Play, index: int) -> AsyncIterator[Any]:
    async def frames() -> AsyncIterator[Any]:
        step = RATE * play.frame_ms // 1000
        for n in range(play.frames):
            if n == play.stall_at:
                await clock.sleep_until(clock.now_ns() + play.stall_ms * 1_000_000)
            if n == play.raise_at:
                raise RuntimeError(f"injected stream failure in item {index}")
            if n == play.bad_frame_at:
                yield AudioFrame(np.zeros(step, np.int16), RATE, 3, step // 3)
                continue
            yield AudioFrame(ramp(step, n * step), RATE, 1, step)

    return frames()


def text_stream(play: Play) -> AsyncIterator[Any]:
    async def texts() -> AsyncIterator[Any]:
        yield "Hello there. "
        await asyncio.sleep(0)
        if play.text_fails:
            raise ValueError("injected text failure")
        yield "How are you today?"

    return texts()


def check(world: World) -> None:
    """Invariants that hold at every instant."""
    for handle, forwarder in world.handles:
        pushed = handle.pushed_samples * 24000 // RATE
        assert 0 <= handle.audio_samples <= max(pushed, handle.received_samples)
        assert handle.text_chars == len(forwarder.played_text)
        assert forwarder.closes <= 1
        if handle.interrupted:
            assert handle.done()
    pairs = "".join("s" if e == "started" else "t" for e in world.events)
    assert "ss" not in pairs
    assert "tt" not in pairs
    assert not pairs.startswith("t")


async def run_schedule(schedule: list[Step], fail_at: int | None, slow_ms: int) -> None:
    loop = asyncio.get_running_loop()
    clock = VirtualClock()
    sink = FaultySink(clock, fail_at, slow_ms)
    world = World(clock, sink, AgentPlayout(audio_source=sink))
    loop.set_exception_handler(lambda _, context: world.loop_errors.append(context))
    tasks_before = asyncio.all_tasks()

    def started() -> None:
        world.events.append("started")
        current = world.playout.current
        if current is not None and id(current) in world.failing_listeners:
            raise RuntimeError("injected listener failure")

    world.playout.on("playout_started", started)

    def stopped() -> None:
        world.events.append("stopped")
        world.queued_at_stop.append(sink.samples_queued)

    world.playout.on("playout_stopped", stopped)
    for number, step in enumerate(schedule):
        if step.kind == "play":
            assert step.play is not None
            forwarder = CountingForwarder()
            handle = world.playout.play(
                item_id=f"item_{number}",
                content_index=0,
                transcription_fwd=forwarder,
                text_stream=text_stream(step.play),
                audio_stream=audio_stream(clock, step.play, number),
            )
            if step.play.listener_fails:
                world.failing_listeners.add(id(handle))
            world.handles.append((handle, forwarder))
        elif step.kind == "interrupt" and world.handles:
            world.handles[-1][0].interrupt()
        elif step.kind == "pause":
            world.playout.pause()
        elif step.kind == "resume":
            world.playout.resume()
        await clock.advance(step.ms / 1000)
        check(world)

    world.playout.resume()
    finished = [handle.wait_for_playout() for handle, _ in world.handles]
    await clock.run(asyncio.gather(*finished), limit_seconds=600)
    await clock.advance(1)
    check(world)
    for handle, forwarder in world.handles:
        assert handle.done()
        assert forwarder.closes == 1
    started_items = sum(h.first_frame_latency is not None for h, _ in world.handles)
    assert world.events.count("started") == world.events.count("stopped") == started_items
    assert all(queued <= FADE_SAMPLES for queued in world.queued_at_stop)
    assert sink.samples_queued == 0
    assert sink.samples_played == sum(h.played_samples for h, _ in world.handles)
    await world.playout.aclose()
    await clock.settle()
    assert asyncio.all_tasks() - tasks_before == set()
    assert world.loop_errors == []


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    schedule=st.lists(steps, max_size=14),
    fail_at=st.none() | st.integers(1, 40),
    slow_ms=st.sampled_from([0, 0, 30]),
)
def test_random_schedules_keep_every_invariant(
    schedule: list[Step], fail_at: int | None, slow_ms: int
) -> None:
    asyncio.run(run_schedule(schedule, fail_at, slow_ms))
    gc.collect()


def quiet_play(frames: int = 20, **changes: Any) -> Step:
    fields: dict[str, Any] = {
        "frames": frames,
        "frame_ms": 20,
        "stall_at": None,
        "stall_ms": 0,
        "raise_at": None,
        "bad_frame_at": None,
        "text_fails": False,
        "listener_fails": False,
    }
    fields.update(changes)
    return Step("play", Play(**fields))


@pytest.mark.parametrize(
    ("schedule", "fail_at", "slow_ms"),
    [
        ([quiet_play(), Step("pause"), Step("interrupt"), quiet_play()], None, 0),
        ([quiet_play(stall_at=3, stall_ms=300), Step("advance", ms=100), quiet_play()], None, 30),
        ([quiet_play(raise_at=0), quiet_play(bad_frame_at=2)], 3, 0),
        ([quiet_play(listener_fails=True), Step("pause"), quiet_play(0)], None, 0),
        ([Step("pause"), quiet_play(), Step("advance", ms=50), Step("resume")], None, 0),
    ],
)
def test_known_hard_schedules(schedule: list[Step], fail_at: int | None, slow_ms: int) -> None:
    asyncio.run(run_schedule(schedule, fail_at, slow_ms))


async def test_cancelling_the_caller_around_play_and_wait_leaves_no_orphan() -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=PacedSink(clock=clock))
    tasks_before = asyncio.all_tasks()
    handles: list[PlayoutHandle] = []

    async def caller() -> None:
        handle = playout.play(
            item_id="it",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=text_stream(quiet_play().play),  # type: ignore[arg-type]
            audio_stream=audio_stream(clock, quiet_play(40).play, 0),  # type: ignore[arg-type]
        )
        handles.append(handle)
        await handle.wait_for_playout()

    for cancel_after_ms in (0, 1, 150, 500):
        task = asyncio.create_task(caller())
        await clock.advance(cancel_after_ms / 1000)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await clock.run(handles[-1].wait_for_playout())
        assert handles[-1].audio_samples == 40 * 480
    await playout.aclose()
    await clock.settle()
    assert asyncio.all_tasks() - tasks_before == set()


async def test_cancelling_an_item_task_still_finishes_its_handle() -> None:
    clock = VirtualClock()
    sink = PacedSink(clock=clock)
    playout = AgentPlayout(audio_source=sink)
    stops: list[bool] = []
    playout.on("playout_stopped", stops.append)
    tasks_before = asyncio.all_tasks()
    handle = playout.play(
        item_id="it",
        content_index=0,
        transcription_fwd=None,
        text_stream=text_stream(quiet_play().play),  # type: ignore[arg-type]
        audio_stream=audio_stream(clock, quiet_play(40).play, 0),  # type: ignore[arg-type]
    )
    item_tasks = asyncio.all_tasks() - tasks_before  # the item's own task, made by play()
    await clock.advance(0.3)
    for task in item_tasks:
        task.cancel()
    await clock.settle()
    assert handle.done()
    assert handle.interrupted
    assert stops == [True]
    assert sink.samples_written - handle.played_samples == 0
