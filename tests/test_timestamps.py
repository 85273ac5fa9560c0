from __future__ import annotations

import pytest

from agent_playout import TimedText, from_character_alignment, from_word_timestamps


def test_character_alignment_in_seconds_becomes_words_with_their_first_char_time() -> None:
    text = "Hi, you there."
    alignment = {
        "characters": list(text),
        "character_start_times_seconds": [0.1 * i for i in range(len(text))],
        "character_end_times_seconds": [0.1 * i + 0.1 for i in range(len(text))],
    }
    words = from_character_alignment({"alignment": alignment}, offset=2.0)
    assert [w.text for w in words] == ["Hi, ", "you ", "there."]
    assert [round(w.start, 6) for w in words] == [2.0, 2.4, 2.8]
    assert [round(w.end, 6) for w in words] == [2.3, 2.7, 3.4]


def test_streaming_millisecond_form_and_normalized_variant() -> None:
    alignment = {
        "chars": ["o", "k", " ", "g", "o"],
        "charStartTimesMs": [0, 50, 100, 150, 200],
        "charDurationsMs": [50, 50, 50, 50, 50],
    }
    response = {
        "alignment": {"chars": ["x"], "charStartTimesMs": [0], "charDurationsMs": [9]},
        "normalizedAlignment": alignment,
    }
    words = from_character_alignment(response, normalized=True)
    assert words == [TimedText("ok ", 0.0, 0.1), TimedText("go", 0.15, 0.25)]


def test_word_timestamps_keep_words_apart_across_chunks() -> None:
    words = from_word_timestamps(
        {"words": ["Hello", "there"], "start": [0.0, 0.4], "end": [0.3, 0.8]}
    )
    assert words == [TimedText("Hello ", 0.0, 0.3), TimedText("there ", 0.4, 0.8)]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"words": ["a", "b"], "start": [0.0], "end": [0.1, 0.2]}, "differ in length"),
        ({"words": "ab", "start": [0.0], "end": [0.1]}, "need a list under 'words'"),
        ({"words": ["a"], "start": [0.5], "end": [0.1]}, "ends before it starts"),
    ],
)
def test_word_timestamps_that_do_not_match_are_refused(payload: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_word_timestamps(payload)


def test_an_unknown_alignment_shape_names_the_expected_keys() -> None:
    with pytest.raises(ValueError, match="expected keys"):
        from_character_alignment({"letters": []})
