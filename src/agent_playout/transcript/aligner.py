"""Pure text alignment: where each word starts on the item's sample clock, and what was heard.

A word is heard once the sample where it starts has been played. Whitespace and
punctuation belong to the word before them, so the heard text always ends on a whole word.

Scripts written without spaces have no words to count, so their text is cut into smaller
units: each Han character (about one syllable, also in Japanese, where it reads about two
morae), each kana (one mora, half a syllable; a small kana joins the one before it), each
Thai, Lao or Khmer character cluster (a base letter with its marks, about half a syllable)
and each Myanmar syllable. Latin or other spaced words inside such text stay words.
Korean, written with spaces, keeps its words, each weighed by its syllable blocks.

Word starts come, best first, from timestamps delivered with the text (``TimedText``), or
from an estimate: each word weighs its syllables (a hyphenation dictionary) plus a pause
for trailing punctuation, and the weights are spread over the audio. While audio streams
in, the spread is paced by the audio received so far; once text and audio have both
ended it is re-fitted so the last word ends exactly where the audio ends.

Text is cut into words incrementally, at most about ``SLICE_CHARS`` characters per call,
so a huge push costs little at once: the rest waits and is cut as audio arrives (or as
its words are due), its weight estimated from the text already cut (the same weight per
character). When the position runs far into plain text not yet cut, or the item
completes, the words passed over are not cut one by one: the heard boundary is placed in
that text by the same estimate (a character offset, moved on to the next place a word
surely starts) and the text passed over becomes one span, weighed as its characters;
inside a long ``TimedText`` its own times place the boundary. So no call does work in
proportion to the text's length, except where no place a word surely starts (a space, a
Han character or kana, a Thai or Lao cluster) lies within ``_SCAN_CHARS``: such text is
cut as it comes.

Repairs, rather than errors, for timestamps that cannot be right, so a playout never
crashes on them: a start earlier than the previous word's is moved up to it, and a start
past the end of the audio is moved to the audio's last sample.
"""

from __future__ import annotations

import bisect
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

SENTENCE_PAUSE: Final = 1.5
"""Extra weight, in syllables, for the pause a voice makes after a sentence."""
CLAUSE_PAUSE: Final = 0.75
"""Extra weight, in syllables, for the pause after a comma, colon or dash."""
_CALIBRATION_SECONDS: Final = 2.0
"""Audio needed before streaming text is paced by the audio-to-text ratio."""
DIGIT_SYLLABLES: Final = 1.3
"""Spoken syllables per written digit ("21" is "twen-ty one")."""
UNIT_SYLLABLES: Final = {"han": 1.0, "kana": 0.5, "cluster": 0.5, "myanmar": 1.0}
"""Weight, in syllables, of one unit of a script written without spaces."""
SLICE_CHARS: Final = 1024
"""Characters cut into words per call at most (a timed piece this long or shorter whole)."""
HYPHENATION_CACHE_WORDS: Final = 4096
"""Words kept hyphenated per dictionary, in pyphen's own cache (bounded here; pyphen's
default cache keeps every word the process ever hyphenated)."""
TIMED_TEXT_MAX_SECONDS: Final = 86_400.0
"""Latest time a ``TimedText`` may give: a day into its item is no real position."""

_RUN_CAP = 48
"""A run of letters is hyphenated in pieces of at most this many (no word is longer)."""
_TAIL = 16
"""Last characters of a word kept to find its closing punctuation."""
_DEFAULT_WEIGHT_PER_CHAR = 0.3
"""Weight per character of text not yet cut, before any text was cut (about English's)."""
_AHEAD_CHARS = 4 * SLICE_CHARS
"""Text cut ahead of the heard text at most by pushes and arriving audio (cutting further
would only pile up words that a later call then walks through)."""
_SKIP_CHARS = 2 * SLICE_CHARS
"""Characters of plain text not yet cut that the position must run into before they are
passed over as a span rather than cut."""
_SCAN_CHARS = 4096
"""Characters looked at, each side, for a place where a word surely starts."""

