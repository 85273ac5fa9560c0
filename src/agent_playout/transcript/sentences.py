"""The heard words of one item cut into sentence segments with times on its sample clock (pure).

A sentence is interim while it plays and final once the next one starts, the item ends
or it is cut. The segmenter moves the aligner and returns the segments each move makes;
the forwarder fans them out.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from .aligner import TranscriptAligner


@dataclass(frozen=True)
class TranscriptSegment:
    """A sentence as heard: interim while it plays, final once it ends or is cut.

    ``start`` and ``end`` are seconds on the item's sample clock (0 = first sample).
    """

    id: str
    text: str
    start: float
    end: float
    final: bool
    language: str


@dataclass(frozen=True)
class HeardWord:
    """A word the listener heard and the sample where it started."""

    text: str
    start: int


class SentenceSegmenter:
    """Moves ``aligner``'s heard pointer and says which sentence segments that changes.

    Segment ids are unique to the segmenter. ``record_words`` keeps every heard word with
    its start, for reports (text passed over as one span is one entry and one segment).
    Words before the current sentence are dropped from the aligner once reported.
    """

    def __init__(self, aligner: TranscriptAligner, *, language: str, record_words: bool) -> None:
        self._aligner = aligner
        self._language = language
        self._prefix = f"SG_{uuid.uuid4().hex[:8]}_"
        self._numbers = itertools.count()
        self._first = 0
        """Index of the current sentence's first word."""
        self._id = ""
        self._start = 0
        """First sample of the current sentence."""
        self._heard_log: list[HeardWord] | None = [] if record_words else None

    @property
    def heard_words(self) -> list[HeardWord] | None:
        """Each heard word and its start sample; None unless ``record_words``."""
        return None if self._heard_log is None else list(self._heard_log)

    def advance(self, played_samples: int) -> list[TranscriptSegment]:
        """``played_samples`` have played: the sentences finished, then the current one."""
        heard_before = self._aligner.heard_words
        self._aligner.advance(played_samples)
        return self._report(heard_before, played_samples, final=False)

    def hear_all(self) -> list[TranscriptSegment]:
        """The whole item played: every word was heard and the last sentence is final."""
        heard_before = self._aligner.heard_words
        self._aligner.hear_all()
        return self._report(heard_before, self._aligner.audio_samples, final=True)

    def close(self, played_samples: int) -> list[TranscriptSegment]:
        """The item stopped at ``played_samples``: the sentence cut short, final."""
        return self._close_sentence(self._aligner.heard_words, played_samples)

    def _report(self, heard_before: int, position: int, *, final: bool) -> list[TranscriptSegment]:
        aligner = self._aligner
        heard = aligner.heard_words
        segments = []
        for index in range(heard_before, heard):
            start = aligner.word_start(index)
            if self._heard_log is not None:
                first, end = aligner.word_offset(index), aligner.word_end(index)
                self._heard_log.append(HeardWord(aligner.text_between(first, end), start))
            if index == self._first:
                self._begin_sentence(index, start)
            elif index > self._first and aligner.ends_sentence(index - 1):
                segments.append(self._segment(aligner.word_offset(index), start, final=True))
                self._begin_sentence(index, start)
        if final:
            segments += self._close_sentence(heard, position)
        elif heard > max(heard_before, self._first):
            segments.append(self._segment(aligner.heard_chars, position, final=False))
        aligner.forget_before(self._first)
        return segments

    def _begin_sentence(self, index: int, start: int) -> None:
        self._first = index
        self._start = start
        self._id = f"{self._prefix}{next(self._numbers)}"

    def _close_sentence(self, heard: int, position: int) -> list[TranscriptSegment]:
        if heard <= self._first:
            return []
        segment = self._segment(self._aligner.heard_chars, position, final=True)
        self._first = heard
        return [segment]

    def _segment(self, end_char: int, end_sample: int, *, final: bool) -> TranscriptSegment:
        aligner = self._aligner
        text = aligner.text_between(aligner.word_offset(self._first), end_char).strip()
        rate = aligner.sample_rate
        return TranscriptSegment(
            id=self._id,
            text=text,
            start=self._start / rate,
            end=max(end_sample, self._start) / rate,
            final=final,
            language=self._language,
        )
