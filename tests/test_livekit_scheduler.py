"""LiveKitScheduler on synthetic native timelines: every mode, stop and late completion.

The native source is ``livekit_timeline.Native`` (FACTS.md's semantics on integers), so each
test runs in virtual time, without asyncio or rtc, and checks what a listener would hear.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from agent_playout.sinks.livekit.meter import SourceQueueError, second_opinion, settled_queue
from agent_playout.sinks.livekit.modes import (
    CLEAR,
    MOVES,
    QUEUE_TAIL,
    Mode,
    SchedulerError,
    Submit,
)
from agent_playout.sinks.livekit.scheduler import LiveKitScheduler
from agent_playout.sinks.livekit.ticks import GUARD_AFTER_NS, TICK_NS, TickCounter

from .conftest import ramp
from .livekit_timeline import FRAME, MS, PHASE, Timeline
from .livekit_truth import heard_through

ITEM = ramp(36000, start=11)
"""1.5 s of distinct samples."""


def cut_at(timeline: Timeline, cut_ns: int, signal: np.ndarray = ITEM) -> tuple[int, int] | None:
    """Play ``signal``, interrupt it at ``cut_ns``, let the tail out: what was heard of it."""
    timeline.feed(signal)
    timeline.run_until(cut_ns)
    timeline.interrupt()
    timeline.run_until(cut_ns + 2000 * MS)
    return heard_through(timeline.native.audible(), signal, timeline.fade)


def assert_exact(timeline: Timeline, went_out: tuple[int, int] | None) -> None:
    """The count is what the source released, and that is an exact prefix plus its fade."""
    assert went_out == (timeline.played(), timeline.native.audible().size)
    assert timeline.played() == timeline.native.released
    assert timeline.failures == []
    assert timeline.warnings == []


# -- modes and illegal moves ------------------------------------------------------------


def test_audio_waits_while_the_queue_is_learned() -> None:
    timeline = Timeline(200, learned=False)
    timeline.feed(ITEM)
    timeline.run_until(100 * MS)
    assert timeline.scheduler.mode is Mode.LEARNING
    assert timeline.native.captures == []
    assert timeline.scheduler.samples_written == timeline.scheduler.held.pending_count > 0


def test_learning_twice_is_refused_with_the_mode_named() -> None:
    timeline = Timeline(200)
    with pytest.raises(SchedulerError, match="learned in mode idle: only in learning"):
        timeline.scheduler.learned(TickCounter(FRAME, 4800), 0)


def test_a_timer_nobody_armed_is_refused() -> None:
    timeline = Timeline(200)
    with pytest.raises(SchedulerError, match="timer_fired in mode idle"):
        timeline.scheduler.timer_fired(0)


def test_a_capture_never_submitted_is_refused() -> None:
    timeline = Timeline(200)
    with pytest.raises(SchedulerError, match="capture_requested for capture 1, which was never"):
        timeline.scheduler.capture_requested(1, FRAME, 0)
    with pytest.raises(SchedulerError, match="capture_finished for capture 7"):
        timeline.scheduler.capture_finished(7, 0)


def test_no_mode_leads_back_to_learning() -> None:
    assert all(Mode.LEARNING not in MOVES[mode] for mode in Mode if mode is not Mode.LEARNING)


def test_an_item_moves_from_capturing_to_waiting_for_room_to_idle_and_plays_whole() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    assert timeline.scheduler.mode is Mode.CAPTURING
    seen = set()
    for ms in range(0, 1400, 2):
        timeline.run_until(ms * MS)
        seen.add(timeline.scheduler.mode)
    timeline.flush()
    timeline.run_until(2000 * MS)
    assert {Mode.CAPTURING, Mode.ARMED} <= seen
    assert timeline.scheduler.mode is Mode.IDLE
    assert np.array_equal(timeline.native.audible(), ITEM)
    assert timeline.played() == ITEM.size


@pytest.mark.parametrize("queue_ms", [50, 200, 1000])
def test_the_count_is_what_the_source_released_at_every_moment(queue_ms: int) -> None:
    timeline = Timeline(queue_ms)
    timeline.feed(ITEM)
    for ms in range(0, 1600):
        timeline.run_until(ms * MS + 700_000)
        assert timeline.played() == timeline.native.released
    timeline.flush()
    timeline.run_until(2000 * MS)
    assert np.array_equal(timeline.native.audible(), ITEM)


def test_captures_are_few_and_large_with_one_that_waits_at_a_time() -> None:
    timeline = Timeline(1000)
    timeline.feed(ITEM)
    timeline.run_until(1000 * MS)
    timeline.flush()
    timeline.run_until(2000 * MS)
    assert max(timeline.native.captures) == 12000
    assert len(timeline.native.captures) <= 8


# -- interrupts at every phase ----------------------------------------------------------


@pytest.mark.parametrize("queue_ms", [50, 200, 1000])
def test_an_interrupt_at_any_moment_reports_exactly_what_was_heard(queue_ms: int) -> None:
    for cut_ms in range(0, 700, 3):
        timeline = Timeline(queue_ms)
        went_out = cut_at(timeline, cut_ms * MS + 137_000)
        assert_exact(timeline, went_out)
        assert timeline.scheduler.mode is Mode.IDLE


@pytest.mark.parametrize("queue_ms", [50, 200])
def test_an_interrupt_while_a_capture_waits_clears_once_it_completed(queue_ms: int) -> None:
    timeline = Timeline(queue_ms)
    timeline.feed(ITEM)
    now = 0
    while not (timeline.native.waiting and now > 300 * MS):
        now += 100_000
        timeline.run_until(now)
    timeline.interrupt()
    assert timeline.scheduler.mode is Mode.STOPPING
    assert timeline.native.clears == []
    timeline.run_until(now + 1000 * MS)
    assert not timeline.native.waiting
    assert_exact(timeline, heard_through(timeline.native.audible(), ITEM, FRAME))


@pytest.mark.parametrize("lag_ms", [0.6, 1.0, 1.5, 1.9])
@pytest.mark.parametrize("after_ms", [0.1, 0.5, 1.0, 1.8])
def test_an_interrupt_just_after_a_tick_the_native_thread_runs_late_counts_exactly(
    lag_ms: float, after_ms: float
) -> None:
    tick = PHASE + 40 * TICK_NS
    lag = round(lag_ms * MS)
    timeline = Timeline(1000, tick_lag=lambda grid_ns: lag if grid_ns == tick else 0)
    went_out = cut_at(timeline, tick + round(after_ms * MS))
    assert_exact(timeline, went_out)


def test_an_interrupt_just_before_a_tick_is_put_off_until_just_after_it() -> None:
    timeline = Timeline(1000)
    tick = PHASE + 40 * TICK_NS
    went_out = cut_at(timeline, tick - MS)
    assert timeline.native.clears == [tick + GUARD_AFTER_NS]
    assert_exact(timeline, went_out)


def test_an_interrupt_while_the_queue_is_learned_drops_the_audio() -> None:
    timeline = Timeline(200, learned=False)
    timeline.feed(ITEM)
    timeline.run_until(50 * MS)
    timeline.interrupt()
    timeline.act(timeline.scheduler.learned(timeline.counter, timeline.now))
    timeline.run_until(1000 * MS)
    assert timeline.native.captures == []
    assert timeline.scheduler.samples_written == 0


def test_an_interrupt_while_flushing_ends_the_flush_at_the_cut() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    timeline.run_until(1000 * MS)
    target = timeline.flush()
    epoch = timeline.scheduler.epoch
    timeline.run_until(1200 * MS)
    timeline.interrupt()
    timeline.run_until(3000 * MS)
    assert timeline.scheduler.epoch == epoch + 1
    assert timeline.played() < target
    assert_exact(timeline, heard_through(timeline.native.audible(), ITEM, FRAME))


def test_an_interrupt_right_after_the_last_sample_played_adds_nothing() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    timeline.run_until(500 * MS)
    timeline.flush()
    timeline.run_until(2000 * MS)
    timeline.interrupt()
    timeline.run_until(3000 * MS)
    assert timeline.played() == ITEM.size
    assert np.array_equal(timeline.native.audible(), ITEM)


@pytest.mark.parametrize("fade", [0, FRAME, 3 * FRAME])
def test_the_tail_is_the_next_samples_faded_out_in_whole_frames(fade: int) -> None:
    timeline = Timeline(200, fade=fade)
    went_out = cut_at(timeline, 333 * MS)
    assert went_out is not None
    assert timeline.played() % FRAME == 0
    assert_exact(timeline, went_out)


def test_a_clear_that_runs_at_once_empties_the_source_before_its_tail_is_made() -> None:
    timeline = Timeline(1000, fade=FRAME)
    timeline.feed(ITEM)
    timeline.run_until(PHASE + 40 * TICK_NS + 7 * MS)  # clear of the guards around the ticks
    scheduler = timeline.scheduler
    pending = scheduler.held.pending_count
    actions = scheduler.clear(timeline.now)
    assert actions[-2:] == [CLEAR, QUEUE_TAIL]
    assert not any(isinstance(action, Submit) for action in actions)
    assert scheduler.held.pending_count == pending  # the tail is not made yet
    timeline.act(actions[:-1])
    tail = scheduler.queue_tail(timeline.now)
    assert [action.count for action in tail if isinstance(action, Submit)] == [FRAME]
    with pytest.raises(SchedulerError, match="queue_tail with no stop that cleared at once"):
        scheduler.queue_tail(timeline.now)
    timeline.act(tail)
    timeline.run_until(timeline.now + 1000 * MS)
    assert_exact(timeline, heard_through(timeline.native.audible(), ITEM, FRAME))


def test_a_native_clear_that_raises_still_leaves_only_the_tail_to_play() -> None:
    timeline = Timeline(1000, fade=FRAME)
    timeline.feed(ITEM)
    timeline.run_until(PHASE + 40 * TICK_NS + 7 * MS)
    scheduler = timeline.scheduler
    assert scheduler.held.pending_count > FRAME
    actions = scheduler.clear(timeline.now)
    assert actions[-2:] == [CLEAR, QUEUE_TAIL]
    scheduler.clear_failed()  # what the shell does when rtc's clear_queue() raises
    assert scheduler.held.pending_count == FRAME
    with pytest.raises(SchedulerError, match="queue_tail with no stop that cleared at once"):
        scheduler.queue_tail(timeline.now)


# -- pause and resume -------------------------------------------------------------------


def _faded_around(signal: np.ndarray, at: int, fade: int) -> np.ndarray:
    """``signal`` faded out just before ``at`` and in again from it (a pause)."""
    steps = np.linspace(0.0, 1.0, fade + 1, dtype=np.float32)
    expected = signal.copy()
    expected[at - fade : at] = (signal[at - fade : at] * steps[::-1][1:]).astype(np.int16)
    expected[at : at + fade] = (signal[at : at + fade] * steps[1:]).astype(np.int16)
    return expected[expected != 0]


@pytest.mark.parametrize("queue_ms", [200, 1000])
def test_pause_holds_the_rest_and_resume_continues_from_the_next_sample(queue_ms: int) -> None:
    timeline = Timeline(queue_ms)
    timeline.feed(ITEM)
    timeline.run_until(300 * MS)
    timeline.act(timeline.scheduler.pause(timeline.now))
    timeline.run_until(350 * MS)
    stopped_at = timeline.played()
    timeline.run_until(800 * MS)
    assert timeline.played() == stopped_at == timeline.native.released
    assert timeline.scheduler.paused
    timeline.act(timeline.scheduler.resume(timeline.now))
    timeline.run_until(3000 * MS)
    timeline.flush()
    timeline.run_until(4000 * MS)
    assert np.array_equal(timeline.native.audible(), _faded_around(ITEM, stopped_at, FRAME))
    assert timeline.played() == ITEM.size


def test_pause_twice_and_resume_twice_are_one_pause() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    timeline.run_until(300 * MS)
    scheduler = timeline.scheduler
    timeline.act(scheduler.pause(timeline.now))
    assert scheduler.pause(timeline.now) == []
    timeline.run_until(400 * MS)
    stopped_at = timeline.played()
    timeline.act(scheduler.resume(timeline.now))
    assert scheduler.resume(timeline.now) == []
    timeline.run_until(3000 * MS)
    timeline.flush()
    timeline.run_until(4000 * MS)
    assert np.array_equal(timeline.native.audible(), _faded_around(ITEM, stopped_at, FRAME))


def test_an_interrupt_while_paused_plays_nothing_more() -> None:
    timeline = Timeline(1000)
    timeline.feed(ITEM)
    timeline.run_until(250 * MS)
    timeline.act(timeline.scheduler.pause(timeline.now))
    timeline.run_until(300 * MS)
    stopped_at = timeline.played()
    timeline.interrupt()
    timeline.act(timeline.scheduler.resume(timeline.now))
    timeline.run_until(2000 * MS)
    went_out = heard_through(timeline.native.audible(), ITEM, FRAME)
    assert went_out == (stopped_at, timeline.native.audible().size)
    assert timeline.played() == stopped_at


def test_an_interrupt_right_after_a_pause_keeps_only_the_pause_tail() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    timeline.run_until(300 * MS)
    timeline.act(timeline.scheduler.pause(timeline.now))
    timeline.interrupt()
    timeline.run_until(2000 * MS)
    assert_exact(timeline, heard_through(timeline.native.audible(), ITEM, FRAME))


# -- late completions -------------------------------------------------------------------


@pytest.mark.parametrize("late_ms", [11, 15, 25, 45])
@pytest.mark.parametrize("queue_ms", [200, 1000])
def test_a_settling_capture_that_comes_ticks_late_never_shifts_the_count(
    late_ms: int, queue_ms: int
) -> None:
    """The flake at ~0.1 s into an item: the capture that settles the count of audio put
    into the empty source came back over a tick late, and was anchored a tick late. (A cut
    before it came back waits for it: see the test of a clear that runs late.)"""
    for cut_ms in range(30 + late_ms, 400, 11):
        timeline = Timeline(queue_ms, late=lambda n: late_ms * MS if n == 2 else 100_000)
        assert_exact(timeline, cut_at(timeline, cut_ms * MS))


@pytest.mark.parametrize("queue_ms", [50, 200, 1000])
def test_completions_up_to_8_ms_late_keep_every_position_exact_and_confirmed(queue_ms: int) -> None:
    rng = random.Random(queue_ms)
    for cut_ms in range(20, 900, 23):
        timeline = Timeline(queue_ms, late=lambda n: rng.randrange(0, 8 * MS))
        assert_exact(timeline, cut_at(timeline, cut_ms * MS))


@pytest.mark.parametrize("insert_us", [300, 900])
@pytest.mark.parametrize("queue_ms", [50, 200, 1000])
def test_audio_inserted_late_within_the_native_bound_keeps_positions_exact(
    insert_us: int, queue_ms: int
) -> None:
    """The native side inserts a capture's audio up to ``INSERT_NS`` after its request."""
    for cut_ms in range(40, 500, 29):
        timeline = Timeline(
            queue_ms, insert_ns=insert_us * 1000, late=lambda n: 12 * MS if n == 2 else 100_000
        )
        assert_exact(timeline, cut_at(timeline, cut_ms * MS))