_HAN = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ua000-\ua48c\U00020000-\U000323af"
)
_SMALL_KANA = (
    "\u3041\u3043\u3045\u3047\u3049\u3083\u3085\u3087\u308e\u3095\u3096"
    "\u30a1\u30a3\u30a5\u30a7\u30a9\u30e3\u30e5\u30e7\u30ee\u30f5\u30f6"
    "\u31f0-\u31ff\uff67-\uff6e\uff9e\uff9f"
)
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\uff66-\uff9d\U0001b000-\U0001b16f"
_UNSPACED = (
    _HAN + "\u3041-\u30ff\u31f0-\u31ff\uff66-\uff9f\U0001b000-\U0001b16f"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff\ua9e0-\ua9ff\uaa60-\uaa7f"
)
_CLOSERS = "\"'”’)\\]」』）】〉》〕〗〙〛〞｣"
_PIECE = re.compile(
    r"(?P<space>[\s\u0f0b\u0f0c]+)"
    # marks that belong to the cluster before them: Khmer and Myanmar stacked consonants,
    # a Myanmar final consonant (killed by asat)
    r"|(?P<attach>\u17d2[\u1780-\u17a2]?|\u1039[\u1000-\u1021]?|[\u1000-\u102a]\u1037?\u103a)"
    r"|(?P<open>[(\[{“‘«‹„‚「『（【〈《〔〖〘〚〝［｛｟｢])"
    rf"|(?P<han>[{_HAN}])"
    rf"|(?P<kana>(?![{_SMALL_KANA}])[{_KANA}])"
    r"|(?P<cluster>[\u0e40-\u0e44]?[\u0e01-\u0e2e]|[\u0ec0-\u0ec4]?[\u0e81-\u0eae\u0edc-\u0edf]"
    r"|[\u1780-\u17b3])"
    r"|(?P<myanmar>[\u1000-\u102a\u103f\u104c-\u1055])"
    rf"|(?P<word>(?:(?![{_UNSPACED}])[^\W_])+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_HOLD = re.compile(
    r"(?:[\u0e40-\u0e44\u0ec0-\u0ec4]|\u17d2[\u1780-\u17a2]?|\u1039[\u1000-\u1021]?"
    r"|[\u1000-\u102a]\u1037?)\Z"
)
"""Text that may join what comes next (a leading vowel, a stacking sign, a consonant that
a final mark may kill): held back until more text or the text's end shows which."""
_LETTERS = re.compile(r"[^\W\d_]+")
_HANGUL = re.compile("[\uac00-\ud7a3]")
_DIGITS = re.compile(r"\d")
_SENTENCE_END = re.compile(rf"[.!?…。！？｡։۔।॥။។៕።]+[{_CLOSERS}]*$")
_CLAUSE_END = re.compile(rf"[,;:—–、，；：၊،]+[{_CLOSERS}]*$")

_SPACES = "\\s\u0f0b\u0f0c"
_THAI = ("\u0e01-\u0e2e", "\u0e30-\u0e3a\u0e45-\u0e4e", "\u0e40-\u0e44")
_LAO = ("\u0e81-\u0eae\u0edc-\u0edf", "\u0eb0-\u0ebc\u0ec6\u0ec8-\u0ecd", "\u0ec0-\u0ec4")
_HAN_OR_KANA = rf"[{_HAN}]|(?![{_SMALL_KANA}])[{_KANA}]"
_WORD_STARTS = re.compile(
    rf"[{_SPACES}](?=[^{_SPACES}])"
    rf"|(?:{_HAN_OR_KANA}|(?<={_HAN_OR_KANA})[{_SMALL_KANA}])(?={_HAN_OR_KANA})"
    + "".join(
        rf"|(?:[{consonant}]|(?<=[{consonant}])[{marks}]|(?<=[{consonant}][{marks}])[{marks}])"
        rf"(?=[{leading}]?[{consonant}])"
        for consonant, marks, leading in (_THAI, _LAO)
    )
)
"""What comes just before a place where a word starts whatever came earlier: a space
before a non-space, a Han character or a full kana (with the small kana after it) before
a Han character or a full kana, a Thai or Lao consonant (with up to two marks) before a
consonant or a leading vowel."""

_CORELESS, _WORD, _UNIT, _SPAN = 0, 1, 2, 3


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


