"""Converters from providers' timestamp formats to ``TimedText`` words (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .transcript import TimedText

_SECONDS_KEYS = ("characters", "character_start_times_seconds", "character_end_times_seconds")
_MS_KEYS = ("chars", "charStartTimesMs", "charDurationsMs")


def _column(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"timestamps need a list under {key!r}, got {type(value).__name__}")
    return value


def _same_lengths(data: Mapping[str, Any], keys: Sequence[str]) -> list[Sequence[Any]]:
    columns = [_column(data, key) for key in keys]
    lengths = {key: len(column) for key, column in zip(keys, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"timestamp lists differ in length: {lengths}")
    return columns


def from_character_alignment(
    alignment: Mapping[str, Any], *, offset: float = 0.0, normalized: bool = False
) -> list[TimedText]:
    """Words with times from a per-character alignment (ElevenLabs style).

    Takes ``{"characters", "character_start_times_seconds", "character_end_times_seconds"}``,
    the streaming form ``{"chars", "charStartTimesMs", "charDurationsMs"}``, or a response
    holding either under ``alignment`` / ``normalized_alignment`` (``normalized`` picks the
    latter). ``offset`` (seconds) is added, for chunks whose times restart at zero.
    Each word starts at its first character and keeps the whitespace that follows it.
    """
    nested = ("normalized_alignment", "normalizedAlignment") if normalized else ("alignment",)
    for key in nested:
        if isinstance(alignment.get(key), Mapping):
            alignment = alignment[key]
            break
    if all(key in alignment for key in _SECONDS_KEYS):
        chars, starts, ends = _same_lengths(alignment, _SECONDS_KEYS)
        times = [(float(s), float(e)) for s, e in zip(starts, ends, strict=True)]
    elif all(key in alignment for key in _MS_KEYS):
        chars, starts, durations = _same_lengths(alignment, _MS_KEYS)
        times = [
            (float(s) / 1000, (float(s) + float(d)) / 1000)
            for s, d in zip(starts, durations, strict=True)
        ]
    else:
        raise ValueError(
            f"not a character alignment: expected keys {_SECONDS_KEYS} or {_MS_KEYS},"
            f" got {sorted(alignment)}"
        )
    words: list[TimedText] = []
    text, start, end = "", 0.0, 0.0
    for char, (char_start, char_end) in zip(chars, times, strict=True):
        if not isinstance(char, str):
            raise ValueError(f"characters must be strings, got {char!r}")
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


def from_word_timestamps(timestamps: Mapping[str, Any], *, offset: float = 0.0) -> list[TimedText]:
    """Words with times from ``{"words": [...], "start": [...], "end": [...]}`` (Cartesia style).

    The provider gives words without separators; each gets a trailing space, so words of
    consecutive chunks never run together.
    """
    words, starts, ends = _same_lengths(timestamps, ("words", "start", "end"))
    timed: list[TimedText] = []
    for word, start, end in zip(words, starts, ends, strict=True):
        if not isinstance(word, str):
            raise ValueError(f"words must be strings, got {word!r}")
        timed.append(TimedText(word + " ", offset + float(start), offset + float(end)))
    return timed
