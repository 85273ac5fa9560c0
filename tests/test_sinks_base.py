"""The parts every sink shares, tested on their own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from agent_playout import AgentPlayout, AudioFrame, NullSink, PacedSink, PlayoutError, VirtualClock
from agent_playout.sinks.adapters import LIVEKIT_SOURCE, register_adapter
from agent_playout.sinks.base import (
    NEVER,
    PositionedSink,
    SinkSurface,
    UnderrunMeter,
    Waiters,
    is_livekit_source,
    positioned,
)
from agent_playout.sinks.wav import WavSink

from .conftest import RATE, ramp


def test_an_underrun_counts_from_going_dry_to_refilling() -> None:
    meter = UnderrunMeter()
    meter.went_dry(100)
    meter.went_dry(150)  # still the same span
    assert (meter.count(), meter.length(130)) == (1, 30)
    meter.refilled(180)
    assert (meter.count(), meter.length(1000)) == (1, 80)


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


def test_an_output_of_no_known_shape_is_refused_naming_what_it_lacks() -> None:
    class Speaker:
        sample_rate = RATE

        async def capture_frame(self, frame: object) -> None: ...

    with pytest.raises(TypeError) as raised:
        positioned(Speaker())
    assert str(raised.value) == (
        "audio_source must be shaped like livekit.rtc.AudioSource; Speaker lacks"
        " num_channels, queued_duration, clear_queue, wait_for_playout"
    )


class VendorOutput:
    """An output of another library: it plays audio but cannot tell what it has played."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock


def adapt_vendor_output(output: VendorOutput) -> NullSink:
    """A third party's adapter: here, a sink paced on the output's clock."""
    return NullSink(clock=output.clock)


def name_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


async def test_a_registered_adapter_drives_its_output_type_and_its_subclasses(
    clock: VirtualClock,
) -> None:
    class Output(VendorOutput):
        pass

    class LoudOutput(Output):
        pass

    register_adapter(name_of(Output), adapt_vendor_output)
    output = LoudOutput(clock)
    sink = positioned(output)
    assert isinstance(sink, NullSink)
    assert sink.clock is clock
    playout = AgentPlayout(audio_source=Output(clock))
    assert isinstance(playout.sink, NullSink)
    await playout.aclose()


def test_an_adapter_named_by_its_path_is_imported_when_first_needed() -> None:
    class Output(VendorOutput):
        pass

    register_adapter(name_of(Output), f"{__name__}:adapt_vendor_output")
    assert isinstance(positioned(Output(VirtualClock())), NullSink)
    with pytest.raises(ValueError, match="module:attribute"):
        register_adapter(name_of(Output), "no_colon_here")


def test_an_adapter_that_makes_no_positioned_sink_is_refused() -> None:
    class Output(VendorOutput):
        pass

    register_adapter(name_of(Output), lambda output: object())
    with pytest.raises(TypeError, match="does not report samples_played and samples_written"):
        positioned(Output(VirtualClock()))


def test_only_livekit_audio_sources_are_recognised_as_such(clock: VirtualClock) -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    assert name_of(rtc.AudioSource) == LIVEKIT_SOURCE
    assert not is_livekit_source(NullSink(clock=clock))

    class AudioSource:  # the same name in another module is not LiveKit's
        pass

    assert not is_livekit_source(AudioSource())


def run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (nothing imported yet); its output lines."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_importing_the_package_and_its_sinks_does_not_import_livekit() -> None:
    loaded = run_python(
        "import sys, agent_playout, agent_playout.sinks.wav, agent_playout.sinks.device\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'livekit'"
        " or name.startswith('agent_playout.sinks.livekit')))"
    )
    assert loaded == ["[]"]


@pytest.mark.realtime
def test_a_plain_rtc_source_gets_the_livekit_sink_without_importing_it_first() -> None:
    pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    code = """
import asyncio, sys
from livekit import rtc
from agent_playout.sinks.base import is_livekit_source, positioned

async def main():
    source = rtc.AudioSource(24000, 1, queue_size_ms=200)
    print(is_livekit_source(source), "agent_playout.sinks.livekit" in sys.modules)
    sink = positioned(source)
    await sink.ready()
    print(type(sink).__name__, sink.source is source, sink.queue_size_ms)
    await source.aclose()

asyncio.run(main())
"""
    assert run_python(code) == ["True", "False", "LiveKitSink", "True", "200"]
