from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout.core.truncation import DeleteItem, TruncateItem, truncation_for

counts = st.integers(min_value=0, max_value=24000 * 3600)


def decide(heard: int, sent: int, *, completed: bool = False, **overrides: Any) -> object:
    arguments: dict[str, Any] = {"item_id": "item_1", "content_index": 0}
    arguments.update(overrides)
    return truncation_for(heard_samples=heard, sent_samples=sent, completed=completed, **arguments)


@given(heard=counts, sent=counts)
def test_a_completed_item_needs_no_event(heard: int, sent: int) -> None:
    assert decide(heard, sent, completed=True) is None


@given(heard=counts, sent=counts)
def test_an_interrupted_item_is_truncated_within_the_sent_audio_or_deleted(
    heard: int, sent: int
) -> None:
    action = decide(heard, sent)
    effective = min(heard, sent)
    if effective < 24:
        assert action == DeleteItem("item_1")
    else:
        assert isinstance(action, TruncateItem)
        assert action.audio_end_ms > 0
        assert action.audio_end_ms * 24 <= effective <= sent
        assert effective < (action.audio_end_ms + 1) * 24


@pytest.mark.parametrize(
    ("heard", "sent", "expected"),
    [
        (0, 48000, DeleteItem("item_1")),
        (23, 48000, DeleteItem("item_1")),
        (24, 48000, TruncateItem("item_1", 0, 1)),
        (43199, 72000, TruncateItem("item_1", 0, 1799)),
        (43200, 72000, TruncateItem("item_1", 0, 1800)),
        (50000, 48000, TruncateItem("item_1", 0, 2000)),
        (10, 10, DeleteItem("item_1")),
    ],
)
def test_boundaries_of_the_millisecond_rounding(heard: int, sent: int, expected: object) -> None:
    assert decide(heard, sent) == expected


def test_truncate_event_is_the_exact_realtime_api_json() -> None:
    action = truncation_for(
        item_id="item_abc",
        content_index=2,
        heard_samples=36000,
        sent_samples=72000,
        completed=False,
    )
    assert action is not None
    assert json.loads(json.dumps(action.to_event())) == {
        "type": "conversation.item.truncate",
        "item_id": "item_abc",
        "content_index": 2,
        "audio_end_ms": 1500,
    }


def test_delete_event_is_the_exact_realtime_api_json() -> None:
    action = decide(0, 72000, item_id="item_abc")
    assert isinstance(action, DeleteItem)
    assert action.to_event() == {"type": "conversation.item.delete", "item_id": "item_abc"}


def test_actions_are_frozen() -> None:
    action = TruncateItem("item_1", 0, 5)
    with pytest.raises(AttributeError):
        action.audio_end_ms = 6  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"item_id": ""}, "item_id"),
        ({"item_id": 7}, "item_id"),
        ({"content_index": -1}, "content_index"),
        ({"content_index": True}, "content_index"),
        ({"heard_samples": -1}, "heard_samples"),
        ({"sent_samples": 1.5}, "sent_samples"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 8000.0}, "sample_rate"),
    ],
)
def test_bad_arguments_are_named_in_the_error(overrides: dict[str, Any], named: str) -> None:
    arguments: dict[str, Any] = {
        "item_id": "item_1",
        "content_index": 0,
        "heard_samples": 100,
        "sent_samples": 100,
        "completed": False,
    }
    arguments.update(overrides)
    with pytest.raises(ValueError, match=named):
        truncation_for(**arguments)


@pytest.mark.parametrize(
    ("heard", "expected_ms"),
    [(7, None), (8, 1), (15, 1), (16, 2), (8000, 1000)],
)
def test_g711_items_count_milliseconds_at_8_khz(heard: int, expected_ms: int | None) -> None:
    action = truncation_for(
        item_id="item_1",
        content_index=0,
        heard_samples=heard,
        sent_samples=8000,
        completed=False,
        sample_rate=8000,
    )
    if expected_ms is None:
        assert action == DeleteItem("item_1")
    else:
        assert action == TruncateItem("item_1", 0, expected_ms)
