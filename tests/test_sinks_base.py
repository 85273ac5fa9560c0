"""The parts every sink shares, tested on their own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent_playout import AudioFrame, NullSink, PacedSink, PlayoutError, VirtualClock
from agent_playout.sinks.base import (
    NEVER,
    PositionedSink,
    SinkSurface,
    UnderrunMeter,
    Waiters,
)
from agent_playout.sinks.wav import WavSink

from .conftest import RATE, ramp


def test_an_underrun_counts_from_going_dry_to_refilling() -> None:
    meter = UnderrunMeter()
    meter.went_dry(100)
    meter.went_dry(150)  # still the same span
    assert (meter.count(), meter.length(130), meter.dry_since) == (1, 30, 100)
    meter.refilled(180)
    assert (meter.count(), meter.length(1000), meter.dry_since) == (1, 80, None)


def test_a_clear_forgets_the_open_span_but_keeps_the_closed_ones() -> None:
    meter = UnderrunMeter()
    meter.span(0, 40)
    meter.went_dry(100)
    meter.forget()
    meter.refilled(200)
    assert (meter.count(), meter.length(500)) == (1, 40)


def test_a_span_learned_late_never_counts_negative_time() -> None:
    meter = UnderrunMeter()
    meter.span(50, 20)
    assert (meter.count(), meter.length(0)) == (1, 0)


async def test_waiters_are_released_earliest_target_first_and_ties_in_order() -> None:
    loop = asyncio.get_running_loop()
    waiters = Waiters()
    futures = {name: loop.create_future() for name in ("late", "early", "tie_a", "tie_b")}
    released: list[str] = []
    for name, target in (("late", 300), ("early", 100), ("tie_a", 200), ("tie_b", 200)):
        futures[name].add_done_callback(lambda _, name=name: released.append(name))
        waiters.add(target, futures[name])
    assert waiters.next_target() == 100
    assert waiters.release(250) == 300
    await asyncio.sleep(0)
    assert released == ["early", "tie_a", "tie_b"]
    assert not futures["late"].done()


async def test_waiters_release_only_reached_targets_and_say_when_none_is_left() -> None:
    loop = asyncio.get_running_loop()
    waiters = Waiters()
    assert (waiters.next_target(), waiters.release(10**12)) == (NEVER, NEVER)
    first, second = loop.create_future(), loop.create_future()
    waiters.add(50, first)
    waiters.add(80, second)
    assert waiters.release(49) == 50
    assert not first.done()
    assert waiters.release(80) == NEVER
    assert (first.result(), second.result()) == (None, None)


async def test_waiters_skip_futures_already_done() -> None:
    loop = asyncio.get_running_loop()
    waiters = Waiters()
    gone, kept = loop.create_future(), loop.create_future()
    waiters.add(10, gone)
    waiters.add(20, kept)
    gone.cancel()
    assert waiters.next_target() == 20
    waiters.end()
    assert gone.cancelled()
    assert kept.result() is None


async def test_waiters_ended_with_an_error_all_raise_it() -> None:
    loop = asyncio.get_running_loop()
    waiters = Waiters()
    futures = [loop.create_future() for _ in range(3)]
    for target, future in enumerate(futures):
        waiters.add(target * 100, future)
    futures[1].set_result(None)
    error = PlayoutError("the output stopped")
    waiters.end(error)
    assert [future.exception() for future in (futures[0], futures[2])] == [error, error]
    assert futures[1].exception() is None
    assert waiters.next_target() == NEVER


class FixedCounts(SinkSurface):
    """The surface over counts a test sets: 16 kHz stereo."""

    def __init__(self) -> None:
        super().__init__(16000, 2)
        self.played = 0
        self.written = 0
        self.totals = (0, 0)

    @property
    def samples_played(self) -> int:
        return self.played

    @property
    def samples_written(self) -> int:
        return self.written

    def _underrun_totals(self) -> tuple[int, int]:
        return self.totals


def test_the_surface_follows_the_counts_a_sink_gives() -> None:
    sink = FixedCounts()
    sink.played, sink.written, sink.totals = 4000, 12000, (2, 30_000_000)
    assert (sink.sample_rate, sink.num_channels, sink.paused) == (16000, 2, False)
    assert (sink.samples_queued, sink.queued_duration) == (8000, 0.5)
    assert (sink.underruns, sink.underrun_ns) == (2, 30_000_000)


def test_a_sink_must_say_where_its_counts_come_from() -> None:
    class NoCounts(SinkSurface):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoCounts(24000, 1)  # type: ignore[abstract]


@pytest.mark.parametrize("sink_type", [NullSink, PacedSink])
async def test_the_paced_sinks_show_the_surface_on_their_own_counts(
    sink_type: type[PacedSink], clock: VirtualClock
) -> None:
    sink = sink_type(RATE, 1, queue_size_ms=1000, clock=clock)
    await sink.capture_frame(AudioFrame(ramp(RATE), RATE, 1, RATE))
    await clock.advance(0.25)
    assert isinstance(sink, PositionedSink)
    assert (sink.samples_played, sink.samples_written) == (RATE // 4, RATE)
    assert (sink.samples_queued, sink.queued_duration) == (RATE * 3 // 4, 0.75)


async def test_a_sink_holding_a_file_closes_it_when_a_with_block_ends(tmp_path: Path) -> None:
    with WavSink(tmp_path / "a.wav", clock=VirtualClock()) as sink:
        assert not sink.closed
    assert sink.closed
    async with WavSink(tmp_path / "b.wav", clock=VirtualClock()) as sink:
        assert not sink.closed
    assert sink.closed
