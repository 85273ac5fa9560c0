"""Streamed text cut into weighed words, incrementally and in bounded slices (pure).

Text is cut into words at most about ``SLICE_CHARS`` characters per call, so a huge push
costs little at once: the rest waits in a queue until the aligner asks for more. Text
that the position has run far into is not cut one word at a time: it is passed over as
one span from the queue's head to an offset the aligner estimates, ending where a word
surely starts (see ``scripts.sure_word_starts``), and weighed as its characters.

A word pushed as ``TimedText`` gets its time from the piece; a start earlier than the
previous word's is moved up to it and counted as a repair, rather than raising, so a
playout never crashes on timestamps that cannot be right.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable

from .rope import Rope
from .scripts import HOLD, PIECE, sure_word_starts
from .text_queue import SLICE_CHARS, QueuedText, TextQueue
from .timed_text import TimedText
from .weights import UNIT_SYLLABLES, WordKind, WordWeigher

logger = logging.getLogger("agent_playout")

_DEFAULT_WEIGHT_PER_CHAR = 0.3
"""Weight per character of text not yet cut, before any text was cut (about English's)."""
_SKIP_CHARS = 2 * SLICE_CHARS
"""Characters of plain text not yet cut that the position must run into before they are
passed over as a span rather than cut."""
_SCAN_CHARS = 4096
"""Characters looked at, each side, for a place where a word surely starts."""


def word_weight(token: str, language: str = "en_US") -> float:
    """Spoken length of ``token`` in syllables, with the pause its punctuation implies;
    for text without spaces, the sum of its units."""
    words = WordCutter(language)
    words.push_text(token, cut=True)
    words.end_text()
    return words.total_weight


class Word:
    """One word: where it is in the text and what places it on the audio.

    ``weight`` is the weight of all text before the word; ``timed`` its start in seconds
    when timestamps gave one; the anchor is the last timed word before it (its start in
    seconds and its weight), from which the estimate paces the word.
    """

    __slots__ = ("anchor_start", "anchor_weight", "ends_sentence", "offset", "timed", "weight")

    def __init__(
        self, offset: int, weight: float, timed: float | None, anchor: tuple[float, float]
    ) -> None:
        self.offset = offset
        self.weight = weight
        self.timed = timed
        self.anchor_start, self.anchor_weight = anchor
        self.ends_sentence = False


class WordCutter:
    """The words of one item's streamed text, cut as far as asked, and the text they hold.

    Words are kept in a deque from the oldest not yet forgotten; an index counts from the
    item's first word. ``item_id`` names the item in log records.
    """

    def __init__(self, language: str) -> None:
        self.item_id: str | None = None
        self._chunks: list[str] = []
        self._text_length = 0
        self._rope = Rope()
        self._queue = TextQueue()
        self._carry = ""
        self._cursor = 0
        self._unit = WordWeigher(language)
        self._words: deque[Word] = deque()
        self._dropped = 0
        self._total_weight = 0.0
        self._anchor = (0.0, 0.0)
        self._text_ended = False
        self._repairs = 0

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
    def text_ended(self) -> bool:
        return self._text_ended

    @property
    def cursor(self) -> int:
        """Offset up to which the text is cut into words."""
        return self._cursor

    @property
    def word_count(self) -> int:
        return self._dropped + len(self._words)

    @property
    def kept_words(self) -> int:
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
    def anchor(self) -> tuple[float, float]:
        """The last timed word's start, in seconds, and weight; (0, 0) before any."""
        return self._anchor

    @property
    def repairs(self) -> int:
        return self._repairs

    def word(self, index: int) -> Word:
        return self._words[index - self._dropped]

    def text_between(self, start: int, end: int) -> str:
        """Text between two character offsets at or after the oldest kept word."""
        if start < self._rope.start:
            raise ValueError(f"text before offset {self._rope.start} is no longer kept")
        return self._rope.slice(start, end)

    def weight_per_char(self) -> float:
        """The estimate's weight for a character not yet cut: that of the text cut so far."""
        return self._total_weight / self._cursor if self._cursor else _DEFAULT_WEIGHT_PER_CHAR

    def estimated_weight(self) -> float:
        """Weight of all text pushed: that cut, plus the rest at ``weight_per_char``."""
        waiting = self._text_length - self._cursor
        if waiting:
            return self._total_weight + waiting * self.weight_per_char()
        return self._total_weight

    def push_text(self, text: str | TimedText, *, cut: bool) -> None:
        """Append streamed text; a word split across pushes is joined. ``cut``: cut up to
        about ``SLICE_CHARS`` characters into words now (else all of it waits)."""
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
        if start is None and not self.queued() and len(content) <= SLICE_CHARS and cut:
            self._feed(content, final=False)
            return
        self._queue.append(QueuedText(content, offset, start, end), self._cursor)
        if cut:
            self.cut(SLICE_CHARS)

    def end_text(self) -> None:
        self._text_ended = True
        self.cut(SLICE_CHARS)

    def queued(self) -> bool:
        """True when pushed text waits to be cut (not counting text held back)."""
        return bool(self._queue)

    def _waiting(self, final: bool = False) -> bool:
        """True when there is text that cutting would make progress on; ``final``: also
        text held back for what may follow."""
        return self.queued() or ((final or self._text_ended) and bool(self._carry))

    def _queue_offset(self) -> int:
        """Offset of the first character waiting in the queue (after any held back)."""
        return self._queue.head_offset(self._text_length)

    def cut(self, budget: int, *, final: bool = False) -> None:
        """Cut about ``budget`` characters of waiting text into words (a small timed piece
        whole, as its times are spread over all its words); ``final``: hold nothing back."""
        while self._waiting(final) and budget > 0:
            entry: QueuedText | None = None
            taken = ""
            if self._queue:
                entry, taken = self._queue.take(budget)
            budget -= max(len(taken), 1)
            first_new = self._feed(taken, final=final)
            if entry is not None:
                self._time_words(first_new, entry)

    def cut_next_word(self) -> bool:
        """Cut slices until a word is added or no text waits; True if a word was added."""
        count = self.word_count
        while self._waiting() and self.word_count == count:
            self.cut(SLICE_CHARS)
        return self.word_count > count

    def cut_all(self) -> None:
        """Cut all the text now: much text still waiting is passed over as one span."""
        begin = self._queue_offset()
        if self._text_length - begin > _SKIP_CHARS:
            start = self._word_start_between(begin, begin + _SCAN_CHARS)
            if start is not None:
                self._feed_queued(begin, start)
            self._add_span(self._text_length)
        self.cut(len(self._carry) + self._text_length - self._queue_offset() + 1, final=True)

    def _feed(self, taken: str, *, final: bool) -> int:
        """Cut ``taken``, after any text held back before it, into words, holding back its
        end if that may join what follows; returns the index of the first new word."""
        piece = self._carry + taken if self._carry else taken
        self._carry = ""
        if not final and (self.queued() or not self._text_ended):
            hold = HOLD.search(piece, max(len(piece) - 3, 0))
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
        for match in PIECE.finditer(text):
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
                if unit.kind == WordKind.UNIT:
                    self._start_word(offset + match.start())
            elif kind in UNIT_SYLLABLES and unit.kind != WordKind.CORELESS:
                self._start_word(offset + match.start())
            if kind == "word":
                unit.add_letters(piece)
            elif kind in UNIT_SYLLABLES:
                unit.add_unit(kind, piece)
            else:
                unit.add_mark(piece)
        self._settle()

    def _start_word(self, offset: int) -> None:
        self._settle()
        self._words.append(Word(offset, self._total_weight, None, self._anchor))
        self._unit.reset()

    def _settle(self) -> None:
        """Bring the total weight and the last word's sentence end up to date."""
        if self._words:
            word = self._words[-1]
            self._total_weight = word.weight + self._unit.weight()
            word.ends_sentence = self._unit.ends_sentence()

    def _time_words(self, first: int, entry: QueuedText) -> None:
        """Give the words just cut from a timed piece their times: spread by weight over
        the piece, or by characters for a piece cut in several calls."""
        new = [self._words[i] for i in range(first, len(self._words))]
        if not new or entry.start is None or entry.end is None:
            return
        start, span = entry.start, entry.end - entry.start
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

    def queued_region(self) -> tuple[QueuedText | None, int]:
        """The text the queue's head lies in: the ``TimedText`` piece and its end if the
        head is inside one, else None and where the plain text ends (the next timed piece,
        or the text's end)."""
        return self._queue.region(self._text_length)

    def pass_over(
        self, region_end: int, heard_end: Callable[[], float], timed: QueuedText | None = None
    ) -> bool:
        """Pass over the heard words of the queued text up to ``region_end`` as one span.

        ``heard_end`` gives the character offset where, by the aligner's estimate, the text
        stops being heard (asked again once the text before the first sure word start is
        cut, as cutting moves the estimate); the span ends at the first sure word start
        after it. Nothing is done unless the position runs ``_SKIP_CHARS`` into the queue.
        ``timed``: the ``TimedText`` piece the region is, whose words take its times.
        True if words were added.
        """
        begin = self._queue_offset()
        if min(heard_end(), region_end) - begin < _SKIP_CHARS:
            return False
        start = self._word_start_between(begin, begin + _SCAN_CHARS)
        if start is None:
            return False
        count = self.word_count
        if start > begin:
            first_new = self._feed_queued(begin, start)
            if timed is not None:
                self._time_words(first_new, timed)
        if self._cursor != start:
            return self.word_count > count
        end = self._span_end(start, heard_end(), region_end)
        if end is not None and end > self._cursor:
            self._add_span(end)
            if timed is not None:
                self._time_words(len(self._words) - 1, timed)
        return self.word_count > count

    def _span_end(self, start: int, heard_end: float, region_end: int) -> int | None:
        """Where a span passed over from ``start`` ends: the first sure word start from
        ``heard_end`` on, or the region's end if all of it is heard."""
        if heard_end >= region_end:
            if region_end == self._text_length and self._text_ended:
                return region_end
            return self._last_word_start(start, region_end)
        first = math.ceil(heard_end)
        end = self._word_start_between(first, min(first + _SCAN_CHARS, region_end))
        return self._last_word_start(start, first) if end is None else end

    def _feed_queued(self, begin: int, end: int) -> int:
        """Cut the queued text from ``begin`` (the queue's head) to ``end``; returns the
        index of the first new word."""
        if end <= begin:
            return len(self._words)
        taken = self._rope.slice(begin, end)
        self._queue.drop_before(end)
        return self._feed(taken, final=False)

    def _add_span(self, end: int) -> None:
        """Pass over the text from the cursor to ``end`` as one span, weighed by the
        estimate's weight per character; it ends a sentence, so it is its own segment."""
        per_char = self.weight_per_char()
        start = self._cursor
        self._start_word(start)
        self._unit.make_span((end - start) * per_char)
        self._settle()
        self._carry = ""
        self._cursor = end
        self._queue.drop_before(end)

    def _word_start_between(self, low: int, high: int) -> int | None:
        """The first offset in ``low..high`` where a word surely starts, or None."""
        high = min(high, self._text_length)
        base = max(low - 1, self._rope.start)
        window = self._rope.slice(base, min(high + 1, self._text_length))
        return next(sure_word_starts(window, base, low, high), None)

    def _last_word_start(self, low: int, high: int) -> int | None:
        """The last offset in ``low..high`` (at most ``_SCAN_CHARS`` back from ``high``)
        where a word surely starts, or None."""
        base = max(low, high - _SCAN_CHARS, self._rope.start + 1) - 1
        window = self._rope.slice(base, min(high + 1, self._text_length))
        starts = list(sure_word_starts(window, base, low, high))
        return starts[-1] if starts else None

    def forget_before(self, index: int) -> None:
        """Drop words before ``index`` (keeping the last) and the text before them."""
        while self._dropped < index and len(self._words) > 1:
            self._words.popleft()
            self._dropped += 1
        self._rope.drop_before(self._words[0].offset if self._words else self._cursor)