@pytest.mark.parametrize("late_ms", [2, 3, 4])
@pytest.mark.parametrize("queue_ms", [200, 1000])
def test_a_grid_learned_from_late_completions_is_placed_again_on_prompt_ones(
    late_ms: int, queue_ms: int
) -> None:
    """A grid learned at a loaded start is late, so each anchor lands a tick early and the
    count runs a frame ahead; prompt completions that keep coming before it move it back."""
    signal = ramp(24000 * 8, start=3)
    for cut_ms in (3100, 4700, 6300):
        timeline = Timeline(queue_ms)
        counter = timeline.counter
        counter._offsets.clear()
        counter.adopt_grid([PHASE + late_ms * MS + k * TICK_NS for k in range(5)])
        assert_exact(timeline, cut_at(timeline, cut_ms * MS, signal))
        assert counter.phase_ns is not None
        assert abs(counter.phase_ns - PHASE) < MS


def test_completions_late_at_random_never_move_the_grid() -> None:
    rng = random.Random(3)
    timeline = Timeline(50, late=lambda n: rng.randrange(0, 9 * MS))
    timeline.feed(ramp(24000 * 8, start=3))
    timeline.run_until(7000 * MS)
    assert timeline.counter.phase_ns is not None
    assert 0 <= timeline.counter.phase_ns - PHASE < MS