def _syllables(letters: str, language: str) -> int:
    """Syllables in a run of letters: a Hangul block is one, the rest is hyphenated."""
    blocks = len(_HANGUL.findall(letters))
    if blocks:
        letters = _HANGUL.sub("", letters)
        if not letters:
            return blocks
    return blocks + len(_hyphenator(language).positions(letters)) + 1


def _pause(tail: str) -> float:
    if _SENTENCE_END.search(tail):
        return SENTENCE_PAUSE
    if _CLAUSE_END.search(tail):
        return CLAUSE_PAUSE
    return 0.0


class _Unit:
    """The word being cut: what is known of its weight so far, updated per piece of text.

    A run of letters is hyphenated whole (in pieces of at most ``_RUN_CAP``), so a word
    pushed a character at a time is re-weighed in constant time per character.
    """

    __slots__ = ("base", "closed", "digits", "kind", "language", "run", "spaced", "tail")

    def __init__(self, language: str) -> None:
        self.language = language
        self.reset()

    def reset(self) -> None:
        self.kind = _CORELESS
        self.spaced = False
        self.closed = 0.0
        self.base = 0.0
        self.digits = 0
        self.run = ""
        self.tail = ""

    def close_run(self) -> None:
        if self.run:
            self.closed += _syllables(self.run, self.language)
            self.run = ""

    def add_letters(self, piece: str) -> None:
        """Letters and digits of a spaced script; a letter run goes on across pushes."""
        end = 0
        for run in _LETTERS.finditer(piece):
            if run.start() != 0:
                self.close_run()
            self.run += run.group()
            while len(self.run) > _RUN_CAP:
                self.closed += _syllables(self.run[:_RUN_CAP], self.language)
                self.run = self.run[_RUN_CAP:]
            end = run.end()
        if end != len(piece):
            self.close_run()
        self.digits += len(_DIGITS.findall(piece))
        self.kind = _WORD
        self.tail = (self.tail + piece[-_TAIL:])[-_TAIL:]

    def add_mark(self, piece: str) -> None:
        """Punctuation, a symbol or a mark: it ends a letter run and may be a pause."""
        self.close_run()
        if piece.isdecimal():
            self.digits += len(piece)
        self.tail = (self.tail + piece)[-_TAIL:]

    def weight(self) -> float:
        weight = self.closed + self.base + DIGIT_SYLLABLES * self.digits + _pause(self.tail)
        if self.run:
            weight += _syllables(self.run, self.language)
        return max(weight, 0.5)


def word_weight(token: str, language: str = "en_US") -> float:
    """Spoken length of ``token`` in syllables, with the pause its punctuation implies;
    for text without spaces, the sum of its units."""
    aligner = TranscriptAligner(language=language)
    aligner.push_text(token)
    aligner.end_text()
    return aligner.total_weight


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


@dataclass
class _Pending:
    """Pushed text not yet cut into words, with its times if it came as ``TimedText``."""

    text: str
    offset: int
    start: float | None
    end: float | None


