"""TickCounter: the count of what a source released, on synthetic native timelines."""

from __future__ import annotations

import logging

import pytest

from agent_playout.sinks.ticks import GUARD_AFTER_NS, INSERT_NS, TICK_NS, TickCounter

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
    now = PHASE + 2 * TICK_NS - 6 * MS
    assert counter.stop_point(now, exact=True) == (now, 2 * FRAME)
    assert counter.stop_point(PHASE + 2 * TICK_NS - MS, exact=False) == (
        PHASE + 2 * TICK_NS - MS,
        2 * FRAME,
    )


def test_a_clear_right_after_a_request_waits_for_the_insertion() -> None:
    counter = learned()
    requested = PHASE + 200 * TICK_NS + 2 * MS
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


def test_a_source_with_a_larger_queue_is_noticed_from_captures_that_never_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = TickCounter(FRAME, QUEUE)
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        for probe in range(3):
            assert not counter.queue_suspect
            start = probe * 50 * MS
            ticket = counter.request(start, QUEUE + 3 * FRAME)
            counter.complete(ticket, start + 300_000)
    assert counter.queue_suspect
    assert "queue_size_ms=100" in caplog.text


def test_captures_that_wait_raise_no_suspicion(caplog: pytest.LogCaptureFixture) -> None:
    counter = learned()
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        for step in range(5):
            start = PHASE + (10 + 5 * step) * TICK_NS + 300_000
            ticket = counter.request(start, 3 * FRAME)
            counter.complete(ticket, start + 30 * MS)
    assert not counter.queue_suspect
    assert caplog.text == ""