def test_a_count_left_behind_catches_up_on_a_capture_that_did_not_wait() -> None:
    timeline = Timeline(200, late=lambda n: 25 * MS if n == 2 else 100_000)
    timeline.feed(ITEM)
    for ms in range(0, 600):
        timeline.run_until(ms * MS + 700_000)
    assert timeline.played() == timeline.native.released
    assert not timeline.counter.provisional


def interrupted_while_a_capture_waits(late_ns: int) -> Timeline:
    """Play ``ITEM`` on a 200 ms queue, interrupt it while a capture waits for room, with
    every completion from then on ``late_ns`` late, and let the stop finish."""
    timeline = Timeline(200)
    timeline.feed(ITEM)
    now = 0
    while not (timeline.native.waiting and now > 300 * MS):
        now += 100_000
        timeline.run_until(now)
    timeline.late = lambda n: late_ns
    timeline.interrupt()
    timeline.run_until(now + 1000 * MS)
    return timeline


def test_a_clear_that_runs_over_a_tick_late_says_the_position_is_short_and_unconfirmed() -> None:
    timeline = interrupted_while_a_capture_waits(25 * MS)
    assert timeline.warnings
    assert (
        "the count may be up to 2 x 10 ms short, and the item's position is"
        in (timeline.warnings[0])
    )
    assert timeline.played() == timeline.native.released - 2 * FRAME
    stop = timeline.played()
    assert timeline.scheduler.late_ticks(0, stop + FRAME) == 2
    assert timeline.scheduler.late_ticks(stop + 1, stop + FRAME) == 0