class _Rope:
    """Text addressed by its offset in the item's text; old text can be dropped in front.

    Appending is constant time and reading a span costs its length, however the text was
    pushed (a character at a time or all at once).
    """

    __slots__ = ("_ends", "_first", "_parts", "start")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._ends: list[int] = []
        self._first = 0
        self.start = 0

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._ends.append((self._ends[-1] if self._ends else self.start) + len(text))

    def slice(self, start: int, end: int) -> str:
        index = bisect.bisect_right(self._ends, start, self._first)
        position = self._ends[index - 1] if index > self._first else self.start
        pieces = []
        while index < len(self._parts) and position < end:
            part = self._parts[index]
            pieces.append(part[max(start - position, 0) : end - position])
            position = self._ends[index]
            index += 1
        return "".join(pieces)

    def drop_before(self, offset: int) -> None:
        while self._first < len(self._parts) and self._ends[self._first] <= offset:
            self.start = self._ends[self._first]
            self._first += 1
        if self._first > 32 and 2 * self._first > len(self._parts):
            del self._parts[: self._first]
            del self._ends[: self._first]
            self._first = 0


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
        self.item_id: str | None = None
        self._language = language
        self._speed = speed
        self._chunks: list[str] = []
        self._text_length = 0
        self._rope = _Rope()
        self._pending: list[_Pending] = []
        self._pending_offsets: list[int] = []
        self._pending_head = 0
        self._pending_at = 0
        self._timed_spans: list[tuple[int, int]] = []
        """Where queued ``TimedText`` lies (start and end offsets), in order."""
        self._carry = ""
        self._cursor = 0
        self._unit = _Unit(language)
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
        """Words cut so far (text still waiting to be cut is not counted; a span passed
        over by the estimate, see the module docstring, counts as one)."""
        return self._dropped + len(self._words)

    @property
    def kept_words(self) -> int:
        """Words still held in memory: the unheard ones and the current sentence's."""
        return len(self._words)

    @property
    def kept_chars(self) -> int:
        """Characters of text still addressable by ``text_between``."""
        return self._text_length - self._rope.start

    @property
    def total_weight(self) -> float:
        """Weight, in syllables, of the text cut so far."""
        return self._total_weight

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
        return self._cursor

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

    def word_end(self, index: int) -> int:
        """Offset just past word ``index`` and the text that trails it."""
        if index + 1 >= self.word_count:
            self._cut_more()
        if index + 1 < self.word_count:
            return self._word(index + 1).offset
        return self._cursor

    def text_between(self, start: int, end: int) -> str:
        """Text between two character offsets at or after the oldest kept word."""
        if start < self._rope.start:
            raise ValueError(f"text before offset {self._rope.start} is no longer kept")
        return self._rope.slice(start, end)

    def push_text(self, text: str | TimedText) -> None:
        """Append streamed text; a word split across pushes is joined.

        At most about ``SLICE_CHARS`` characters are cut into words now, and none once
        ``_AHEAD_CHARS`` wait unheard; the rest waits.
        """
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
        self._chunks.append(content)
        self._rope.append(content)
        self._text_length += len(content)
        behind = self._cursor - self.heard_chars < _AHEAD_CHARS
        if start is None and not self._queued() and len(content) <= SLICE_CHARS and behind:
            self._feed(content, final=False)
            return
        self._pending.append(_Pending(content, offset, start, end))
        self._pending_offsets.append(offset)
        if start is not None:
            spans = self._timed_spans
            if len(spans) > 32:
                del spans[: bisect.bisect_right(spans, self._cursor, key=lambda span: span[1])]
            spans.append((offset, offset + len(content)))
        if behind:
            self._cut(SLICE_CHARS)

    def _waiting(self, final: bool = False) -> bool:
        """True when there is text that cutting would make progress on; ``final``: also
        text held back for what may follow."""
        return self._queued() or ((final or self._text_ended) and bool(self._carry))

    def _queued(self) -> bool:
        """True when pushed text waits to be cut (not counting text held back)."""
        return self._pending_head < len(self._pending)

    def _queue_offset(self) -> int:
        """Offset of the first character waiting in the queue (after any held back)."""
        if not self._queued():
            return self._text_length
        return self._pending[self._pending_head].offset + self._pending_at

    def _pop_pending(self) -> None:
        self._pending_head += 1
        self._pending_at = 0
        if self._pending_head > 32 and 2 * self._pending_head > len(self._pending):
            del self._pending[: self._pending_head]
            del self._pending_offsets[: self._pending_head]
            self._pending_head = 0

    def _drop_queued_before(self, offset: int) -> None:
        """Take the queued text before ``offset`` off the queue without cutting it."""
        index = bisect.bisect_right(self._pending_offsets, offset, self._pending_head) - 1
        if index < self._pending_head:
            return
        entry = self._pending[index]
        self._pending_head = index
        self._pending_at = 0
        if offset - entry.offset >= len(entry.text):
            self._pop_pending()
        else:
            self._pending_at = offset - entry.offset

    def _cut(self, budget: int, *, final: bool = False) -> None:
        """Cut about ``budget`` characters of waiting text into words (a small timed piece
        whole, as its times are spread over all its words); ``final``: hold nothing back."""
        while self._waiting(final) and budget > 0:
            if self._queued():
                entry = self._pending[self._pending_head]
                whole = entry.start is not None and len(entry.text) <= SLICE_CHARS
                size = len(entry.text) if whole else budget
                taken = entry.text[self._pending_at : self._pending_at + size]
                self._pending_at += len(taken)
                if self._pending_at >= len(entry.text):
                    self._pop_pending()
            else:
                entry, taken = None, ""
            budget -= max(len(taken), 1)
            first_new = self._feed(taken, final=final)
            if entry is not None and entry.start is not None and entry.end is not None:
                self._time_words(first_new, entry, entry.start, entry.end)

    def _feed(self, taken: str, *, final: bool) -> int:
        """Cut ``taken``, after any text held back before it, into words, holding back its
        end if that may join what follows; returns the index of the first new word."""
        piece = self._carry + taken if self._carry else taken
        self._carry = ""
        if not final and (self._queued() or not self._text_ended):
            hold = _HOLD.search(piece, max(len(piece) - 3, 0))
            if hold is not None:
                piece, self._carry = piece[: hold.start()], piece[hold.start() :]
        offset = self._cursor
        self._cursor += len(piece)
        first_new = len(self._words)
        self._consume(piece, offset)
        return first_new

    def _consume(self, text: str, offset: int) -> None:
        """Run ``text``, which starts at ``offset``, through the word rules."""
        unit = self._unit
        for match in _PIECE.finditer(text):
            kind = match.lastgroup
            piece = match.group()
            if kind == "space":
                if self._words and not unit.spaced:
                    unit.spaced = True
                    unit.close_run()
                continue
            if not self._words or unit.spaced:
                self._start_word(offset + match.start())
            elif kind == "word" or kind == "open":
                if unit.kind == _UNIT:
                    self._start_word(offset + match.start())
            elif kind in UNIT_SYLLABLES and unit.kind != _CORELESS:
                self._start_word(offset + match.start())
            if kind == "word":
                unit.add_letters(piece)
            elif kind in UNIT_SYLLABLES:
                unit.kind = _UNIT
                unit.base += UNIT_SYLLABLES[kind]
                unit.tail = (unit.tail + piece)[-_TAIL:]
            else:
                unit.add_mark(piece)
        self._settle()

    def _start_word(self, offset: int) -> None:
        self._settle()
        self._words.append(_Word(offset, self._total_weight, None, self._anchor))
        self._unit.reset()

    def _settle(self) -> None:
        """Bring the total weight and the last word's sentence end up to date."""
        if self._words:
            word = self._words[-1]
            self._total_weight = word.weight + self._unit.weight()
            word.ends_sentence = self._unit.kind == _SPAN or bool(
                _SENTENCE_END.search(self._unit.tail)
            )

    def _time_words(self, first: int, entry: _Pending, start: float, end: float) -> None:
        """Give the words just cut from a timed piece their times: spread by weight over
        the piece, or by characters for a piece cut in several calls."""
        new = [self._words[i] for i in range(first, len(self._words))]
        if not new:
            return
        span = end - start
        if len(entry.text) <= SLICE_CHARS:
            total = self._total_weight - new[0].weight or 1.0
            fractions = [(word.weight - new[0].weight) / total for word in new]
        else:
            fractions = [max(word.offset - entry.offset, 0) / len(entry.text) for word in new]
        for word, fraction in zip(new, fractions, strict=True):
            timed = start + span * fraction
            if timed < self._anchor[0]:
                shown = self._rope.slice(word.offset, word.offset + 24).strip()
                self._repair(f"word {shown!r} starts before the previous word")
                timed = self._anchor[0]
            word.timed = timed
            word.anchor_start, word.anchor_weight = self._anchor
            self._anchor = (timed, word.weight)

    def _repair(self, what: str) -> None:
        if self._repairs == 0:
            logger.warning(
                "item %s: transcript timestamps repaired: %s (further repairs not logged)",
                self.item_id,
                what,
            )
        self._repairs += 1

    def end_text(self) -> None:
        self._text_ended = True
        self._cut(SLICE_CHARS)

    def push_audio(self, samples: int) -> None:
        if samples < 0:
            raise ValueError(f"audio sample count must be >= 0, got {samples}")
        self._audio += samples
        if self._queued() and self._cursor - self.heard_chars < _AHEAD_CHARS:
            self._cut(SLICE_CHARS)

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
        and audio arrive about together; the prior before that. Text not yet cut into
        words counts with the weight per character of the text cut so far.
        """
        prior = self._rate / (PLAIN_PACER_SYLLABLES_PER_SECOND * self._speed)
        total = self._total_weight
        waiting = self._text_length - self._cursor
        if waiting:
            total += waiting * self._weight_per_char()
        remaining_weight = total - anchor_weight
        audio_after_anchor = self._audio - anchor_start
        if remaining_weight <= 0:
            return prior
        fitted = audio_after_anchor / remaining_weight
        if not self._text_ended:
            return fitted if audio_after_anchor >= _CALIBRATION_SECONDS * self._rate else prior
        if self._audio_ended:
            return max(fitted, 0.0)
        return max(fitted, prior)

    def _cut_more(self) -> bool:
        """All words cut so far are heard: cut the next slice; True if a word was added."""
        count = self.word_count
        while self._waiting() and self.word_count == count:
            self._cut(SLICE_CHARS)
        return self.word_count > count

    def advance(self, played_samples: int) -> int:
        """Move the heard pointer to ``played_samples``; returns the heard word count."""
        while True:
            count = self.word_count
            while self._heard < count and self.word_start(self._heard) < played_samples:
                self._heard += 1
            if self._heard < count:
                return self._heard
            if not (self._pass_over_heard(played_samples) or self._cut_more()):
                return self._heard

    def hear_all(self) -> None:
        """The item completed: every word was heard (much text still waiting is passed
        over as one span, the rest cut now)."""
        begin = self._queue_offset()
        if self._text_length - begin > _SKIP_CHARS:
            start = self._word_start_between(begin, begin + _SCAN_CHARS)
            if start is not None:
                self._feed_queued(begin, start)
            self._add_span(self._text_length)
        self._cut(len(self._carry) + self._text_length - self._queue_offset() + 1, final=True)
        self._heard = self.word_count

    def _weight_per_char(self) -> float:
        """The estimate's weight for a character not yet cut: that of the text cut so far."""
        return self._total_weight / self._cursor if self._cursor else _DEFAULT_WEIGHT_PER_CHAR

    def _heard_offset(self, played_samples: int) -> float:
        """Where, by the estimate, the text not yet cut stops being heard at
        ``played_samples``: words starting before this character offset are heard."""
        if self._audio_ended and played_samples >= self._audio:
            return math.inf
        anchor_seconds, anchor_weight = self._anchor
        anchor_start = anchor_seconds * self._rate
        rate = self._samples_per_weight(anchor_start, anchor_weight)
        per_char = self._weight_per_char()
        if rate <= 0 or per_char <= 0:
            return math.inf
        weight = anchor_weight + (played_samples - 0.5 - anchor_start) / rate
        return self._cursor + (weight - self._total_weight) / per_char

    def _pass_over_heard(self, played_samples: int) -> bool:
        """All words cut are heard and the position runs far into plain text not yet cut:
        pass over the words heard there as one span, ending where a word surely starts
        after the heard offset; True if words were added."""
        begin = self._queue_offset()
        span = bisect.bisect_right(self._timed_spans, (begin, math.inf))
        if span and self._timed_spans[span - 1][1] > begin:
            return self._pass_over_timed(played_samples)
        plain_end = self._timed_spans[span][0] if span < len(self._timed_spans) else None
        if plain_end is None:
            plain_end = self._text_length
        if min(self._heard_offset(played_samples), plain_end) - begin < _SKIP_CHARS:
            return False
        start = self._word_start_between(begin, begin + _SCAN_CHARS)
        if start is None:
            return False
        count = self.word_count
        self._feed_queued(begin, start)
        if self._cursor != start:
            return self.word_count > count
        heard_end = self._heard_offset(played_samples)
        last = plain_end == self._text_length and self._text_ended
        if heard_end >= plain_end:
            end = plain_end if last else self._last_word_start(start, plain_end)
        else:
            first = math.ceil(heard_end)
            end = self._word_start_between(first, min(first + _SCAN_CHARS, plain_end))
            if end is None:
                end = self._last_word_start(start, first)
        if end is not None and end > self._cursor:
            self._add_span(end)
        return self.word_count > count

    def _pass_over_timed(self, played_samples: int) -> bool:
        """``_pass_over_heard`` inside a long ``TimedText``, whose words are timed by
        their characters: the heard offset is where its times reach the position."""
        entry = self._pending[self._pending_head]
        if entry.start is None or entry.end is None or len(entry.text) <= SLICE_CHARS:
            return False
        begin = self._queue_offset()
        entry_end = entry.offset + len(entry.text)
        seconds = (played_samples - 0.5) / self._rate
        if (self._audio_ended and played_samples >= self._audio) or (
            entry.end == entry.start and entry.start < seconds
        ):
            heard_end = math.inf
        elif entry.end == entry.start:
            heard_end = -math.inf
        else:
            fraction = (seconds - entry.start) / (entry.end - entry.start)
            heard_end = entry.offset + fraction * len(entry.text)
        if min(heard_end, entry_end) - begin < _SKIP_CHARS:
            return False
        start = self._word_start_between(begin, begin + _SCAN_CHARS)
        if start is None:
            return False
        count = self.word_count
        if start > begin:
            taken = self._rope.slice(begin, start)
            self._drop_queued_before(start)
            self._time_words(self._feed(taken, final=False), entry, entry.start, entry.end)
        if self._cursor != start:
            return self.word_count > count
        if heard_end >= entry_end:
            last = entry_end == self._text_length and self._text_ended
            end = entry_end if last else self._last_word_start(start, entry_end)
        else:
            first = math.ceil(heard_end)
            end = self._word_start_between(first, min(first + _SCAN_CHARS, entry_end))
            if end is None:
                end = self._last_word_start(start, first)
        if end is not None and end > self._cursor:
            self._add_span(end)
            self._time_words(len(self._words) - 1, entry, entry.start, entry.end)
        return self.word_count > count

    def _feed_queued(self, begin: int, end: int) -> None:
        """Cut the queued plain text from ``begin`` (the queue's head) to ``end``."""
        if end > begin:
            taken = self._rope.slice(begin, end)
            self._drop_queued_before(end)
            self._feed(taken, final=False)

    def _add_span(self, end: int) -> None:
        """Pass over the text from the cursor to ``end`` as one span, weighed by the
        estimate's weight per character; it ends a sentence, so it is its own segment."""
        per_char = self._weight_per_char()
        start = self._cursor
        self._start_word(start)
        unit = self._unit
        unit.kind = _SPAN
        unit.spaced = True
        unit.base = (end - start) * per_char
        self._settle()
        self._carry = ""
        self._cursor = end
        self._drop_queued_before(end)

    def _word_start_between(self, low: int, high: int) -> int | None:
        """The first offset in ``low..high`` where a word surely starts, or None."""
        high = min(high, self._text_length)
        base = max(low - 1, self._rope.start)
        window = self._rope.slice(base, min(high + 1, self._text_length))
        for match in _WORD_STARTS.finditer(window):
            offset = base + match.end()
            if offset > high:
                break
            if offset >= low:
                return offset
        return None

    def _last_word_start(self, low: int, high: int) -> int | None:
        """The last offset in ``low..high`` (at most ``_SCAN_CHARS`` back from ``high``)
        where a word surely starts, or None."""
        base = max(low, high - _SCAN_CHARS, self._rope.start + 1) - 1
        window = self._rope.slice(base, min(high + 1, self._text_length))
        found = None
        for match in _WORD_STARTS.finditer(window):
            offset = base + match.end()
            if offset > high:
                break
            if offset >= low:
                found = offset
        return found

    def forget_before(self, index: int) -> None:
        """Drop words before ``index`` (already heard and reported) to keep memory flat."""
        index = min(index, self._heard)
        while self._dropped < index and len(self._words) > 1:
            self._words.popleft()
            self._dropped += 1
        self._rope.drop_before(self._words[0].offset if self._words else self._cursor)

    def next_boundary(self, played_samples: int) -> int | None:
        """The played count at which the next word becomes heard, or None if none is known."""
        if self._heard >= self.word_count and not self._cut_more():
            return None
        return max(self.word_start(self._heard) + 1, played_samples + 1)
