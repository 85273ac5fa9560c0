"""Pure text alignment: where each word starts on the item's sample clock, and what was heard.

A word is heard once the sample where it starts has been played. Whitespace and
punctuation belong to the word before them, so the heard text always ends on a whole word.
"""

from __future__ import annotations

import re

_WORD_START = re.compile(r"(?<!\S)\S")


class TranscriptAligner:
    """Places words of streamed text on the audio's sample clock by proportional estimate.

    While audio streams in, a word's start is estimated from its character offset scaled
    to the audio received so far; once both text and audio have ended, from the full
    length, so the last word lands inside the audio. Heard text never shrinks.
    """

    def __init__(self) -> None:
        self._text = ""
        self._word_offsets: list[int] = []
        self._text_ended = False
        self._audio_samples = 0
        self._audio_ended = False
        self._heard_words = 0

    @property
    def text(self) -> str:
        return self._text

    @property
    def word_count(self) -> int:
        return len(self._word_offsets)

    @property
    def heard_words(self) -> int:
        return self._heard_words

    def push_text(self, text: str) -> None:
        """Append streamed text; a word split across pushes is joined."""
        if not isinstance(text, str):
            raise TypeError(f"transcript text must be str, got {type(text).__name__}")
        if self._text_ended:
            raise ValueError("text pushed after the text segment ended")
        start = len(self._text)
        joined = start > 0 and not self._text[-1].isspace()
        self._text += text
        for match in _WORD_START.finditer(self._text, start):
            if joined and match.start() == start:
                continue
            self._word_offsets.append(match.start())

    def end_text(self) -> None:
        self._text_ended = True

    def push_audio(self, samples: int) -> None:
        if samples < 0:
            raise ValueError(f"audio sample count must be >= 0, got {samples}")
        self._audio_samples += samples

    def end_audio(self) -> None:
        self._audio_ended = True

    def word_start(self, index: int) -> int:
        """Estimated first sample of word ``index``."""
        total_chars = len(self._text)
        if total_chars == 0:
            return 0
        return self._audio_samples * self._word_offsets[index] // total_chars

    def heard_text(self, played_samples: int, *, complete: bool = False) -> str:
        """The text heard once ``played_samples`` have played; all of it when ``complete``."""
        if complete:
            self._heard_words = len(self._word_offsets)
            return self._text
        while (
            self._heard_words < len(self._word_offsets)
            and self.word_start(self._heard_words) < played_samples
        ):
            self._heard_words += 1
        return self._text[: self._heard_end()]

    def next_boundary(self, played_samples: int) -> int | None:
        """The next sample at which the heard text changes, or None if nothing is known yet."""
        index = self._heard_words
        if index >= len(self._word_offsets):
            return None
        return max(self.word_start(index) + 1, played_samples + 1)

    def _heard_end(self) -> int:
        if self._heard_words >= len(self._word_offsets):
            return len(self._text)
        return self._word_offsets[self._heard_words]