def test_a_clear_that_lands_too_near_the_next_tick_is_unconfirmed_though_in_time() -> None:
    """A completion 9 ms late leaves the clear under 1.5 ms before the tick that releases
    the frame after the stop: it may race it natively, so the count is not confirmed."""
    timeline = interrupted_while_a_capture_waits(9 * MS)
    assert timeline.played() == timeline.native.released
    stop = timeline.played() - FRAME
    assert timeline.scheduler.late_ticks(stop, stop + FRAME) == 1
    assert "1 tick(s) may have released audio first" in timeline.warnings[0]


def test_a_clear_in_time_is_recorded_as_not_late() -> None:
    timeline = Timeline(1000)
    went_out = cut_at(timeline, PHASE + 40 * TICK_NS + 5 * MS)
    assert_exact(timeline, went_out)
    [record] = timeline.scheduler.stops
    assert record.stop == timeline.played() - FRAME
    assert record.late_ticks == 0
    assert timeline.scheduler.late_ticks(0, timeline.played()) == 0


# -- failures and underruns -------------------------------------------------------------


def test_a_failed_capture_is_reported_and_taken_out_of_the_count() -> None:
    timeline = Timeline(200, failing=frozenset({1}))
    timeline.feed(ITEM)
    timeline.run_until(50 * MS)
    assert [str(error) for error in timeline.failures] == ["InvalidState - failed to capture frame"]
    assert timeline.counter.written == timeline.native.released + timeline.native.buffer.size


