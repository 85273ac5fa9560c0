"""Pure text alignment: where each word starts on the item's sample clock, and what was heard.

A word is heard once the sample where it starts has been played. Whitespace and
punctuation belong to the word before them, so the heard text always ends on a whole word.

Word starts come, best first, from timestamps delivered with the text (``TimedText``), or
from an estimate: each word weighs its syllables (a hyphenation dictionary) plus a pause
for trailing punctuation, and the weights are spread over the audio. While audio streams
in, the spread is paced by the audio received so far; once text and audio have both
ended it is re-fitted so the last word ends exactly where the audio ends.

Repairs, rather than errors, for timestamps that cannot be right, so a playout never
crashes on them: a start earlier than the previous word's is moved up to it, and a start
past the end of the audio is moved to the audio's last sample.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Final

import pyphen

logger = logging.getLogger("agent_playout")

PLAIN_PACER_SYLLABLES_PER_SECOND: Final = 3.83
"""LiveKit 0.x's fixed pacing rate; the estimate's prior before any audio is known."""

_TOKEN = re.compile(r"\S+\s*")
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGITS = re.compile(r"\d")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_CLAUSE_END = re.compile(r"[,;:—–]+[\"'”’)\]]*$")

SENTENCE_PAUSE: Final = 1.5
"""Extra weight, in syllables, for the pause a voice makes after a sentence."""
CLAUSE_PAUSE: Final = 0.75
"""Extra weight, in syllables, for the pause after a comma, colon or dash."""
_CALIBRATION_SECONDS: Final = 2.0
"""Audio needed before streaming text is paced by the audio-to-text ratio."""
DIGIT_SYLLABLES: Final = 1.3
"""Spoken syllables per written digit ("21" is "twen-ty one")."""
HYPHENATION_CACHE_WORDS: Final = 4096
"""Words kept hyphenated per dictionary, in pyphen's own cache (bounded here; pyphen's
default cache keeps every word the process ever hyphenated)."""
TIMED_TEXT_MAX_SECONDS: Final = 86_400.0
"""Latest time a ``TimedText`` may give: a day into its item is no real position."""


@dataclass(frozen=True)
class TimedText:
    """Text with its time in the item's audio, in seconds from the item's first sample."""

    text: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"TimedText.text must be str, got {type(self.text).__name__}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"TimedText.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"TimedText.{name} must be finite, got {value!r}")
            if not 0 <= value <= TIMED_TEXT_MAX_SECONDS:
                raise ValueError(
                    f"TimedText.{name} must be seconds from the item's first sample, between 0"
                    f" and {TIMED_TEXT_MAX_SECONDS:g}, got {value!r} (text {self.text!r})"
                )
        if self.end < self.start:
            raise ValueError(
                f"TimedText.end must not be before start: {self.text!r} ends before it starts"
                f" ({self.end} < {self.start})"
            )


class _BoundedCache(dict):  # type: ignore[type-arg]
    """A dict that forgets its oldest entries beyond ``limit``; pyphen's per-word cache."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: object, value: object) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            del self[next(iter(self))]


@functools.lru_cache(maxsize=64)
def _hyphenator(language: str) -> pyphen.Pyphen:
    """The dictionary for ``language``, its per-word cache bounded.

    pyphen shares one dictionary object per file across the process and caches every word
    it hyphenates there; the cache is replaced once by one that keeps the newest
    ``HYPHENATION_CACHE_WORDS`` words.
    """
    fallback = pyphen.language_fallback(language.replace("-", "_")) or "en_US"
    hyphenator = pyphen.Pyphen(lang=fallback)
    dictionary = hyphenator.hd
    if not isinstance(dictionary.cache, _BoundedCache):
        dictionary.cache = _BoundedCache(HYPHENATION_CACHE_WORDS)
    return hyphenator


def word_weight(token: str, language: str = "en_US") -> float:
    """Spoken length of ``token`` in syllables, with the pause its punctuation implies."""
    hyphenator = _hyphenator(language)
    syllables = float(sum(len(hyphenator.positions(part)) + 1 for part in _LETTERS.findall(token)))
    syllables += DIGIT_SYLLABLES * len(_DIGITS.findall(token))
    stripped = token.rstrip()
    if _SENTENCE_END.search(stripped):
        syllables += SENTENCE_PAUSE
    elif _CLAUSE_END.search(stripped):
        syllables += CLAUSE_PAUSE
    return max(syllables, 0.5)


