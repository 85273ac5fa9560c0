"""Pure text alignment: where each word starts on the item's sample clock, and what was heard.

A word is heard once the sample where it starts has been played. Whitespace and
punctuation belong to the word before them, so the heard text always ends on a whole word.
How text of each script is cut into words is in ``scripts`` and ``words``.

Word starts come, best first, from timestamps delivered with the text (``TimedText``), or
from an estimate: each word weighs its syllables plus a pause for trailing punctuation
(``weights``), and the weights are spread over the audio. While audio streams in, the
spread is paced by the audio received so far; once text and audio have both ended it is
re-fitted so the last word ends exactly where the audio ends.

Text is cut into words incrementally, at most about ``SLICE_CHARS`` characters per call,
so a huge push costs little at once: the rest waits and is cut as audio arrives (or as
its words are due), its weight estimated from the text already cut (the same weight per
character). When the position runs far into plain text not yet cut, or the item
completes, the words passed over are not cut one by one: the heard boundary is placed in
that text by the same estimate (a character offset, moved on to the next place a word
surely starts) and the text passed over becomes one span, weighed as its characters;
inside a long ``TimedText`` its own times place the boundary. So no call does work in
proportion to the text's length, except where no place a word surely starts (a space, a
Han character or kana, a Thai or Lao cluster) lies within a few thousand characters:
such text is cut as it comes.

Repairs, rather than errors, for timestamps that cannot be right, so a playout never
crashes on them: a start earlier than the previous word's is moved up to it, and a start
past the end of the audio is moved to the audio's last sample.
"""

from __future__ import annotations

import math
from typing import Final

from .text_queue import SLICE_CHARS, QueuedText
from .timed_text import TimedText
from .weights import PLAIN_PACER_SYLLABLES_PER_SECOND
from .words import Word, WordCutter

_CALIBRATION_SECONDS: Final = 2.0
"""Audio needed before streaming text is paced by the audio-to-text ratio."""
_AHEAD_CHARS = 4 * SLICE_CHARS
"""Text cut ahead of the heard text at most by pushes and arriving audio (cutting further
would only pile up words that a later call then walks through)."""