def test_a_failed_fade_out_is_only_a_warning() -> None:
    timeline = Timeline(200)
    timeline.feed(ITEM)
    timeline.run_until(300 * MS)
    captures = len(timeline.native.captures)
    timeline.failing.add(captures)
    timeline.interrupt()
    timeline.run_until(1000 * MS)
    assert timeline.failures == []
    assert timeline.warnings == [
        "the fade-out after a stop could not be queued: InvalidState - failed to capture frame"
    ]
    assert timeline.played() == timeline.native.released


def test_a_source_with_a_larger_queue_than_told_is_a_queue_error() -> None:
    timeline = Timeline(200, native_queue_ms=1000)
    timeline.feed(ITEM)
    timeline.run_until(1000 * MS)
    assert timeline.failures
    assert isinstance(timeline.failures[0], SourceQueueError)
    assert "queue_size_ms=200 allows" in str(timeline.failures[0])


def test_late_audio_is_one_underrun_as_long_as_the_source_was_dry() -> None:
    timeline = Timeline(200)
    half = ITEM.size // 2
    timeline.feed(ITEM[:half])
    timeline.run_until(500 * MS)
    timeline.stop_feeding()
    timeline.run_until(1200 * MS)
    scheduler = timeline.scheduler
    assert timeline.native.emptied_ns is not None
    assert scheduler.underruns(timeline.now) == 1
    dry = timeline.now - timeline.native.emptied_ns
    assert scheduler.underrun_ns(timeline.now) == dry
    timeline.feed(ITEM[half:])
    timeline.run_until(2000 * MS)
    timeline.flush()
    timeline.run_until(3000 * MS)
    assert scheduler.underruns(timeline.now) == 1
    assert scheduler.underrun_ns(timeline.now) == dry
    assert np.array_equal(timeline.native.audible(), ITEM)


