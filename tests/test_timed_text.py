"""``TimedText``: text with its time in the item's audio, refused by name when impossible."""

from __future__ import annotations

import pytest

from agent_playout import TimedText
from agent_playout.transcript.aligner import TranscriptAligner
from agent_playout.transcript.timed_text import TIMED_TEXT_MAX_SECONDS

RATE = 24000


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"text": "x", "start": 1.0, "end": 0.5}, ValueError, "ends before it starts"),
        ({"text": "x", "start": float("nan"), "end": 1.0}, ValueError, "finite"),
        ({"text": 3, "start": 0.0, "end": 1.0}, TypeError, "text must be str"),
        ({"text": "x", "start": "0", "end": 1.0}, TypeError, "must be a number"),
        ({"text": "x", "start": 1e305, "end": 1e305}, ValueError, "TimedText.start must be"),
        ({"text": "x", "start": 0.0, "end": 1e305}, ValueError, "TimedText.end must be"),
        ({"text": "x", "start": float("inf"), "end": 1.0}, ValueError, "TimedText.start"),
        ({"text": "x", "start": -0.5, "end": 1.0}, ValueError, "TimedText.start must be"),
        ({"text": "x", "start": 0.0, "end": -1.0}, ValueError, "TimedText.end must be"),
        ({"text": "x", "start": 2.0, "end": 1.0}, ValueError, "TimedText.end must not be"),
    ],
)
def test_impossible_timed_text_is_refused_by_name(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TimedText(**kwargs)  # type: ignore[arg-type]


def test_a_timed_text_may_reach_the_documented_latest_time() -> None:
    word = TimedText("late", TIMED_TEXT_MAX_SECONDS, TIMED_TEXT_MAX_SECONDS)
    aligner = TranscriptAligner(RATE)
    aligner.push_text(word)
    assert aligner.word_start(0) == round(TIMED_TEXT_MAX_SECONDS * RATE)


def test_the_latest_time_is_where_the_readme_shows_it() -> None:
    import agent_playout.transcript

    assert agent_playout.transcript.TIMED_TEXT_MAX_SECONDS == TIMED_TEXT_MAX_SECONDS == 86_400
