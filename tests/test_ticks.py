"""TickCounter: the count of what a source released, on synthetic native timelines."""

from __future__ import annotations

import random

import pytest

from agent_playout.sinks.livekit.meter import QueueMeter
from agent_playout.sinks.livekit.ticks import (
    GUARD_AFTER_NS,
    INSERT_NS,
    TICK_NS,
    CaptureTicket,
    TickCounter,
)

MS = 1_000_000
FRAME = 240
QUEUE = 2400
PHASE = 3 * MS + 200_000
"""The native ticks in these timelines fall at 3.2 ms, 13.2 ms, 23.2 ms, ..."""


def learned() -> TickCounter:
    """A counter that saw one capture wait for two ticks: it knows the grid and the count.

    2880 samples go into an empty buffer at 0 ms; the ticks at 3.2 and 13.2 ms release
    480, and the capture completes at 13.2 ms with 2400 left, reaching Python 0.1 ms later.
    """
    counter = TickCounter(FRAME, QUEUE)
    ticket = counter.request(0, QUEUE + 2 * FRAME)
    counter.complete(ticket, PHASE + TICK_NS + 100_000)
    return counter


def test_a_waited_capture_anchors_the_count_on_the_grid() -> None:
    counter = learned()
    assert counter.phase_ns is not None
    assert abs(counter.phase_ns - PHASE) <= 200_000
    assert counter.released(PHASE + TICK_NS + 5 * MS) == 2 * FRAME
    assert counter.released(PHASE + 2 * TICK_NS + 1 * MS) == 3 * FRAME
    assert counter.released(PHASE + 100 * TICK_NS) == QUEUE + 2 * FRAME


def test_release_time_is_the_tick_that_releases_a_sample() -> None:
    counter = learned()
    tick = counter.release_time(3 * FRAME)
    assert tick is not None
    assert abs(tick - (PHASE + 2 * TICK_NS)) <= 200_000
    assert counter.release_time(counter.written + 1) is None


def test_a_capture_into_an_empty_buffer_starts_counting_at_the_next_tick() -> None:
    counter = learned()
    start = PHASE + 200 * TICK_NS + 4 * MS
    counter.request(start, 4 * FRAME)
    assert counter.released(start + 5 * MS) == QUEUE + 2 * FRAME
    assert counter.released(start + 7 * MS) == QUEUE + 3 * FRAME
    assert counter.released(start + 37 * MS) == QUEUE + 6 * FRAME


def test_a_late_completion_leaves_the_count_alone() -> None:
    counter = learned()
    phase = counter.phase_ns
    ticket = counter.request(PHASE + TICK_NS + 300_000, 3 * FRAME)
    counter.complete(ticket, PHASE + 4 * TICK_NS + 4 * MS)
    assert counter.phase_ns == phase
    assert counter.released(PHASE + 4 * TICK_NS + 2 * MS) == 5 * FRAME


@pytest.mark.parametrize("late_ms", [0.1, 4, 6, 8.5])
def test_a_guess_is_settled_on_the_tick_before_a_late_completion(late_ms: float) -> None:
    counter = learned()
    counter.adopt_grid([PHASE + step * TICK_NS + 100_000 for step in range(5)])
    counter.stop_at(3 * FRAME)
    counter.cleared(3 * FRAME)
    start = PHASE + 50 * TICK_NS + 4 * MS
    counter.request(start, 4 * FRAME)
    assert counter.provisional
    ticket = counter.request(start + 300_000, QUEUE - 3 * FRAME)
    completed_tick = PHASE + 51 * TICK_NS
    counter.complete(ticket, completed_tick + round(late_ms * MS))
    assert not counter.provisional
    assert counter.released(completed_tick + 9 * MS) == 4 * FRAME
    assert counter.released(completed_tick + 11 * MS) == 5 * FRAME


def _guessed() -> tuple[TickCounter, CaptureTicket]:
    """A counter whose audio went into the empty buffer at 5 ms (a guess: it starts at the
    13.2 ms tick), with a capture one frame over the queue, which completes on that tick."""
    counter = TickCounter(FRAME, QUEUE)
    counter.adopt_grid([PHASE + step * TICK_NS for step in range(5)])
    ticket = counter.request(5 * MS, QUEUE + FRAME)
    assert counter.provisional
    return counter, ticket