def test_a_producer_waits_while_a_whole_batch_is_pending() -> None:
    scheduler = LiveKitScheduler(
        1, FRAME, TickCounter(FRAME, 4800), fade=FRAME, exact=True, capture_ms=500
    )
    scheduler.queued(ITEM[:2399].copy(), 2399, 0)
    assert not scheduler.backlogged()
    scheduler.queued(ITEM[2399:2400].copy(), 1, 0)
    assert scheduler.backlogged()


# -- the queue measurement's verdict ----------------------------------------------------


def test_a_measured_queue_other_than_the_told_one_is_refused() -> None:
    with pytest.raises(SourceQueueError, match="queue is 1000 ms, not queue_size_ms=200"):
        settled_queue(TickCounter(FRAME, 4800), 0, TickCounter(FRAME, 24000), 24000)


def test_a_queue_neither_told_nor_measured_is_refused() -> None:
    with pytest.raises(SourceQueueError, match="could not be measured"):
        settled_queue(None, 0, None, 24000)


def test_a_told_queue_the_fill_proved_too_small_is_refused_even_unmeasured() -> None:
    with pytest.raises(SourceQueueError, match="holds at least 300 ms, not queue_size_ms=200"):
        settled_queue(TickCounter(FRAME, 4800), 7200, None, 24000)


def test_a_told_queue_that_could_not_be_checked_is_kept_unconfirmed() -> None:
    told = TickCounter(FRAME, 4800)
    assert settled_queue(told, 4800, None, 24000) == (told, True)
    measured = TickCounter(FRAME, 4800)
    assert settled_queue(told, 0, measured, 24000) == (measured, False)


def test_a_second_measurement_that_finds_the_told_queue_wins() -> None:
    told, short = TickCounter(FRAME, 24000), TickCounter(FRAME, 23520)
    again = TickCounter(FRAME, 24000)
    assert second_opinion(told, short, again) is again


def test_two_measurements_that_agree_on_another_queue_are_refused() -> None:
    told, first, again = (
        TickCounter(FRAME, 4800),
        TickCounter(FRAME, 24000),
        TickCounter(FRAME, 24000),
    )
    with pytest.raises(SourceQueueError, match="queue is 1000 ms, not queue_size_ms=200"):
        settled_queue(told, 0, second_opinion(told, first, again), 24000)


def test_measurements_that_disagree_leave_the_told_queue_unconfirmed() -> None:
    told = TickCounter(FRAME, 24000)
    for again in (TickCounter(FRAME, 23280), None):
        verdict = second_opinion(told, TickCounter(FRAME, 23520), again)
        assert verdict is None
        assert settled_queue(told, 0, verdict, 24000) == (told, True)
