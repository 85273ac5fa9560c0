"""Pure sample accounting for one item: what was received, pushed and played.

No asyncio and no I/O: the driver feeds it counts read from the sink and asks it for
decisions, so the rules are tested exhaustively and fast.
"""

from __future__ import annotations

import enum

from ..errors import PlayoutStateError


class ItemState(enum.Enum):
    """Lifecycle of one item: pending → playing ⇄ paused → finished | interrupted."""

    PENDING = "pending"
    PLAYING = "playing"
    PAUSED = "paused"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self in (ItemState.FINISHED, ItemState.INTERRUPTED)


_ALLOWED: dict[ItemState, frozenset[ItemState]] = {
    ItemState.PENDING: frozenset({ItemState.PLAYING, ItemState.FINISHED, ItemState.INTERRUPTED}),
    ItemState.PLAYING: frozenset({ItemState.PAUSED, ItemState.FINISHED, ItemState.INTERRUPTED}),
    ItemState.PAUSED: frozenset({ItemState.PLAYING, ItemState.INTERRUPTED}),
    ItemState.FINISHED: frozenset(),
    ItemState.INTERRUPTED: frozenset(),
}


class ItemTimeline:
    """Counts for one item, in samples per channel on the sink's clock.

    ``base`` is the sink's write position (played + queued) when the item's first sample
    was pushed; the item's played count is the sink's played count minus ``base``, kept
    between 0 and ``pushed`` and never moving backwards while the item plays (a receiver's
    settlement may lower an interrupted item's final count, once: ``settle``).
    """

    __slots__ = ("_base", "_final", "_played", "_pushed", "_received", "_state", "item_id")

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self._state = ItemState.PENDING
        self._final = False
        self._received = 0
        self._pushed = 0
        self._played = 0
        self._base: int | None = None

    @property
    def state(self) -> ItemState:
        return self._state

    @property
    def is_final(self) -> bool:
        """``state.is_final``, kept as a flag: it is read for every frame and chunk."""
        return self._final

    @property
    def received(self) -> int:
        return self._received

    @property
    def pushed(self) -> int:
        return self._pushed

    @property
    def played(self) -> int:
        return self._played

    @property
    def started(self) -> bool:
        """True once the item's first sample went to the sink."""
        return self._base is not None

    def _move(self, target: ItemState) -> None:
        if target not in _ALLOWED[self._state]:
            raise PlayoutStateError(
                f"item {self.item_id!r}: cannot go from {self._state.value} to {target.value}"
            )
        self._state = target
        self._final = target.is_final

    def receive(self, samples: int) -> None:
        """Count ``samples`` received from the model (before re-chunking)."""
        if samples < 0:
            raise ValueError(f"received sample count must be >= 0, got {samples}")
        if self._final:
            raise PlayoutStateError(f"item {self.item_id!r} is {self._state.value}")
        self._received += samples

    def push(self, samples: int, sink_write_position: int) -> None:
        """Count ``samples`` handed to the sink; the first push fixes ``base``."""
        if samples < 0:
            raise ValueError(f"pushed sample count must be >= 0, got {samples}")
        if self._final:
            raise PlayoutStateError(f"item {self.item_id!r} is {self._state.value}")
        if self._base is None:
            self._base = sink_write_position
            if self._state is ItemState.PENDING:
                self._move(ItemState.PLAYING)
        self._pushed += samples

    def observe(self, sink_played: int) -> int:
        """Update the item's played count from the sink's total and return it."""
        if self._base is None or self._final:
            return self._played
        position = min(max(sink_played - self._base, 0), self._pushed)
        if position > self._played:
            self._played = position
        return self._played

    def pause(self) -> None:
        self._move(ItemState.PAUSED)

    def resume(self) -> None:
        self._move(ItemState.PLAYING)

    def complete(self) -> None:
        """The sink played everything pushed: the item's count is exactly ``pushed``."""
        self._move(ItemState.FINISHED)
        self._played = self._pushed

    @property
    def base(self) -> int | None:
        """The sink's write position at the item's first push (None before it)."""
        return self._base

    def settle(self, heard: int) -> None:
        """An interrupted item's receiver confirmed ``heard`` samples: the count can only
        drop to it (packets the receiver dropped), never rise past what was sent."""
        if self._state is not ItemState.INTERRUPTED:
            raise PlayoutStateError(
                f"item {self.item_id!r} is {self._state.value}, not interrupted"
            )
        self._played = min(self._played, max(heard, 0))

    def interrupt(self, sink_played: int | None) -> None:
        """Freeze the count at the sink's played total read at the moment it was cleared."""
        if sink_played is not None:
            self.observe(sink_played)
        self._move(ItemState.INTERRUPTED)