class TranscriptAligner:
    """Places the words of streamed text on the audio's sample clock.

    Counts are samples per channel at ``sample_rate``. The cost of a call does not grow with
    the text that came before: words are appended, the heard pointer only moves forward,
    and words already heard are dropped (only the text itself is kept, for ``text``).
    ``item_id`` names the item in log records.
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
        self._speed = speed
        self._words = WordCutter(language)
        self._audio = 0
        self._audio_ended = False
        self._heard = 0

    @property
    def item_id(self) -> str | None:
        return self._words.item_id

    @item_id.setter
    def item_id(self, item_id: str | None) -> None:
        self._words.item_id = item_id

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
        return self._words.text

    @property
    def word_count(self) -> int:
        """Words cut so far (text still waiting to be cut is not counted; a span passed
        over by the estimate, see the module docstring, counts as one)."""
        return self._words.word_count

    @property
    def kept_words(self) -> int:
        """Words still held in memory: the unheard ones and the current sentence's."""
        return self._words.kept_words

    @property
    def kept_chars(self) -> int:
        """Characters of text still addressable by ``text_between``."""
        return self._words.kept_chars

    @property
    def total_weight(self) -> float:
        """Weight, in syllables, of the text cut so far."""
        return self._words.total_weight

    @property
    def heard_words(self) -> int:
        return self._heard

    @property
    def heard_chars(self) -> int:
        """Length of the heard text: up to the first word not yet heard."""
        if self._heard == 0:
            return 0
        if self._heard < self.word_count:
            return self._words.word(self._heard).offset
        return self._words.cursor

    @property
    def audio_samples(self) -> int:
        return self._audio

    @property
    def repairs(self) -> int:
        """How many timestamps were repaired (see the module docstring)."""
        return self._words.repairs

    def word_offset(self, index: int) -> int:
        return self._words.word(index).offset

    def ends_sentence(self, index: int) -> bool:
        """True when word ``index`` closes a sentence with its punctuation."""
        return self._words.word(index).ends_sentence

    def word_end(self, index: int) -> int:
        """Offset just past word ``index`` and the text that trails it."""
        if index + 1 >= self.word_count:
            self._words.cut_next_word()
        if index + 1 < self.word_count:
            return self._words.word(index + 1).offset
        return self._words.cursor

    def text_between(self, start: int, end: int) -> str:
        """Text between two character offsets at or after the oldest kept word."""
        return self._words.text_between(start, end)

    def push_text(self, text: str | TimedText) -> None:
        """Append streamed text; a word split across pushes is joined.

        At most about ``SLICE_CHARS`` characters are cut into words now, and none once
        ``_AHEAD_CHARS`` wait unheard; the rest waits.
        """
        behind = self._words.cursor - self.heard_chars < _AHEAD_CHARS
        self._words.push_text(text, cut=behind)

    def end_text(self) -> None:
        self._words.end_text()

    def push_audio(self, samples: int) -> None:
        if samples < 0:
            raise ValueError(f"audio sample count must be >= 0, got {samples}")
        self._audio += samples
        if self._words.queued() and self._words.cursor - self.heard_chars < _AHEAD_CHARS:
            self._words.cut(SLICE_CHARS)

    def end_audio(self) -> None:
        self._audio_ended = True

    def word_start(self, index: int) -> int:
        """First sample of word ``index``: its timestamp, or the paced estimate."""
        word = self._words.word(index)
        if word.timed is not None:
            start = round(word.timed * self._rate)
        else:
            start = round(self._paced_start(word))
        if self._audio_ended and start >= self._audio:
            start = max(self._audio - 1, 0)
        return max(start, 0)

    def _paced_start(self, word: Word) -> float:
        """The estimate of ``word``'s first sample, paced from its anchor."""
        anchor_start = word.anchor_start * self._rate
        rate = self._samples_per_weight(anchor_start, word.anchor_weight)
        return anchor_start + (word.weight - word.anchor_weight) * rate

    def _samples_per_weight(self, anchor_start: float, anchor_weight: float) -> float:
        """Samples per unit of weight after an anchor, fitted to the audio where it can be.

        Text and audio ended: the exact fit. Text ended, audio streaming: the fit so far,
        but never faster than the prior (more audio is coming). Text streaming: the
        ratio of audio to text received once there are a few seconds of both, as text
        and audio arrive about together; the prior before that. Text not yet cut into
        words counts with the weight per character of the text cut so far.
        """
        prior = self._rate / (PLAIN_PACER_SYLLABLES_PER_SECOND * self._speed)
        remaining_weight = self._words.estimated_weight() - anchor_weight
        audio_after_anchor = self._audio - anchor_start
        if remaining_weight <= 0:
            return prior
        fitted = audio_after_anchor / remaining_weight
        if not self._words.text_ended:
            return fitted if audio_after_anchor >= _CALIBRATION_SECONDS * self._rate else prior
        if self._audio_ended:
            return max(fitted, 0.0)
        return max(fitted, prior)

    def advance(self, played_samples: int) -> int:
        """Move the heard pointer to ``played_samples``; returns the heard word count."""
        while True:
            count = self.word_count
            while self._heard < count and self.word_start(self._heard) < played_samples:
                self._heard += 1
            if self._heard < count:
                return self._heard
            if not (self._pass_over_heard(played_samples) or self._words.cut_next_word()):
                return self._heard

    def hear_all(self) -> None:
        """The item completed: every word was heard (much text still waiting is passed
        over as one span, the rest cut now)."""
        self._words.cut_all()
        self._heard = self.word_count

    def _heard_offset(self, played_samples: int) -> float:
        """Where, by the estimate, the text not yet cut stops being heard at
        ``played_samples``: words starting before this character offset are heard."""
        if self._audio_ended and played_samples >= self._audio:
            return math.inf
        anchor_seconds, anchor_weight = self._words.anchor
        anchor_start = anchor_seconds * self._rate
        rate = self._samples_per_weight(anchor_start, anchor_weight)
        per_char = self._words.weight_per_char()
        if rate <= 0 or per_char <= 0:
            return math.inf
        weight = anchor_weight + (played_samples - 0.5 - anchor_start) / rate
        return self._words.cursor + (weight - self._words.total_weight) / per_char

    def _timed_heard_offset(
        self, piece: QueuedText, start: float, end: float, played_samples: int
    ) -> float:
        """Where, by its own times (``start`` to ``end``), a long ``TimedText`` piece stops
        being heard at ``played_samples`` (its words are timed by their characters)."""
        seconds = (played_samples - 0.5) / self._rate
        if (self._audio_ended and played_samples >= self._audio) or (
            end == start and start < seconds
        ):
            return math.inf
        if end == start:
            return -math.inf
        fraction = (seconds - start) / (end - start)
        return piece.offset + fraction * len(piece.text)

    def _pass_over_heard(self, played_samples: int) -> bool:
        """All words cut are heard and the position runs far into text not yet cut: pass
        over the words heard there as one span (see the module docstring); True if words
        were added."""
        timed, region_end = self._words.queued_region()
        if timed is None:
            return self._words.pass_over(region_end, lambda: self._heard_offset(played_samples))
        if timed.start is None or timed.end is None or len(timed.text) <= SLICE_CHARS:
            return False
        heard_end = self._timed_heard_offset(timed, timed.start, timed.end, played_samples)
        return self._words.pass_over(region_end, lambda: heard_end, timed)

    def forget_before(self, index: int) -> None:
        """Drop words before ``index`` (already heard and reported) to keep memory flat."""
        self._words.forget_before(min(index, self._heard))

    def next_boundary(self, played_samples: int) -> int | None:
        """The played count at which the next word becomes heard, or None if none is known."""
        if self._heard >= self.word_count and not self._words.cut_next_word():
            return None
        return max(self.word_start(self._heard) + 1, played_samples + 1)
