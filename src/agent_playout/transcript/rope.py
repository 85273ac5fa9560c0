"""Text addressed by its offset in an item's whole text, with old text dropped in front (pure)."""

from __future__ import annotations

import bisect


class Rope:
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
        """Offset of the oldest character still kept."""

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
