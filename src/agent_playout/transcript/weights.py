"""How long a word is spoken, in syllables: hyphenation, digits, units and pauses (pure).

A word weighs its syllables (from a hyphenation dictionary; a Hangul block is one), its
digits as spoken, the units of a script without spaces (see ``scripts``), plus a pause for
the punctuation that ends it. The estimate spreads these weights over the audio.
"""

from __future__ import annotations

import functools
from enum import IntEnum
from typing import Final

import pyphen

from .scripts import CLAUSE_END, DIGITS, HANGUL, LETTERS, SENTENCE_END

PLAIN_PACER_SYLLABLES_PER_SECOND: Final = 3.83
"""LiveKit 0.x's fixed pacing rate; the estimate's prior before any audio is known."""
SENTENCE_PAUSE: Final = 1.5
"""Extra weight, in syllables, for the pause a voice makes after a sentence."""
CLAUSE_PAUSE: Final = 0.75
"""Extra weight, in syllables, for the pause after a comma, colon or dash."""
DIGIT_SYLLABLES: Final = 1.3
"""Spoken syllables per written digit ("21" is "twen-ty one")."""
UNIT_SYLLABLES: Final = {"han": 1.0, "kana": 0.5, "cluster": 0.5, "myanmar": 1.0}
"""Weight, in syllables, of one unit of a script written without spaces."""
HYPHENATION_CACHE_WORDS: Final = 4096
"""Words kept hyphenated per dictionary, in pyphen's own cache (bounded here; pyphen's
default cache keeps every word the process ever hyphenated)."""

_RUN_CAP = 48
"""A run of letters is hyphenated in pieces of at most this many (no word is longer)."""
_TAIL = 16
"""Last characters of a word kept to find its closing punctuation."""


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
    blocks = len(HANGUL.findall(letters))
    if blocks:
        letters = HANGUL.sub("", letters)
        if not letters:
            return blocks
    return blocks + len(_hyphenator(language).positions(letters)) + 1


def _pause(tail: str) -> float:
    if SENTENCE_END.search(tail):
        return SENTENCE_PAUSE
    if CLAUSE_END.search(tail):
        return CLAUSE_PAUSE
    return 0.0


class WordKind(IntEnum):
    """What the word being weighed is made of so far."""

    CORELESS = 0
    """Only punctuation or marks yet."""
    WORD = 1
    """Letters or digits of a spaced script."""
    UNIT = 2
    """A unit of a script without spaces."""
    SPAN = 3
    """Text passed over as one span, weighed by its characters."""


class WordWeigher:
    """The word being cut: what is known of its weight so far, updated per piece of text.

    A run of letters is hyphenated whole (in pieces of at most ``_RUN_CAP``), so a word
    pushed a character at a time is re-weighed in constant time per character.
    """

    __slots__ = ("base", "closed", "digits", "kind", "language", "run", "spaced", "tail")

    def __init__(self, language: str) -> None:
        self.language = language
        self.reset()

    def reset(self) -> None:
        self.kind = WordKind.CORELESS
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
        for run in LETTERS.finditer(piece):
            if run.start() != 0:
                self.close_run()
            self.run += run.group()
            while len(self.run) > _RUN_CAP:
                self.closed += _syllables(self.run[:_RUN_CAP], self.language)
                self.run = self.run[_RUN_CAP:]
            end = run.end()
        if end != len(piece):
            self.close_run()
        self.digits += len(DIGITS.findall(piece))
        self.kind = WordKind.WORD
        self.tail = (self.tail + piece[-_TAIL:])[-_TAIL:]

    def add_unit(self, kind: str, piece: str) -> None:
        """A unit of a script without spaces (``kind`` names it in ``UNIT_SYLLABLES``)."""
        self.kind = WordKind.UNIT
        self.base += UNIT_SYLLABLES[kind]
        self.tail = (self.tail + piece)[-_TAIL:]

    def add_mark(self, piece: str) -> None:
        """Punctuation, a symbol or a mark: it ends a letter run and may be a pause."""
        self.close_run()
        if piece.isdecimal():
            self.digits += len(piece)
        self.tail = (self.tail + piece)[-_TAIL:]

    def make_span(self, weight: float) -> None:
        """Weigh the word as a span of text passed over: ``weight`` in all."""
        self.kind = WordKind.SPAN
        self.spaced = True
        self.base = weight

    def ends_sentence(self) -> bool:
        """True when the word closes a sentence (a span always does)."""
        return self.kind == WordKind.SPAN or bool(SENTENCE_END.search(self.tail))

    def weight(self) -> float:
        weight = self.closed + self.base + DIGIT_SYLLABLES * self.digits + _pause(self.tail)
        if self.run:
            weight += _syllables(self.run, self.language)
        return max(weight, 0.5)
