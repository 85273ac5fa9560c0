"""The pure part of the LiveKit Agents output: which text belongs to which audio segment,
where a segment's runs end, and the heard words on its sample count."""

from __future__ import annotations

import pytest

from .livekit_agents_required import require_livekit_agents

require_livekit_agents()

from livekit.agents.types import TimedString  # noqa: E402

from agent_playout.integrations.livekit_agents.segments import (  # noqa: E402
    Run,
    Segment,
    TextSegments,
    timed,
)
from agent_playout.transcript.timed_text import TimedText  # noqa: E402

RATE = 24000


def test_text_that_comes_before_its_audio_is_taken_by_that_audio() -> None:
    texts = TextSegments(RATE)
    texts.push("Hello there. ")
    texts.end()
    segment = texts.take()
    assert segment.aligner.text == "Hello there. "
    texts.push("Next reply.")
    assert texts.take().aligner.text == "Next reply."


def test_audio_that_comes_before_its_text_gets_the_text_that_follows() -> None:
    texts = TextSegments(RATE)
    segment = texts.take()
    texts.push("Late ")
    texts.push("words.")
    texts.end()
    assert segment.aligner.text == "Late words."
    texts.push("After.")
    assert texts.take().aligner.text == "After."


def test_text_of_a_speech_that_played_nothing_is_dropped_at_its_clear() -> None:
    texts = TextSegments(RATE)
    texts.push("Never heard.")
    texts.end()
    texts.drop_unheard()
    texts.push("Heard.")
    assert texts.take().aligner.text == "Heard."


def test_text_no_audio_takes_is_kept_for_the_last_sixteen_only() -> None:
    texts = TextSegments(RATE)
    for index in range(40):
        texts.push(f"reply {index}")
        texts.end()
    assert texts.take().aligner.text == "reply 24"


def test_a_released_segment_drops_the_unbound_text_before_it() -> None:
    texts = TextSegments(RATE)
    texts.push("orphan")
    texts.end()
    first = texts.take()
    texts.release(first)
    texts.push("fresh")
    assert texts.take().aligner.text == "fresh"


def test_runs_are_contiguous_and_a_run_of_nothing_is_not_reported() -> None:
    segment = Segment(1000, TextSegments(RATE).take(), started_at=10.0)
    segment.pushed_audio(4800)
    assert segment.played(900) == 0
    assert segment.played(3000) == 2000
    assert segment.played(99_999) == 4800
    assert segment.end_run(0, 10.5) is None
    assert segment.end_run(2400, 11.0) == Run(0, 2400, 10.5)
    assert segment.end_run(2400, 12.0) is None
    assert segment.end_run(4800, 13.0) == Run(2400, 2400, 12.0)


def test_the_transcript_is_the_words_whose_first_sample_played() -> None:
    texts = TextSegments(RATE)
    texts.push("one two three four")
    texts.end()
    segment = Segment(0, texts.take(), started_at=0.0)
    segment.pushed_audio(RATE * 2)
    heard = segment.transcript(RATE, complete=False)
    assert heard is not None
    assert "one two three four".startswith(heard)
    assert 0 < len(heard.split()) < 4
    assert segment.transcript(RATE * 2, complete=True) == "one two three four"


def test_a_segment_without_text_has_no_transcript() -> None:
    segment = Segment(0, TextSegments(RATE).take(), started_at=0.0)
    segment.pushed_audio(RATE)
    assert segment.transcript(RATE // 2, complete=False) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TimedString("word ", start_time=0.5, end_time=0.7), TimedText("word ", 0.5, 0.7)),
        (TimedString("word ", start_time=0.5), "word "),
        (TimedString("word ", start_time=-1.0, end_time=0.2), "word "),
        ("plain", "plain"),
    ],
)
def test_aligned_words_keep_their_times_and_others_are_plain_text(
    text: str, expected: object
) -> None:
    assert timed(text) == expected
