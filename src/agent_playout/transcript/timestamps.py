"""Converters from providers' timestamp formats to ``TimedText`` words (pure).

Each takes the provider's message as it arrives on the wire (parsed JSON), or just the
field of it that holds the times, and names the field and item of anything it refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .timed_text import TimedText

_SECONDS_KEYS = ("characters", "character_start_times_seconds", "character_end_times_seconds")
_MS_KEYS = ("chars", "charStartTimesMs", "charDurationsMs")
_MS_SPELLINGS = {"charStartTimesMs": "charsStartTimesMs", "charDurationsMs": "charsDurationsMs"}
"""Older spellings of the streaming keys, still found in ElevenLabs' examples and clients."""
_ALIGNMENT_FIELDS = ("alignment",)
_NORMALIZED_FIELDS = ("normalizedAlignment", "normalized_alignment")
_ELEVENLABS_MESSAGE_KEYS = frozenset(
    {*_ALIGNMENT_FIELDS, *_NORMALIZED_FIELDS, "audio", "audio_base64", "isFinal"}
)
_WORD_KEYS = ("words", "start", "end")
_CARTESIA_FIELD = "word_timestamps"


def _mapping(value: object, where: str, expected: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where!r} must be a mapping {expected}, got {value!r}")
    return value


def _column(data: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = data.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(
            f"{where}[{key!r}] must be a list, got {type(value).__name__}"
            f" (keys present: {sorted(data)})"
        )
    return value


def _same_lengths(data: Mapping[str, Any], keys: Sequence[str], where: str) -> list[Sequence[Any]]:
    """The lists under ``keys``, which must be equally long."""
    columns = [_column(data, key, where) for key in keys]
    lengths = {key: len(column) for key, column in zip(keys, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{where} lists differ in length: {lengths}")
    return columns


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {value!r}")
    return value


def _seconds(value: object, where: str, scale: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number, got {value!r}")
    return float(value) / scale


def _alignment_of(message: Mapping[str, Any], normalized: bool) -> Mapping[str, Any] | None:
    """The alignment table inside an ElevenLabs message (None when the message has none),
    or ``message`` itself when it is already a table."""
    if not _ELEVENLABS_MESSAGE_KEYS & message.keys():
        return message
    fields = _NORMALIZED_FIELDS if normalized else _ALIGNMENT_FIELDS
    field = next((name for name in fields if name in message), None)
    if field is None:
        raise ValueError(
            f"the ElevenLabs message has no {' or '.join(map(repr, fields))} field"
            f" (keys present: {sorted(message)})"
        )
    if message[field] is None:
        return None
    return _mapping(message[field], field, f"of {_MS_KEYS} or {_SECONDS_KEYS}")


def _char_times(table: Mapping[str, Any]) -> tuple[str, Sequence[Any], list[tuple[float, float]]]:
    """The characters' key, the characters, and each one's (start, end) in seconds."""
    if all(key in table for key in _SECONDS_KEYS):
        chars, starts, ends = _same_lengths(table, _SECONDS_KEYS, "alignment")
        start_at = f"alignment[{_SECONDS_KEYS[1]!r}][{{}}]".format
        end_at = f"alignment[{_SECONDS_KEYS[2]!r}][{{}}]".format
        times = [
            (_seconds(s, start_at(i)), _seconds(e, end_at(i)))
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))
        ]
        return _SECONDS_KEYS[0], chars, times
    keys = [key if key in table else _MS_SPELLINGS.get(key, key) for key in _MS_KEYS]
    if not all(key in table for key in keys):
        raise ValueError(
            f"not a character alignment: expected keys {_MS_KEYS} or {_SECONDS_KEYS},"
            f" got {sorted(table)}"
        )
    chars, starts, durations = _same_lengths(table, keys, "alignment")
    start_at = f"alignment[{keys[1]!r}][{{}}]".format
    duration_at = f"alignment[{keys[2]!r}][{{}}]".format
    times = []
    for i, (s, d) in enumerate(zip(starts, durations, strict=True)):
        begin = _seconds(s, start_at(i), 1000)
        times.append((begin, begin + _seconds(d, duration_at(i), 1000)))
    return keys[0], chars, times


def from_character_alignment(
    alignment: Mapping[str, Any], *, offset: float = 0.0, normalized: bool = False
) -> list[TimedText]:
    """Words with times from an ElevenLabs message or its per-character alignment.

    Takes a websocket (``stream-input``) message ``{"audio", "alignment",
    "normalizedAlignment", ...}`` whose alignments are ``{"chars", "charStartTimesMs",
    "charDurationsMs"}``, an HTTP ``with-timestamps`` response ``{"audio_base64",
    "alignment", "normalized_alignment"}`` whose alignments are ``{"characters",
    "character_start_times_seconds", "character_end_times_seconds"}``, or either
    alignment alone. ``normalized`` picks the normalized alignment of a message; a message
    whose alignment is null has no words. ``offset`` (seconds) is added, for chunks whose
    times restart at zero. Each word starts at its first character and keeps the
    whitespace that follows it.
    """
    table = _alignment_of(_mapping(alignment, "alignment", "(parsed JSON)"), normalized)
    if table is None:
        return []
    key, chars, times = _char_times(table)
    words: list[TimedText] = []
    text, start, end = "", 0.0, 0.0
    for index, (value, (char_start, char_end)) in enumerate(zip(chars, times, strict=True)):
        char = _text(value, f"alignment[{key!r}][{index}]")
        if char.isspace() or not text or not text[-1].isspace():
            if not text:
                start = char_start
            text += char
            end = max(end, char_end) if not char.isspace() else end
            continue
        words.append(TimedText(text, offset + start, offset + max(end, start)))
        text, start, end = char, char_start, char_end
    if text:
        words.append(TimedText(text, offset + start, offset + max(end, start)))
    return words


def _word_table(timestamps: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``word_timestamps`` table of a Cartesia message, or ``timestamps`` itself."""
    if _CARTESIA_FIELD in timestamps:
        return _mapping(timestamps[_CARTESIA_FIELD], _CARTESIA_FIELD, f"of {_WORD_KEYS}")
    kind = timestamps.get("type")
    if kind is not None and not all(key in timestamps for key in _WORD_KEYS):
        raise ValueError(
            f"not a Cartesia timestamps message: type {kind!r} carries no {_CARTESIA_FIELD!r}"
            " (only messages of type 'timestamps' do, when add_timestamps is set)"
        )
    return timestamps


def from_word_timestamps(timestamps: Mapping[str, Any], *, offset: float = 0.0) -> list[TimedText]:
    """Words with times from a Cartesia ``timestamps`` message or its ``word_timestamps``.

    Takes the websocket message ``{"type": "timestamps", "word_timestamps": {"words":
    [...], "start": [...], "end": [...]}, ...}`` (times in seconds) or the
    ``word_timestamps`` table alone. The provider gives words without separators; each gets
    a trailing space, so words of consecutive messages never run together. ``offset``
    (seconds) is added.
    """
    table = _word_table(_mapping(timestamps, _CARTESIA_FIELD, "(parsed JSON)"))
    words, starts, ends = _same_lengths(table, _WORD_KEYS, _CARTESIA_FIELD)
    timed: list[TimedText] = []
    for index, (word, start, end) in enumerate(zip(words, starts, ends, strict=True)):
        where = f"{_CARTESIA_FIELD}[{{!r}}][{index}]".format
        text = _text(word, where("words"))
        timed.append(
            TimedText(
                text + " ",
                offset + _seconds(start, where("start")),
                offset + _seconds(end, where("end")),
            )
        )
    return timed