def ends_sentence(token: str) -> bool:
    """True when ``token`` (a word with its trailing text) closes a sentence."""
    return bool(_SENTENCE_END.search(token.rstrip()))


class _Word:
    """One word: where it is in the text and what places it on the audio."""

    __slots__ = ("anchor_start", "anchor_weight", "ends_sentence", "offset", "timed", "weight")

    def __init__(
        self, offset: int, weight: float, timed: float | None, anchor: tuple[float, float]
    ) -> None:
        self.offset = offset
        self.weight = weight
        self.timed = timed
        self.anchor_start, self.anchor_weight = anchor
        self.ends_sentence = False


class TranscriptAligner:
    """Places the words of streamed text on the audio's sample clock.

    Counts are samples per channel at ``sample_rate``. The cost of a call does not grow with
    the text that came before: words are appended, the heard pointer only moves forward,
    and words already heard are dropped (only the text itself is kept, for ``text``).
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        language: str = "en_US",
        speed: float = 1.0,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.sample_rate = sample_rate
        self._language = language
        self._speed = speed
        self._chunks: list[str] = []
        self._text_length = 0
        self._window = ""
        self._window_start = 0
        self._last_token = ""
        self._words: deque[_Word] = deque()
        self._dropped = 0
        self._total_weight = 0.0
        self._anchor = (0.0, 0.0)
        self._text_ended = False
        self._audio = 0
        self._audio_ended = False
        self._heard = 0
        self._repairs = 0

    @property
    def sample_rate(self) -> int:
        return self._rate

    @sample_rate.setter
    def sample_rate(self, rate: int) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"sample_rate must be a positive int, got {rate!r}")
        self._rate = rate

    @property
    def text(self) -> str:
        """All text received; joined on demand."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @property
    def text_length(self) -> int:
        return self._text_length

    @property
    def word_count(self) -> int:
        return self._dropped + len(self._words)

    @property
    def heard_words(self) -> int:
        return self._heard

    @property
    def heard_chars(self) -> int:
        """Length of the heard text: up to the first word not yet heard."""
        if self._heard == 0:
            return 0
        if self._heard < self.word_count:
            return self._word(self._heard).offset
        return self._text_length

    @property
    def audio_samples(self) -> int:
        return self._audio

    @property
    def repairs(self) -> int:
        """How many timestamps were repaired (see the module docstring)."""
        return self._repairs

    def _word(self, index: int) -> _Word:
        return self._words[index - self._dropped]

    def word_offset(self, index: int) -> int:
        return self._word(index).offset

    def ends_sentence(self, index: int) -> bool:
        """True when word ``index`` closes a sentence with its punctuation."""
        return self._word(index).ends_sentence

    def text_between(self, start: int, end: int) -> str:
        """Text between two character offsets at or after the oldest kept word."""
        if start < self._window_start:
            raise ValueError(f"text before offset {self._window_start} is no longer kept")
        return self._window[start - self._window_start : end - self._window_start]

    def push_text(self, text: str | TimedText) -> None:
        """Append streamed text; a word split across pushes is joined."""
        if self._text_ended:
            raise ValueError("text pushed after the text segment ended")
        if isinstance(text, TimedText):
            content, start, end = text.text, text.start, text.end
        elif isinstance(text, str):
            content, start, end = text, None, None
        else:
            raise TypeError(f"transcript text must be str or TimedText, got {type(text).__name__}")
        if not content:
            return
        offset = self._text_length
        continues_word = self._last_token != "" and not self._last_token[-1].isspace()
        self._chunks.append(content)
        self._window += content
        self._text_length += len(content)
        tokens = [(offset + m.start(), m.group()) for m in _TOKEN.finditer(content)]
        leading = len(content) - len(content.lstrip())
        if continues_word and leading == 0:
            self._extend_last_word(tokens.pop(0)[1])
        elif self._words and leading:
            self._extend_last_word(content[:leading])
        if start is None or end is None:
            for token_offset, token in tokens:
                self._add_word(token_offset, token, None)
            return
        weights = [word_weight(token, self._language) for _, token in tokens]
        total = sum(weights) or 1.0
        elapsed = 0.0
        for (token_offset, token), weight in zip(tokens, weights, strict=True):
            self._add_word(token_offset, token, start + (end - start) * elapsed / total)
            elapsed += weight

    def _add_word(self, offset: int, token: str, timed: float | None) -> None:
        if timed is not None and timed < self._anchor[0]:
            self._repair(f"word {token.strip()!r} starts before the previous word")
            timed = self._anchor[0]
        word = _Word(offset, self._total_weight, timed, self._anchor)
        self._words.append(word)
        if timed is not None:
            self._anchor = (timed, self._total_weight)
        self._last_token = ""
        self._extend_last_word(token)

    def _extend_last_word(self, more: str) -> None:
        self._last_token += more
        word = self._words[-1]
        self._total_weight = word.weight + word_weight(self._last_token, self._language)
        word.ends_sentence = ends_sentence(self._last_token)

    def _repair(self, what: str) -> None:
        if self._repairs == 0:
            logger.warning("transcript timestamps repaired: %s (further repairs not logged)", what)
        self._repairs += 1

    def end_text(self) -> None:
        self._text_ended = True

    def push_audio(self, samples: int) -> None:
        if samples < 0:
            raise ValueError(f"audio sample count must be >= 0, got {samples}")
        self._audio += samples

    def end_audio(self) -> None:
        self._audio_ended = True

    def word_start(self, index: int) -> int:
        """First sample of word ``index``: its timestamp, or the paced estimate."""
        word = self._word(index)
        if word.timed is not None:
            start = round(word.timed * self._rate)
        else:
            anchor_start = word.anchor_start * self._rate
            rate = self._samples_per_weight(anchor_start, word.anchor_weight)
            start = round(anchor_start + (word.weight - word.anchor_weight) * rate)
        if self._audio_ended and start >= self._audio:
            start = max(self._audio - 1, 0)
        return max(start, 0)

    def _samples_per_weight(self, anchor_start: float, anchor_weight: float) -> float:
        """Samples per unit of weight after an anchor, fitted to the audio where it can be.

        Text and audio ended: the exact fit. Text ended, audio streaming: the fit so far,
        but never faster than the prior (more audio is coming). Text streaming: the
        ratio of audio to text received once there are a few seconds of both, as text
        and audio arrive about together; the prior before that.
        """
        prior = self._rate / (PLAIN_PACER_SYLLABLES_PER_SECOND * self._speed)
        remaining_weight = self._total_weight - anchor_weight
        audio_after_anchor = self._audio - anchor_start
        if remaining_weight <= 0:
            return prior
        fitted = audio_after_anchor / remaining_weight
        if not self._text_ended:
            return fitted if audio_after_anchor >= _CALIBRATION_SECONDS * self._rate else prior
        if self._audio_ended:
            return max(fitted, 0.0)
        return max(fitted, prior)

    def advance(self, played_samples: int) -> int:
        """Move the heard pointer to ``played_samples``; returns the heard word count."""
        count = self.word_count
        while self._heard < count and self.word_start(self._heard) < played_samples:
            self._heard += 1
        return self._heard

    def hear_all(self) -> None:
        """The item completed: every word was heard."""
        self._heard = self.word_count

    def forget_before(self, index: int) -> None:
        """Drop words before ``index`` (already heard and reported) to keep memory flat."""
        index = min(index, self._heard)
        while self._dropped < index and len(self._words) > 1:
            self._words.popleft()
            self._dropped += 1
        keep_from = self._words[0].offset if self._words else self._text_length
        if keep_from > self._window_start:
            self._window = self._window[keep_from - self._window_start :]
            self._window_start = keep_from

    def next_boundary(self, played_samples: int) -> int | None:
        """The played count at which the next word becomes heard, or None if none is known."""
        if self._heard >= self.word_count:
            return None
        return max(self.word_start(self._heard) + 1, played_samples + 1)
