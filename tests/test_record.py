"""``ItemRecord``: an item's state changes only in the order its lifecycle allows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent_playout import AudioFrame, ItemState, NullSink, PlayoutStateError, VirtualClock
from agent_playout.engine.record import ItemRecord, RunStage


def record() -> ItemRecord:
    return ItemRecord("it_1", 0, input_rate=24000, play_ns=0)


async def test_a_record_runs_stops_and_is_released_in_that_order() -> None:
    item = record()
    assert item.stage is RunStage.WAITING
    item.run([])
    assert item.stage is RunStage.RUNNING
    assert not item.stopped
    assert item.stop(interrupted=False)
    assert item.stopped
    assert not item.stop_requested.done()
    item.stop_done()
    assert item.stop_requested.done()
    item.release()
    assert item.released
    assert item.stopped
    assert not item.interrupted


async def test_an_item_stopped_while_waiting_never_runs() -> None:
    item = record()
    assert item.stop(interrupted=True)
    assert item.interrupted
    with pytest.raises(PlayoutStateError, match="'it_1': cannot go from stopped to running"):
        item.run([])


async def test_a_stop_happens_once_and_a_second_does_not_interrupt_a_completed_item() -> None:
    item = record()
    item.run([])
    assert item.stop(interrupted=False)
    assert not item.stop(interrupted=True)
    assert not item.interrupted


@pytest.mark.parametrize("stage", ["waiting", "running", "released"])
async def test_release_needs_a_stopped_item(stage: str) -> None:
    item = record()
    if stage != "waiting":
        item.run([])
    if stage == "released":
        item.stop(interrupted=False)
        item.release()
    with pytest.raises(PlayoutStateError, match=f"'it_1': cannot go from {stage} to released"):
        item.release()


async def test_a_record_runs_only_once() -> None:
    item = record()
    item.run([])
    with pytest.raises(PlayoutStateError, match="cannot go from running to running"):
        item.run([])


async def test_the_first_error_stays_and_cuts_the_item_short() -> None:
    item = record()
    first, second = ValueError("first"), ValueError("second")
    assert item.fail(first)
    assert not item.fail(second)
    assert item.error is first
    assert item.interrupted


async def test_an_error_after_the_stop_is_refused() -> None:
    item = record()
    item.stop(interrupted=False)
    with pytest.raises(PlayoutStateError, match="'it_1' failed after it stopped"):
        item.fail(ValueError("late"))
    assert item.error is None


async def test_the_first_text_error_stays_and_does_not_end_the_item() -> None:
    item = record()
    first = ValueError("first")
    assert item.fail_text(first)
    assert not item.fail_text(ValueError("second"))
    assert item.text_error is first
    assert not item.interrupted
    assert item.error is None


async def test_the_stop_event_is_claimed_once_and_only_for_an_item_that_began() -> None:
    item = record()
    assert not item.claim_stop_event()
    item.begin(5, 16000)
    assert item.started
    assert item.first_frame_ns == 5
    assert item.input_rate == 16000
    assert item.claim_stop_event()
    assert not item.claim_stop_event()


async def test_an_item_begins_once() -> None:
    item = record()
    item.begin(5, 16000)
    with pytest.raises(PlayoutStateError, match="'it_1' already began"):
        item.begin(6, 24000)
    assert item.first_frame_ns == 5


async def test_waiters_are_woken_by_the_release_and_a_cancelled_one_leaves_the_others() -> None:
    item = record()
    cancelled = asyncio.create_task(item.wait_released())
    kept = asyncio.create_task(item.wait_released())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert cancelled.cancelled()
    item.stop(interrupted=False)
    item.release()
    await asyncio.sleep(0)
    assert kept.done()
    assert kept.result() is None
    await item.wait_released()  # returns at once once released


async def test_positions_follow_the_sink_until_final_and_then_never_read_it() -> None:
    clock = VirtualClock()
    sink = NullSink(clock=clock, queue_size_ms=2000)
    item = record()
    item.begin(0, 16000)
    item.receive(16000)
    item.push(24000, sink.samples_written)
    await sink.capture_frame(AudioFrame(np.zeros(24000, np.int16), 24000, 1, 24000))
    assert item.played_on(sink) == 0
    await clock.advance(0.5)
    assert item.played_on(sink) == sink.samples_played == 12000
    assert item.input_played_on(sink) == 8000
    item.interrupt_at(sink.samples_played)
    assert item.timeline.state is ItemState.INTERRUPTED
    await clock.advance(0.25)  # the sink plays on (the next item's audio, say)
    assert sink.samples_played > 12000
    assert item.played_on(sink) == 12000
    assert item.input_played_on(sink) == 8000


async def test_a_completed_item_reports_all_it_received_at_its_own_rate() -> None:
    sink = NullSink(clock=VirtualClock())
    item = record()
    item.begin(0, 16000)
    item.receive(1001)
    item.push(1502, 0)
    item.complete()
    assert item.played_on(sink) == 1502
    assert item.input_played_on(sink) == 1001


async def test_pause_and_resume_move_the_timeline_and_a_finished_item_cannot_pause() -> None:
    item = record()
    item.push(100, 0)
    item.pause()
    assert item.timeline.state is ItemState.PAUSED
    item.resume()
    assert item.timeline.state is ItemState.PLAYING
    item.complete()
    with pytest.raises(PlayoutStateError, match="cannot go from finished to paused"):
        item.pause()


async def test_underruns_are_the_share_since_the_first_push_frozen_at_the_stop() -> None:
    item = record()
    assert not item.underruns_live
    item.start_underruns((1, 10))
    assert item.underruns_live
    assert item.underruns((3, 50)) == (2, 40)
    item.freeze_underruns((4, 60))
    assert not item.underruns_live
    assert item.underruns(None) == (3, 50)
