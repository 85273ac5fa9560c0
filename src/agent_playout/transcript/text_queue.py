"""Pushed text waiting to be cut into words, in order, with any ``TimedText`` times (pure)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

SLICE_CHARS: Final = 1024
"""Characters cut into words per call at most (a timed piece this long or shorter whole)."""


@dataclass
class QueuedText:
    """Pushed text not yet cut into words, with its times if it came as ``TimedText``."""

    text: str
    offset: int
    start: float | None
    end: float | None


class TextQueue:
    """Text pushed and not yet cut, taken from its head in slices or dropped up to an offset.

    Offsets count characters of the item's whole text. Taking and dropping cost the same
    however many pieces the text came in; finished pieces are let go in batches.
    """

    def __init__(self) -> None:
        self._pending: list[QueuedText] = []
        self._offsets: list[int] = []
        self._head = 0
        self._at = 0
        self._timed_spans: list[tuple[int, int]] = []
        """Where queued ``TimedText`` lies (start and end offsets), in order."""

    def __bool__(self) -> bool:
        """True when pushed text waits to be cut."""
        return self._head < len(self._pending)

    def append(self, entry: QueuedText, cursor: int) -> None:
        """Queue ``entry``; timed pieces that end before ``cursor`` (cut) are forgotten."""
        self._pending.append(entry)
        self._offsets.append(entry.offset)
        if entry.start is not None:
            spans = self._timed_spans
            if len(spans) > 32:
                del spans[: bisect.bisect_right(spans, cursor, key=lambda span: span[1])]
            spans.append((entry.offset, entry.offset + len(entry.text)))

    def head_offset(self, text_length: int) -> int:
        """Offset of the first character waiting; ``text_length`` when none waits."""
        if not self:
            return text_length
        return self._pending[self._head].offset + self._at

    def take(self, budget: int) -> tuple[QueuedText, str]:
        """The next slice of the head piece, about ``budget`` characters (a small timed
        piece whole, as its times are spread over all its words), and the piece."""
        entry = self._pending[self._head]
        whole = entry.start is not None and len(entry.text) <= SLICE_CHARS
        size = len(entry.text) if whole else budget
        taken = entry.text[self._at : self._at + size]
        self._at += len(taken)
        if self._at >= len(entry.text):
            self._pop()
        return entry, taken

    def _pop(self) -> None:
        self._head += 1
        self._at = 0
        if self._head > 32 and 2 * self._head > len(self._pending):
            del self._pending[: self._head]
            del self._offsets[: self._head]
            self._head = 0

    def drop_before(self, offset: int) -> None:
        """Take the queued text before ``offset`` off the queue without cutting it."""
        index = bisect.bisect_right(self._offsets, offset, self._head) - 1
        if index < self._head:
            return
        entry = self._pending[index]
        self._head = index
        self._at = 0
        if offset - entry.offset >= len(entry.text):
            self._pop()
        else:
            self._at = offset - entry.offset

    def region(self, text_length: int) -> tuple[QueuedText | None, int]:
        """The text the head lies in: the ``TimedText`` piece and its end if the head is
        inside one, else None and where the plain text ends (the next timed piece, or
        ``text_length``)."""
        begin = self.head_offset(text_length)
        span = bisect.bisect_right(self._timed_spans, (begin, float("inf")))
        if span and self._timed_spans[span - 1][1] > begin:
            return self._pending[self._head], self._timed_spans[span - 1][1]
        if span < len(self._timed_spans):
            return None, self._timed_spans[span][0]
        return None, text_length
