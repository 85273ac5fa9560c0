"""``ItemRecord``: the one owner of an item's mutable state, changed only by its methods.

The audio's lifecycle (pending → playing ⇄ paused → finished | interrupted) is the
timeline's; the run's is the record's own: waiting (for the previous item) → running
(tasks started) → stopped (position frozen, tasks cancelled) → released (wound down,
waiters woken). A change the lifecycle does not allow raises ``PlayoutStateError``
naming the item, rather than leaving the item half in two states.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence

from ..core.positions import Underruns, UnderrunShare, input_heard
from ..core.timeline import ItemState, ItemTimeline
from ..errors import PlayoutStateError
from ..sinks.base import PositionedSink
from .guards import wake


class RunStage(enum.Enum):
    """Where the driver is with an item: waiting → running → stopped → released."""

    WAITING = "waiting"
    RUNNING = "running"
    STOPPED = "stopped"
    RELEASED = "released"


class ItemRecord:
    """One item's state: its timeline, run stage, error, flags, tasks and waiters.

    ``AgentPlayout`` and ``ItemRun`` change it only through its methods; ``PlayoutHandle``
    reads it. Hot paths (positions, the per-chunk checks) are plain attribute reads.
    """

    __slots__ = (
        "_confirmed",
        "_error",
        "_first_frame_ns",
        "_input_rate",
        "_interrupted",
        "_stage",
        "_stop_emitted",
        "_stop_requested",
        "_tasks",
        "_text_error",
        "_underruns",
        "_waiters",
        "content_index",
        "item_id",
        "play_ns",
        "push",
        "receive",
        "timeline",
    )

    def __init__(self, item_id: str, content_index: int, *, input_rate: int, play_ns: int) -> None:
        self.item_id = item_id
        self.content_index = content_index
        self.play_ns = play_ns
        self.timeline = ItemTimeline(item_id)
        # Once a frame and once a chunk: the timeline's own methods, bound here once.
        self.receive = self.timeline.receive
        """Count samples received from the model (before re-chunking)."""
        self.push = self.timeline.push
        """Count samples handed to the sink, given its write position before them."""
        self._stage = RunStage.WAITING
        self._stop_requested: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._interrupted = False
        self._stop_emitted = False
        self._error: BaseException | None = None
        self._text_error: BaseException | None = None
        self._first_frame_ns: int | None = None
        self._input_rate = input_rate
        self._underruns = UnderrunShare()
        self._confirmed: bool | None = None

    # The run's lifecycle.

    @property
    def stage(self) -> RunStage:
        return self._stage

    @property
    def stopped(self) -> bool:
        """True once the item was stopped (its position is then final)."""
        return self._stage is RunStage.STOPPED or self._stage is RunStage.RELEASED

    @property
    def released(self) -> bool:
        """True once the item wound down and its waiters were woken."""
        return self._stage is RunStage.RELEASED

    @property
    def tasks(self) -> Sequence[asyncio.Task[None]]:
        return self._tasks

    @property
    def stop_requested(self) -> asyncio.Future[None]:
        """Done once the stop is complete: the item's own task awaits it to wind down."""
        return self._stop_requested

    def _move(self, allowed: tuple[RunStage, ...], target: RunStage) -> None:
        if self._stage not in allowed:
            raise PlayoutStateError(
                f"item {self.item_id!r}: cannot go from {self._stage.value} to {target.value}"
            )
        self._stage = target

    def run(self, tasks: list[asyncio.Task[None]]) -> None:
        """The item's tasks started: waiting → running."""
        self._move((RunStage.WAITING,), RunStage.RUNNING)
        self._tasks = tasks

    def stop(self, *, interrupted: bool) -> bool:
        """Begin the stop: → stopped, and cut short if ``interrupted``. False if it already
        stopped (the stop happens once)."""
        if self.stopped:
            return False
        self._move((RunStage.WAITING, RunStage.RUNNING), RunStage.STOPPED)
        if interrupted:
            self._interrupted = True
        return True

    def stop_done(self) -> None:
        """The stop is complete: wake the item's own task."""
        wake(self._stop_requested)

    def drop_tasks(self) -> None:
        """Forget the tasks once they ended (or were left to end on their own)."""
        self._tasks = []

    def release(self) -> None:
        """Stopped → released: wake every ``wait_for_playout`` caller."""
        self._move((RunStage.STOPPED,), RunStage.RELEASED)
        for waiter in self._waiters:
            wake(waiter)
        self._waiters.clear()

    async def wait_released(self) -> None:
        """Return once released. Each caller waits on its own future, so cancelling one
        cancels only its own; a release wakes each directly (one hop, not a shield's two)."""
        if self.released:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not self.released:
                self._waiters.remove(waiter)

    # What happened to the item.

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def text_error(self) -> BaseException | None:
        return self._text_error

    def fail(self, error: BaseException) -> bool:
        """Record the error that ends the item (it is then cut short); False if one was
        already recorded, which stays."""
        if self.stopped:
            raise PlayoutStateError(f"item {self.item_id!r} failed after it stopped: {error!r}")
        if self._error is not None:
            return False
        self._error = error
        self._interrupted = True
        return True

    def fail_text(self, error: BaseException) -> bool:
        """Record the error that stopped the captions; False if one was already recorded."""
        if self._text_error is not None:
            return False
        self._text_error = error
        return True

    def claim_stop_event(self) -> bool:
        """True once, for the one ``playout_stopped`` of an item whose audio started."""
        if self._first_frame_ns is None or self._stop_emitted:
            return False
        self._stop_emitted = True
        return True

    # The audio.

    @property
    def started(self) -> bool:
        """True once the item's first audio frame arrived (``playout_started`` is due)."""
        return self._first_frame_ns is not None

    @property
    def first_frame_ns(self) -> int | None:
        return self._first_frame_ns

    @property
    def input_rate(self) -> int:
        """The rate of the item's audio (the sink's until the first frame)."""
        return self._input_rate

    def begin(self, now_ns: int, input_rate: int) -> None:
        """The first audio frame arrived at ``now_ns``, at ``input_rate``."""
        if self._first_frame_ns is not None:
            raise PlayoutStateError(f"item {self.item_id!r} already began")
        self._first_frame_ns = now_ns
        self._input_rate = input_rate

    def played_on(self, sink: PositionedSink) -> int:
        """Samples heard, at the sink's rate; the sink is read only until the count is final
        (after that it may be playing the next item)."""
        timeline = self.timeline
        if not timeline.is_final:
            return timeline.observe(sink.samples_played)
        return timeline.played

    def input_played_on(self, sink: PositionedSink) -> int:
        """Samples heard at the item's own rate (see ``core.positions.input_heard``)."""
        played = self.played_on(sink)
        timeline = self.timeline
        return input_heard(
            played,
            sink.sample_rate,
            self._input_rate,
            timeline.received,
            timeline.state is ItemState.FINISHED,
        )

    def pause(self) -> None:
        """The output was held while the item plays."""
        self.timeline.pause()

    def resume(self) -> None:
        self.timeline.resume()

    def complete(self) -> None:
        """The sink played everything pushed."""
        self.timeline.complete()

    def interrupt_at(self, sink_total: int | None) -> None:
        """Freeze the count at the sink's total read when it was cleared (None: unknown)."""
        self.timeline.interrupt(sink_total)

    # A receiver's confirmation (``SettlingSink``).

    @property
    def position_confirmed(self) -> bool | None:
        """True once the receiver confirmed the count, False if it could not; None when no
        confirmation applies (the sink does not settle, or nothing of a cut item was sent)."""
        return self._confirmed

    def settle_span(self) -> tuple[int, int] | None:
        """The sink's ``[start, end)`` of what an interrupted item sent, if it sent any."""
        timeline = self.timeline
        base = timeline.base
        if timeline.state is not ItemState.INTERRUPTED or base is None or not timeline.played:
            return None
        return base, base + timeline.played

    def settled(self, heard: int) -> None:
        """The receiver confirmed ``heard`` samples of the span: the final count."""
        self.timeline.settle(heard)
        self._confirmed = True

    def unsettled(self) -> None:
        """The sink could not confirm: the count stays as it was, marked unconfirmed."""
        self._confirmed = False

    # Underruns.

    @property
    def underruns_live(self) -> bool:
        """True while the item's underrun share follows the sink's counters."""
        return self._underruns.live

    def start_underruns(self, now: Underruns | None) -> None:
        self._underruns.start(now)

    def underruns(self, now: Underruns | None) -> Underruns | None:
        """The item's underrun share given the sink's counters ``now``."""
        return self._underruns.counts(now)

    def freeze_underruns(self, now: Underruns | None) -> None:
        self._underruns.freeze(now)
