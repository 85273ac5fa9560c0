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
        (
            {"words": "ab", "start": [0.0], "end": [0.1]},
            r"word_timestamps\['words'\] must be a list",
        ),
        ({"words": ["a"], "start": [0.5], "end": [0.1]}, "ends before it starts"),
    ],
)
def test_word_timestamps_that_do_not_match_are_refused(payload: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_word_timestamps(payload)


def test_an_unknown_alignment_shape_names_the_expected_keys() -> None:
    with pytest.raises(ValueError, match="expected keys"):
        from_character_alignment({"letters": []})


CARTESIA_MESSAGE = {
    "type": "timestamps",
    "done": False,
    "status_code": 206,
    "context_id": "872ec12d-bc63-4e1e-a241-4f58c879d105",
    "word_timestamps": {"words": ["Hello", "world"], "start": [0, 0.5], "end": [0.4, 0.9]},
}


def test_a_cartesia_timestamps_message_is_read_as_sent() -> None:
    assert from_word_timestamps(CARTESIA_MESSAGE, offset=1.0) == [
        TimedText("Hello ", 1.0, 1.4),
        TimedText("world ", 1.5, 1.9),
    ]


def test_a_cartesia_message_of_another_type_is_refused_by_its_type() -> None:
    chunk = {"type": "chunk", "data": "aSDi", "done": False, "context_id": "c1"}
    with pytest.raises(ValueError, match=r"type 'chunk'.*word_timestamps"):
        from_word_timestamps(chunk)


def test_a_cartesia_message_without_word_timestamps_names_the_field() -> None:
    message = {**CARTESIA_MESSAGE, "word_timestamps": None}
    with pytest.raises(ValueError, match=r"'word_timestamps' must be a mapping"):
        from_word_timestamps(message)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("words", ["Hello", 5], r"word_timestamps\['words'\]\[1\]"),
        ("start", ["soon", 0.5], r"word_timestamps\['start'\]\[0\]"),
        ("end", [0.4, None], r"word_timestamps\['end'\]\[1\]"),
    ],
)
def test_a_bad_word_timestamp_names_its_field_and_index(
    field: str, value: list, where: str
) -> None:
    table = {**CARTESIA_MESSAGE["word_timestamps"], field: value}  # type: ignore[dict-item]
    with pytest.raises((TypeError, ValueError), match=where):
        from_word_timestamps({**CARTESIA_MESSAGE, "word_timestamps": table})


ELEVENLABS_MESSAGE = {
    "audio": "UklGRg==",
    "isFinal": None,
    "normalizedAlignment": {
        "chars": [" ", "H", "i", " ", "y", "o", "u"],
        "charStartTimesMs": [0, 10, 60, 110, 160, 210, 260],
        "charDurationsMs": [10, 50, 50, 50, 50, 50, 50],
    },
    "alignment": {
        "chars": ["H", "i", " ", "y", "o", "u"],
        "charStartTimesMs": [10, 60, 110, 160, 210, 260],
        "charDurationsMs": [50, 50, 50, 50, 50, 50],
    },
}


def test_an_elevenlabs_websocket_message_is_read_as_sent() -> None:
    assert from_character_alignment(ELEVENLABS_MESSAGE, offset=2.0) == [
        TimedText("Hi ", 2.01, 2.11),
        TimedText("you", 2.16, 2.31),
    ]


def test_the_older_chars_durations_spelling_is_read_too() -> None:
    alignment = dict(ELEVENLABS_MESSAGE["alignment"])  # type: ignore[arg-type]
    alignment["charsDurationsMs"] = alignment.pop("charDurationsMs")
    words = from_character_alignment({**ELEVENLABS_MESSAGE, "alignment": alignment})
    assert [word.text for word in words] == ["Hi ", "you"]


def test_an_elevenlabs_message_whose_alignment_is_null_has_no_words() -> None:
    assert from_character_alignment({**ELEVENLABS_MESSAGE, "alignment": None}) == []


def test_an_elevenlabs_message_without_the_asked_alignment_names_the_field() -> None:
    message = {"audio": "UklGRg==", "alignment": ELEVENLABS_MESSAGE["alignment"]}
    with pytest.raises(ValueError, match="normalizedAlignment"):
        from_character_alignment(message, normalized=True)


def test_a_bad_character_names_its_field_and_index() -> None:
    alignment = {**ELEVENLABS_MESSAGE["alignment"], "chars": ["H", 5, " ", "y", "o", "u"]}  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"alignment\['chars'\]\[1\]"):
        from_character_alignment({**ELEVENLABS_MESSAGE, "alignment": alignment})
