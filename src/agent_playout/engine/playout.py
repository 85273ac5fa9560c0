"""The asyncio driver: ``AgentPlayout``, API-compatible with LiveKit Agents 0.12.

Every position comes from the sink's integer sample count through the item's
``ItemRecord``; the transcript is driven by that same count, so audio and text cannot
disagree. Each item's state is its record's, read by its ``PlayoutHandle`` and changed
by its ``ItemRun``; this class orders the items and winds each one down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any, Literal

from ..clock import Clock, MonotonicClock
from ..core.frames import AudioFrameLike
from ..core.timeline import ItemState
from ..core.units import NS_PER_SECOND
from ..errors import PlayoutClosedError, PlayoutStateError
from ..events import EventEmitter
from ..sinks.base import PositionedSink, SettlingSink, is_settling, positioned
from ..transcript.forwarder import SegmentsForwarder, TranscriptForwarder, is_segments_forwarder
from ..transcript.timed_text import TimedText
from .claims import claim, release_claim, underlying
from .eager import start_eagerly
from .guards import log_failure
from .handle import PlayoutHandle
from .item import ItemRun
from .record import ItemRecord

__all__ = [
    "CLEANUP_TIMEOUT_S",
    "DEFAULT_READ_AHEAD_MS",
    "AgentPlayout",
    "EventTypes",
]

logger = logging.getLogger("agent_playout")

EventTypes = Literal["playout_started", "playout_stopped"]

DEFAULT_READ_AHEAD_MS = 20_000
"""How much of an item's audio is read from the model ahead of the listener."""

CLEANUP_TIMEOUT_S = 3.0
"""How long a stopped item waits for user code to end, on the playout's clock: its streams'
cleanup (a generator's ``finally``) and the forwarder's ``aclose()``, each. Past it the wait
is logged with the item id and the item finishes anyway, so that code which never ends
cannot wedge the handle or the next ``play()``."""

_CLEANUP_TIMEOUT_NS = round(CLEANUP_TIMEOUT_S * NS_PER_SECOND)


