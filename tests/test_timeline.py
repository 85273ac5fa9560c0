from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout import ItemState, PlayoutStateError
from agent_playout.core.timeline import ItemTimeline


def test_played_is_zero_until_the_first_push_and_relative_to_base() -> None:
    timeline = ItemTimeline("it")
    assert timeline.observe(5000) == 0
    timeline.push(1200, sink_write_position=4000)
    assert timeline.state is ItemState.PLAYING
    assert timeline.observe(3990) == 0
    assert timeline.observe(4500) == 500
    assert timeline.observe(99999) == 1200


def test_completion_reports_exactly_what_was_pushed() -> None:
    timeline = ItemTimeline("it")
    timeline.push(72000, sink_write_position=0)
    timeline.observe(71000)
    timeline.complete()
    assert timeline.played == 72000
    assert timeline.state is ItemState.FINISHED


def test_interrupt_freezes_the_count() -> None:
    timeline = ItemTimeline("it")
    timeline.push(48000, sink_write_position=100)
    timeline.interrupt(sink_played=10100)
    assert timeline.played == 10000
    assert timeline.observe(30000) == 10000


@pytest.mark.parametrize(
    ("steps", "illegal"),
    [
        (["complete"], "complete"),
        (["interrupt"], "pause"),
        (["pause"], "complete"),
    ],
)
def test_illegal_transitions_raise_precisely(steps: list[str], illegal: str) -> None:
    timeline = ItemTimeline("it_9")
    timeline.push(10, sink_write_position=0)
    for step in steps:
        getattr(timeline, step)(*([None] if step == "interrupt" else []))
    with pytest.raises(PlayoutStateError, match="item 'it_9': cannot go from"):
        getattr(timeline, illegal)()


def test_push_after_the_end_is_refused() -> None:
    timeline = ItemTimeline("it")
    timeline.interrupt(None)
    with pytest.raises(PlayoutStateError, match="interrupted"):
        timeline.push(10, sink_write_position=0)


@given(
    base=st.integers(0, 10**9),
    pushes=st.lists(st.integers(0, 5000), min_size=1, max_size=20),
    observations=st.lists(st.integers(0, 10**9 + 10**6), max_size=30),
)
def test_played_is_monotonic_and_between_zero_and_pushed(
    base: int, pushes: list[int], observations: list[int]
) -> None:
    timeline = ItemTimeline("it")
    for count in pushes:
        timeline.push(count, sink_write_position=base)
    previous = 0
    for sink_played in observations:
        played = timeline.observe(sink_played)
        assert previous <= played <= timeline.pushed
        previous = played