def test_a_completion_by_the_tick_the_guess_predicts_settles_it() -> None:
    counter, ticket = _guessed()
    counter.complete(ticket, PHASE + TICK_NS + 100_000)
    assert not counter.provisional
    assert counter.settling_size(20 * MS) == 0
    assert counter.released(20 * MS) == FRAME


@pytest.mark.parametrize("late_ms", [11, 19, 35])
def test_a_settling_completion_ticks_late_leaves_the_count_provisional(late_ms: int) -> None:
    """It may be late, or show the audio started later: no telling, so it settles nothing,
    and the next probe is sized to wait even if the audio started as guessed."""
    counter, ticket = _guessed()
    done = PHASE + TICK_NS + late_ms * MS
    counter.complete(ticket, done)
    assert counter.provisional
    released_if_as_guessed = FRAME * (1 + (done - PHASE - TICK_NS) // TICK_NS)
    backlog = QUEUE + FRAME - released_if_as_guessed
    assert counter.settling_size(done) == QUEUE + FRAME - backlog


def test_a_probe_by_the_earliest_tick_then_settles_the_count_there() -> None:
    counter, ticket = _guessed()
    counter.complete(ticket, PHASE + TICK_NS + 12 * MS)
    probe = counter.request(PHASE + TICK_NS + 12 * MS, counter.settling_size(26 * MS))
    counter.complete(probe, PHASE + 3 * TICK_NS + 100_000)
    assert not counter.provisional
    assert counter.released(PHASE + 3 * TICK_NS + 2 * MS) == 3 * FRAME


def test_two_prompt_completions_agreeing_on_a_later_start_settle_it() -> None:
    counter, ticket = _guessed()
    counter.complete(ticket, PHASE + 2 * TICK_NS + 100_000)
    assert counter.provisional
    size = counter.settling_size(PHASE + 2 * TICK_NS + 200_000)
    probe = counter.request(PHASE + 2 * TICK_NS + 200_000, size)
    counter.complete(probe, PHASE + 4 * TICK_NS + 100_000)
    assert not counter.provisional
    assert counter.released(PHASE + 4 * TICK_NS + 2 * MS) == 3 * FRAME


def test_a_capture_that_did_not_wait_though_the_count_said_it_must_moves_the_count_on() -> None:
    counter = learned()
    assert counter.released(15 * MS) == 2 * FRAME
    ticket = counter.request(15 * MS, FRAME)
    assert ticket.excess == FRAME
    counter.complete(ticket, 15 * MS + 100_000)
    assert counter.released(15 * MS + 100_000) == ticket.written_after - QUEUE == 3 * FRAME
    assert counter.provisional


def test_a_count_that_keeps_falling_behind_suspects_the_queue() -> None:
    counter = learned()
    now = 15 * MS
    for _ in range(3):
        assert not counter.queue_suspect
        ticket = counter.request(now, FRAME)
        counter.complete(ticket, now + 100_000)
        now += 200_000
    assert counter.queue_suspect


def test_an_early_completion_shows_the_count_is_behind_and_moves_it_on() -> None:
    counter = learned()
    assert counter.released(PHASE + 3 * TICK_NS + 2 * MS) == 4 * FRAME
    ticket = counter.request(PHASE + TICK_NS + 300_000, 3 * FRAME)
    counter.complete(ticket, PHASE + 3 * TICK_NS + 100_000)
    assert counter.released(PHASE + 3 * TICK_NS + 2 * MS) == 5 * FRAME


def test_a_prompt_completion_is_not_taken_for_a_wait() -> None:
    counter = learned()
    before = counter.released(PHASE + 3 * TICK_NS)
    ticket = counter.request(PHASE + 2 * TICK_NS + 5 * MS, FRAME)
    counter.complete(ticket, PHASE + 2 * TICK_NS + 5 * MS + 300_000)
    assert counter.released(PHASE + 3 * TICK_NS) == before


def test_a_clear_just_before_a_tick_waits_for_it_and_counts_it() -> None:
    counter = learned()
    tick = PHASE + 2 * TICK_NS
    clear_at, released = counter.stop_point(tick - MS, exact=True)
    assert clear_at >= tick + GUARD_AFTER_NS - 200_000
    assert clear_at <= tick + GUARD_AFTER_NS + 200_000
    assert released == 3 * FRAME


def test_a_clear_between_ticks_is_immediate_and_an_inexact_one_never_waits() -> None:
    counter = learned()
    now = PHASE + 2 * TICK_NS - 5 * MS
    assert counter.stop_point(now, exact=True) == (now, 2 * FRAME)
    assert counter.stop_point(PHASE + 2 * TICK_NS - MS, exact=False) == (
        PHASE + 2 * TICK_NS - MS,
        2 * FRAME,
    )


def test_a_clear_right_after_a_request_waits_for_the_insertion() -> None:
    counter = learned()
    requested = PHASE + 200 * TICK_NS + 4 * MS
    counter.request(requested, 4 * FRAME)
    clear_at, released = counter.stop_point(requested + 200_000, exact=True)
    assert clear_at == requested + INSERT_NS
    assert released == QUEUE + 2 * FRAME


def test_stop_at_caps_the_count_and_cleared_restarts_it_empty() -> None:
    counter = learned()
    counter.stop_at(3 * FRAME)
    assert counter.released(PHASE + 100 * TICK_NS) == 3 * FRAME
    counter.cleared(3 * FRAME)
    assert counter.written == 3 * FRAME
    assert counter.release_time(3 * FRAME) is None
    assert counter.released(PHASE + 300 * TICK_NS) == 3 * FRAME


def test_a_failed_capture_is_taken_back_out_of_the_count() -> None:
    counter = learned()
    ticket = counter.request(PHASE + 200 * TICK_NS, 5 * FRAME)
    counter.failed(ticket, 5 * FRAME)
    assert counter.written == QUEUE + 2 * FRAME


def test_a_source_with_a_larger_queue_is_noticed_from_captures_that_never_wait() -> None:
    counter = TickCounter(FRAME, QUEUE)
    for probe in range(3):
        assert not counter.queue_suspect
        start = probe * 50 * MS
        ticket = counter.request(start, QUEUE + 3 * FRAME)
        counter.complete(ticket, start + 300_000)
    assert counter.queue_suspect


def test_captures_that_wait_raise_no_suspicion() -> None:
    counter = learned()
    for step in range(5):
        start = PHASE + (10 + 5 * step) * TICK_NS + 300_000
        ticket = counter.request(start, 3 * FRAME)
        counter.complete(ticket, start + 30 * MS)
    assert not counter.queue_suspect


class NativeSource:
    """A model of rtc's native buffer: one frame released per tick on the grid at ``PHASE``; a
    capture returns at once if the buffer then holds at most the queue, else on the tick
    that brings it down to the queue; each completion reaches Python ``lag`` later."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.buffer = 0
        self.now = 0

    def _run_to(self, when: int) -> None:
        next_tick = self.now - (self.now - PHASE) % TICK_NS + TICK_NS
        while next_tick <= when:
            self.buffer = max(self.buffer - FRAME, 0)
            next_tick += TICK_NS
        self.now = max(self.now, when)

    def capture(self, size: int, requested: int, lag: int = 100_000) -> int:
        self._run_to(requested + 200_000)
        self.buffer += size
        while self.buffer > self.queue:
            tick = self.now - (self.now - PHASE) % TICK_NS + TICK_NS
            self._run_to(tick)
        return self.now + lag

    def clear(self, when: int) -> None:
        self._run_to(when)
        self.buffer = 0


def fill(meter: QueueMeter, source: NativeSource, start: int, lags: dict[int, int]) -> None:
    """Run ``meter``'s fill against ``source`` from ``start``; capture ``i`` lags ``lags[i]``."""
    now = start
    index = 0
    while size := meter.next_fill():
        done = source.capture(size, now, lags.get(index, 100_000))
        meter.filled(size, now, done)
        now = done + 50_000
        index += 1
    source.clear(now)


@pytest.mark.parametrize("frames", [1, 5, 20, 100, 150])
@pytest.mark.parametrize("offset_ms", [1, 5, 7])
@pytest.mark.parametrize("told", [False, True])
def test_a_fill_measures_the_queue_exactly(frames: int, offset_ms: int, told: bool) -> None:
    queue = frames * FRAME
    meter = QueueMeter(FRAME, 240_000, first=queue - FRAME if told and frames > 1 else None)
    fill(meter, NativeSource(queue), PHASE + offset_ms * MS, {})
    assert meter.estimate() == queue
    assert meter.phase_ns is not None
    assert abs(meter.phase_ns - PHASE) <= 200_000


def test_a_fill_that_started_at_a_tick_cannot_tell_the_queue_but_knows_it_roughly() -> None:
    meter = QueueMeter(FRAME, 240_000)
    fill(meter, NativeSource(20 * FRAME), PHASE - 300_000, {})
    assert meter.estimate() is None
    assert meter.rough is not None
    assert abs(meter.rough - 20 * FRAME) <= FRAME


@pytest.mark.parametrize("seed", range(20))
def test_a_fill_whose_completions_come_late_by_up_to_3_ms_is_exact_or_says_it_cannot_tell(
    seed: int,
) -> None:
    rng = random.Random(seed)
    meter = QueueMeter(FRAME, 240_000)
    lags = {index: rng.randrange(50_000, 3 * MS) for index in range(40)}
    fill(meter, NativeSource(30 * FRAME), PHASE + rng.randrange(1 * MS, 7 * MS), lags)
    assert meter.estimate() in (None, 30 * FRAME)


@pytest.mark.parametrize("late", range(7))
def test_a_late_completion_never_raises_the_estimate(late: int) -> None:
    meter = QueueMeter(FRAME, 240_000)
    fill(meter, NativeSource(20 * FRAME), PHASE + 5 * MS, {late: 14 * MS})
    estimate = meter.estimate()
    assert estimate is None or estimate <= 20 * FRAME


def check(meter: QueueMeter, source: NativeSource, estimate: int, at: int) -> bool | None:
    """One check of ``estimate`` against ``source``, requested at ``at``."""
    source.clear(at - 100_000)
    held = source.capture(estimate, at)
    done = source.capture(FRAME, held)
    return meter.judge(at, held, held, done)


def test_a_check_confirms_the_true_queue_and_proves_a_larger_one() -> None:
    source = NativeSource(20 * FRAME)
    meter = QueueMeter(FRAME, 240_000)
    fill(meter, source, PHASE + 5 * MS, {})
    assert meter.estimate() == 20 * FRAME
    at = meter.check_start(PHASE + 100 * TICK_NS)
    assert check(meter, source, 20 * FRAME, at) is True
    assert check(meter, source, 19 * FRAME, at + 10 * TICK_NS) is False


def test_a_check_that_comes_too_late_tells_nothing() -> None:
    source = NativeSource(20 * FRAME)
    meter = QueueMeter(FRAME, 240_000)
    fill(meter, source, PHASE + 5 * MS, {})
    meter.estimate()
    late = meter.check_start(PHASE + 100 * TICK_NS) + 7 * MS
    assert check(meter, source, 20 * FRAME, late) is None
    assert check(meter, source, 21 * FRAME, meter.check_start(late)) is None


def test_a_grid_placed_late_moves_back_to_completions_just_before_it() -> None:
    counter = TickCounter(FRAME, QUEUE)
    counter.adopt_grid([PHASE + step * TICK_NS + 800_000 for step in range(5)])
    for step in range(30):
        start = PHASE + (10 + 20 * step) * TICK_NS + 5 * MS
        counter.cleared(counter.written)
        ticket = counter.request(start, QUEUE + FRAME)
        counter.complete(ticket, start + 5 * MS + 100_000)
    assert counter.phase_ns is not None
    assert abs(counter.phase_ns - PHASE) <= 300_000


@pytest.mark.parametrize("lag_ms", [0.1, 1.5])
def test_a_fill_for_a_told_queue_proves_a_larger_one(lag_ms: float) -> None:
    meter = QueueMeter(FRAME, 240_000, first=19 * FRAME)
    lags = {index: round(lag_ms * MS) for index in range(80)}
    fill(meter, NativeSource(40 * FRAME), PHASE + 5 * MS, lags)
    assert 20 * FRAME < meter.proven_floor() <= 40 * FRAME


@pytest.mark.parametrize(("made", "told", "waited"), [(20, 40, True), (40, 40, False)])
def test_a_fill_for_a_told_queue_shows_a_smaller_one_by_its_first_wait(
    made: int, told: int, waited: bool
) -> None:
    meter = QueueMeter(FRAME, 240_000, first=(told - 1) * FRAME)
    fill(meter, NativeSource(made * FRAME), PHASE + 5 * MS, {})
    assert meter.proven_floor() <= made * FRAME
    assert meter.first_waited() is waited


def test_a_loaded_process_that_delays_every_capture_shows_no_first_wait() -> None:
    meter = QueueMeter(FRAME, 240_000, first=39 * FRAME)
    lags = {index: 80 * MS for index in range(40)}
    fill(meter, NativeSource(40 * FRAME), PHASE + 5 * MS, lags)
    assert not meter.first_waited()


_LOADED_START = [
    (0, 1200, 20_570),
    (40_464, 7200, 68_994),
    (91_452, 7200, 120_845),
    (162_184, 10800, 195_414),
    (214_103, 2640, 243_151),
    (261_001, 960, 286_754),
    (292_085, 1200, 303_677),
    (304_862, 480, 348_383),
    (349_196, 960, 383_717),
    (879_580, 12000, 879_716),
    (879_782, 240, 879_886),
    (879_909, 240, 880_007),
]
"""One of 200 rtc sessions in one process on 2 cores (1000 ms queue), recorded: each capture
as (requested, samples, completion seen), in µs. The completions while the item started
reached Python 10-45 ms late, and the count settled on one (383.7 ms) at least 3 ticks
behind, as the three prompt captures at 879.7-880.0 ms then proved."""
_LOADED_GRID = [-476_376_210, -448_337_829, -393_247_839, -365_877_060, -334_552_595]
_ONE_CORE_START = [
    (0, 1200, 28_800),
    (37_227, 12000, 67_720),
    (76_649, 7200, 100_920),
    (117_023, 6240, 144_778),
    (158_742, 960, 183_019),
    (193_130, 960, 210_173),
    (219_665, 720, 228_831),
    (238_373, 480, 266_072),
    (269_112, 720, 283_445),
    (286_398, 480, 314_862),
    (316_478, 720, 336_327),
    (834_629, 12000, 835_768),
    (835_956, 240, 836_349),
    (836_483, 240, 836_664),
]
"""The same, with the 200 sessions on one core: the anchor at 336.3 ms came 20 ms after its
request, yet the count was 3 ticks behind, as the provisional ones before it were late too."""
_ONE_CORE_GRID = [-673_196_644, -667_118_778, -641_734_392, -599_861_037, -582_103_874]


def loaded_start(
    captures: list[tuple[int, int, int]] = _LOADED_START, grid: list[int] = _LOADED_GRID
) -> TickCounter:
    counter = TickCounter(FRAME, 24000)
    counter.adopt_grid(grid)
    for requested_us, count, completed_us in captures:
        ticket = counter.request(requested_us * 1000, count)
        counter.complete(ticket, completed_us * 1000)
    return counter


def test_catch_ups_that_late_completions_explain_raise_no_suspicion() -> None:
    """The three prompt captures at 879.7-880.0 ms made up 3 ticks the late completions
    had left the count behind, a tick each; they were taken for a queue larger than told,
    and the item failed. A count behind by no more than late completions explain is no
    such proof."""
    counter = loaded_start()
    assert not counter.queue_suspect
    assert counter.released(880_007_000) == counter.written - 24000
    counter = loaded_start(_ONE_CORE_START, _ONE_CORE_GRID)
    assert not counter.queue_suspect
    assert counter.released(836_664_000) == counter.written - 24000


def test_catch_ups_beyond_what_late_completions_explain_still_suspect_the_queue() -> None:
    """Once the count has made up all that late completions can explain, prompt captures
    that still find room prove a queue larger than told: the third one says so."""
    counter = loaded_start()
    now = 880_100_000

    def prompt_capture() -> None:
        nonlocal now
        ticket = counter.request(now, FRAME)
        counter.complete(ticket, now + 100_000)
        now += 200_000

    explained = 0
    while counter._behind_bound > 0:
        prompt_capture()
        explained += 1
        assert not counter.queue_suspect
    assert explained > 0
    for _ in range(2):
        prompt_capture()
        assert not counter.queue_suspect
    prompt_capture()
    assert counter.queue_suspect