class AgentPlayout(EventEmitter[EventTypes]):
    """Plays one item at a time to a sink and reports exactly what was heard.

    ``audio_source`` is a ``livekit.rtc.AudioSource``, one of this package's sinks, or any
    object with the same surface; one ``AgentPlayout`` at a time may drive it (``aclose()``
    frees it). A new ``play()`` supersedes the item in progress.

    A listener that raises is logged with the item id and changes nothing: the audio plays
    on. Like asyncio, this class is not thread-safe: call it on its loop's thread (only
    ``PlayoutHandle.interrupt()`` may be called from another).
    """

    def __init__(
        self,
        *,
        audio_source: Any,
        clock: Clock | None = None,
        read_ahead_ms: int = DEFAULT_READ_AHEAD_MS,
    ) -> None:
        super().__init__()
        if read_ahead_ms < 0:
            raise ValueError(f"read_ahead_ms must be >= 0, got {read_ahead_ms}")
        self._read_ahead_ms = read_ahead_ms
        self._audio_source = audio_source
        self._sink: PositionedSink = positioned(audio_source)
        self._settling: SettlingSink | None = self._sink if is_settling(self._sink) else None
        sink_clock = getattr(self._sink, "clock", None)
        self._clock: Clock = clock or sink_clock or MonotonicClock()
        self._current: PlayoutHandle | None = None
        self._current_item: ItemRun | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stragglers: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._paused = False
        self._claimed = claim(self, underlying(audio_source, self._sink))

    @property
    def sink(self) -> PositionedSink:
        return self._sink

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def current(self) -> PlayoutHandle | None:
        """The item playing now, if any."""
        return self._current

    def play(
        self,
        *,
        item_id: str,
        content_index: int,
        transcription_fwd: SegmentsForwarder | None,
        text_stream: AsyncIterable[str | TimedText],
        audio_stream: AsyncIterable[AudioFrameLike],
    ) -> PlayoutHandle:
        """Start playing an item, ending the one in progress first; returns its handle.

        The superseded item's ``playout_stopped`` is emitted before this returns, while it
        is still ``current``.
        """
        if self._closed:
            raise PlayoutClosedError("play() on a closed AgentPlayout; create a new one")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AgentPlayout.play() must be called from a running event loop"
            ) from None
        _check_item(item_id, content_index, transcription_fwd)
        texts = _require_async_iterable("text_stream", text_stream)
        frames = _require_async_iterable("audio_stream", audio_stream)

        previous = self._supersede()
        record = ItemRecord(
            item_id,
            content_index,
            input_rate=self._sink.sample_rate,
            play_ns=self._clock.now_ns(),
        )
        item = ItemRun(
            record,
            self._sink,
            transcription_fwd,
            clock=self._clock,
            read_ahead_ms=self._read_ahead_ms,
            paused=lambda: self._paused,
            emit=self._emit_for,
        )
        handle = PlayoutHandle(
            record, self._sink, transcription_fwd, functools.partial(self._interrupt_item, item)
        )
        self._current = handle
        self._current_item = item
        task = asyncio.create_task(self._run_item(item, handle, previous, texts, frames))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    def _supersede(self) -> PlayoutHandle | None:
        """Interrupt the item in progress (and any a ``playout_stopped`` listener started in
        its place) before a new one; returns the one the new item must wait for."""
        previous = self._current
        while previous is not None:
            previous.interrupt()
            if self._current is previous:
                break
            previous = self._current
        if self._closed:
            raise PlayoutClosedError("a playout_stopped listener closed this AgentPlayout")
        return previous

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Hold the output: nothing queued is dropped, position and transcript freeze.

        Needs a sink with ``pause()``/``resume()`` (this package's sinks have them).
        """
        if self._paused:
            return
        pause = getattr(self._sink, "pause", None)
        if pause is None:
            raise PlayoutStateError(f"{type(self._audio_source).__name__} cannot pause")
        pause()
        self._paused = True
        current = self._current_item
        if current is not None and current.record.timeline.state is ItemState.PLAYING:
            current.record.pause()

    def resume(self) -> None:
        """Continue from the sample where ``pause()`` stopped."""
        if not self._paused:
            return
        self._sink.resume()  # type: ignore[attr-defined]
        self._paused = False
        current = self._current_item
        if current is not None:
            if current.record.timeline.state is ItemState.PAUSED:
                current.record.resume()
            current.wake_captions()

    async def aclose(self) -> None:
        """Interrupt the item in progress, wait for it, refuse further ``play()`` and free
        the sink for another ``AgentPlayout``. A sink this playout made around its
        ``audio_source`` (a plain ``rtc.AudioSource``'s ``LiveKitSink``) is closed too, so
        the source may be closed right after."""
        self._closed = True
        try:
            if self._current is not None:
                self._current.interrupt()
        finally:
            try:
                if self._tasks:
                    await asyncio.wait(set(self._tasks))
                await self._close_adapted_sink()
            finally:
                release_claim(self, self._claimed)

    async def _close_adapted_sink(self) -> None:
        """``aclose()`` the sink an adapter made from ``audio_source``, if it has one;
        bounded by ``CLEANUP_TIMEOUT_S`` on the playout's clock, a failure logged."""
        closing = getattr(self._sink, "aclose", None)
        if self._sink is self._audio_source or closing is None:
            return
        task = asyncio.ensure_future(closing())
        what = f"the {type(self._sink).__name__}'s aclose()"
        try:
            await self._bounded(None, what, [task], self._clock.now_ns() + _CLEANUP_TIMEOUT_NS)
        finally:
            self._leave([task])
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", what, exc_info=task.exception())

    def _emit_for(self, record: ItemRecord, event: EventTypes, *args: Any) -> None:
        """Emit ``event`` for the item: a listener's error is logged with the item id, and
        only a ``BaseException`` that is not an ``Exception`` reaches the caller."""
        try:
            self.emit(event, *args)
        except Exception:
            log_failure(record.item_id, f"a {event} listener")

    def _interrupt_item(self, item: ItemRun) -> None:
        """``PlayoutHandle.interrupt()`` on the loop's thread: stop the item, cut short."""
        if item.record.stopped:
            item.emit_stopped()  # a completed item still winding down
            return
        item.stop(interrupted=True)

    async def _run_item(
        self,
        item: ItemRun,
        handle: PlayoutHandle,
        previous: PlayoutHandle | None,
        text_stream: AsyncIterable[Any],
        audio_stream: AsyncIterable[Any],
    ) -> None:
        """Wait for the previous item, start this one's tasks, and finish it once stopped.

        ``stop_requested`` is awaited directly (no shield): if this task is cancelled there,
        the future is cancelled, the item is not stopped, and the ``finally`` stops it.
        """
        record = item.record
        try:
            if previous is not None:
                await previous.wait_for_playout()
            if not record.stopped:
                item.start(text_stream, audio_stream)
                await record.stop_requested
        finally:
            try:
                if not record.stopped:
                    item.stop(interrupted=True)
            finally:
                await self._wind_down(item, handle)

    async def _wind_down(self, item: ItemRun, handle: PlayoutHandle) -> None:
        """Finish the handle once the item's tasks, cancelled by ``ItemRun.stop``, have ended
        and the forwarder is closed; each wait is bounded (``CLEANUP_TIMEOUT_S``).

        Runs inline in the item's task: usually the tasks ended before this task woke and
        the forwarder closes without waiting, so it finishes in this turn. A cancellation
        while the tasks end is held until the handle is finished, then raised; one while the
        forwarder closes cancels the close. Either way the handle finishes.
        """
        record = item.record
        cancelled: asyncio.CancelledError | None = None
        try:
            deadline_ns = self._clock.now_ns() + _CLEANUP_TIMEOUT_NS
            while True:
                try:
                    await self._bounded(
                        record.item_id, "the item's streams", record.tasks, deadline_ns
                    )
                    break
                except asyncio.CancelledError as error:
                    cancelled = error
            self._leave(record.tasks)
            record.drop_tasks()
            if self._settling is not None:
                cancelled = await self._settle(record, self._settling) or cancelled
            if item.forwarder is not None:
                cancelled = await self._close_forwarder(item, item.forwarder) or cancelled
        finally:
            try:
                item.emit_stopped()
            finally:
                if self._current is handle:
                    self._current = None
                    self._current_item = None
                record.release()
        if cancelled is not None:
            raise cancelled

    async def _settle(
        self, record: ItemRecord, sink: SettlingSink
    ) -> asyncio.CancelledError | None:
        """Ask the sink what its receiver heard of an interrupted item, bounded; the answer
        is the item's final count, and a failure leaves the sent count, marked unconfirmed.
        Returns the cancellation that came while it waited (the settle is then cancelled)."""
        span = record.settle_span()
        if span is None:
            return None
        cancelled: asyncio.CancelledError | None = None
        try:
            settling = asyncio.ensure_future(sink.settle(*span))
        except Exception:
            log_failure(record.item_id, "the output's settle()")
            record.unsettled()
            return None
        try:
            await self._bounded(
                record.item_id,
                "the output's settle()",
                [settling],
                self._clock.now_ns() + _CLEANUP_TIMEOUT_NS,
            )
        except asyncio.CancelledError as error:
            cancelled = error
        self._leave([settling])
        heard = _settled_count(record.item_id, settling)
        if heard is None:
            record.unsettled()
        else:
            record.settled(heard)
        return cancelled

    async def _close_forwarder(
        self, item: ItemRun, forwarder: SegmentsForwarder
    ) -> asyncio.CancelledError | None:
        """Close the item's forwarder, bounded; a failure stops the captions. Returns the
        cancellation that came while it closed (the close is then cancelled), if one did."""
        cancelled: asyncio.CancelledError | None = None
        try:
            closing = start_eagerly(forwarder.aclose())
            if closing is not None:
                try:
                    await self._bounded(
                        item.record.item_id,
                        "the forwarder's aclose()",
                        [closing],
                        self._clock.now_ns() + _CLEANUP_TIMEOUT_NS,
                    )
                except asyncio.CancelledError as error:
                    cancelled = error
                    closing.cancel()
                self._leave([closing])
                if closing.done() and not closing.cancelled():
                    closing.result()
        except Exception as error:
            item.text_failed(error, "the forwarder's aclose()")
        return cancelled

    async def _bounded(
        self,
        item_id: str | None,
        what: str,
        futures: Sequence[asyncio.Future[Any]],
        deadline_ns: int,
    ) -> None:
        """Wait until all ``futures`` are done, or until ``deadline_ns`` on the playout's
        clock; a wait cut short is logged with the item id (None: no item's). Nothing is
        cancelled here."""
        pending = [future for future in futures if not future.done()]
        if not pending:
            return
        gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def one_done(_: object) -> None:
            if not gate.done() and all(future.done() for future in pending):
                gate.set_result(True)

        def expire() -> None:
            if not gate.done():
                gate.set_result(False)

        for future in pending:
            future.add_done_callback(one_done)
        timer = self._clock.call_at(deadline_ns, expire)
        try:
            ended = await gate
        finally:
            timer.cancel()
            for future in pending:
                future.remove_done_callback(one_done)
        if ended:
            return
        if item_id is None:
            logger.error("%s did not end within %s s; went on without it", what, CLEANUP_TIMEOUT_S)
        else:
            logger.error(
                "item %s: %s did not end within %s s of the stop; went on without it",
                item_id,
                what,
                CLEANUP_TIMEOUT_S,
                extra={"item_id": item_id},
            )

    def _leave(self, tasks: Iterable[asyncio.Future[Any]]) -> None:
        """Keep tasks that did not end when asked (they hang in user code) referenced until
        they do, cancelled once more, their errors retrieved; collect the others' errors."""
        for task in tasks:
            if not task.done():
                task.cancel()
                self._stragglers.add(task)
                task.add_done_callback(self._straggler_done)
            elif not task.cancelled():
                task.exception()

    def _straggler_done(self, task: asyncio.Future[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()


def _settled_count(item_id: str, settling: asyncio.Future[Any]) -> int | None:
    """The count a finished ``settle()`` gave, or None (logged) if it gave none."""
    if not settling.done() or settling.cancelled():
        return None
    error = settling.exception()
    result = None if error is not None else settling.result()
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    reason = error if error is not None else f"it returned {result!r}, not an int"
    logger.warning(
        "item %s: the output could not confirm what was heard (%s); the count stays as it"
        " was, unconfirmed",
        item_id,
        reason,
        extra={"item_id": item_id},
    )
    return None


def _check_item(item_id: object, content_index: object, forwarder: object) -> None:
    """Refuse ``play()`` arguments LiveKit Agents 0.12 would have failed on later."""
    if not isinstance(item_id, str) or not item_id:
        raise TypeError(f"item_id must be a non-empty str, got {item_id!r}")
    if isinstance(content_index, bool) or not isinstance(content_index, int):
        raise TypeError(f"content_index must be an int, got {content_index!r}")
    if content_index < 0:
        raise ValueError(f"content_index must be >= 0, got {content_index}")
    if forwarder is not None and not is_segments_forwarder(forwarder):
        raise TypeError(
            "transcription_fwd must have the TTSSegmentsForwarder methods or be None,"
            f" got {type(forwarder).__name__}"
        )
    if isinstance(forwarder, TranscriptForwarder) and forwarder.closed:
        raise ValueError(
            f"transcription_fwd of item {item_id!r} was closed by aclose() (it belonged"
            " to an earlier item); give each item a new TranscriptForwarder"
        )


def _require_async_iterable(name: str, stream: object) -> AsyncIterable[Any]:
    if not isinstance(stream, AsyncIterable):
        raise TypeError(f"{name} must be an async iterable, got {type(stream).__name__}")
    return stream
