"""The asyncio driver: ``AgentPlayout`` and ``PlayoutHandle``, API-compatible with LiveKit 0.12.

Every position comes from the sink's integer sample count through ``ItemTimeline``; the
transcript is driven by that same count, so audio and text cannot disagree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import types
import weakref
from collections.abc import AsyncIterable, Awaitable, Coroutine, Generator, Iterable, Sequence
from typing import Any, Literal

from ..clock import Clock, MonotonicClock
from ..core.frames import AudioFrameLike
from ..core.timeline import ItemState, ItemTimeline
from ..core.units import NS_PER_SECOND, REALTIME_SAMPLE_RATE
from ..errors import PlayoutClosedError, PlayoutStateError
from ..events import EventEmitter
from ..sinks.base import PositionedSink, is_livekit_source, positioned
from ..transcript.aligner import TimedText
from ..transcript.forwarder import SegmentsForwarder, TranscriptForwarder, is_segments_forwarder
from .item import ItemRun, sink_underruns

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

_SINK_OWNERS: weakref.WeakKeyDictionary[object, weakref.ref[AgentPlayout]] = (
    weakref.WeakKeyDictionary()
)
"""Which live ``AgentPlayout`` drives each sink (and each ``rtc.AudioSource`` under one)."""


def _require_async_iterable(name: str, stream: object) -> AsyncIterable[Any]:
    if not isinstance(stream, AsyncIterable):
        raise TypeError(f"{name} must be an async iterable, got {type(stream).__name__}")
    return stream


class PlayoutHandle:
    """One item's playout: its exact heard position, its text, and its interrupt.

    Not thread-safe, like asyncio: use it on its event loop's thread, except for
    ``interrupt()`` and ``interrupt_threadsafe()``, which may be called from any thread.
    """

    def __init__(
        self,
        *,
        playout: AgentPlayout,
        item_id: str,
        content_index: int,
        transcription_fwd: SegmentsForwarder | None,
    ) -> None:
        self._playout = playout
        self._item_id = item_id
        self._content_index = content_index
        self._tr_fwd = transcription_fwd
        self._timeline = ItemTimeline(item_id)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._stop_fut: asyncio.Future[None] = self._loop.create_future()
        self._stopped = False
        self._stop_emitted = False
        self._tasks: list[asyncio.Task[None]] = []
        self._finished = False
        self._waiters: list[asyncio.Future[None]] = []
        self._interrupted = False
        self._error: BaseException | None = None
        self._text_error: BaseException | None = None
        self._first_frame_ns: int | None = None
        self._play_ns = playout.clock.now_ns()
        self._input_rate = playout.sink.sample_rate
        self._captions_changed = asyncio.Event()
        self._underrun_base: tuple[int, int] | None = None
        self._underrun_total: tuple[int, int] | None = None
        self._run: ItemRun | None = None

    @property
    def item_id(self) -> str:
        return self._item_id

    @property
    def content_index(self) -> int:
        return self._content_index

    @property
    def sample_rate(self) -> int:
        """The rate of ``played_samples``: the sink's."""
        return self._playout.sink.sample_rate

    @property
    def played_samples(self) -> int:
        """Samples per channel the listener has heard, at the sink's rate; exact."""
        if not self._timeline.is_final:
            self._timeline.observe(self._playout.sink.samples_played)
        return self._timeline.played

    @property
    def input_played_samples(self) -> int:
        """Heard samples at the rate of the item's own audio (the transcript's clock).

        Never above what was received (a resampler may round the item's length up), so it
        only grows, and on completion it is exactly the samples received.
        """
        timeline = self._timeline
        if timeline.state is ItemState.FINISHED:
            return timeline.received
        return min(self.played_samples * self._input_rate // self.sample_rate, timeline.received)

    @property
    def audio_samples(self) -> int:
        """Heard samples at 24 kHz, LiveKit Agents 0.12's unit: ``played_samples`` at that rate.

        On completion that is every sample the sink played for the item: with a 24 kHz sink,
        exactly the samples the resampler made of the item's audio, whatever its own rate.
        """
        return self.played_samples * REALTIME_SAMPLE_RATE // self.sample_rate

    @property
    def pushed_samples(self) -> int:
        """Samples per channel handed to the sink, at the sink's rate."""
        return self._timeline.pushed

    @property
    def received_samples(self) -> int:
        """Samples per channel received from the audio stream, at its own rate."""
        return self._timeline.received

    @property
    def underruns(self) -> int | None:
        """Times the audio ran dry mid-item (silence played, not counted); None if the sink
        cannot tell."""
        counts = self._underrun_counts()
        return None if counts is None else counts[0]

    @property
    def underrun_seconds(self) -> float | None:
        """Total silence played mid-item because the audio arrived late."""
        counts = self._underrun_counts()
        return None if counts is None else counts[1] / NS_PER_SECOND

    def _underrun_counts(self) -> tuple[int, int] | None:
        if self._underrun_total is not None or self._underrun_base is None:
            return self._underrun_total
        now = sink_underruns(self._playout.sink)
        if now is None:
            return None
        return now[0] - self._underrun_base[0], now[1] - self._underrun_base[1]

    def _freeze_underruns(self) -> None:
        """Keep the item's underrun counts as they are now; None if the sink fails to say."""
        if self._underrun_base is not None and self._underrun_total is None:
            try:
                self._underrun_total = self._underrun_counts()
            except Exception:
                _log_failure(self, "reading the sink's underruns")
            if self._underrun_total is None:
                self._underrun_base = None

    @property
    def input_sample_rate(self) -> int:
        """The rate of the item's audio stream (the sink's until the first frame)."""
        return self._input_rate

    @property
    def state(self) -> ItemState:
        return self._timeline.state

    @property
    def played_text(self) -> str:
        """What the forwarder says the listener heard (empty without a forwarder)."""
        return "" if self._tr_fwd is None else self._tr_fwd.played_text

    @property
    def text_chars(self) -> int:
        return len(self.played_text)

    @property
    def interrupted(self) -> bool:
        """True when the item stopped before playing all it received (interrupt or error)."""
        return self._interrupted

    @property
    def error(self) -> BaseException | None:
        """The error that ended the item, if one did."""
        return self._error

    @property
    def text_error(self) -> BaseException | None:
        """The error that stopped the item's captions, if one did; the audio played on.

        A text stream that raised or yielded something other than ``str``/``TimedText``
        stops the text (captions go on for the text before it); a forwarder call that
        raised stops the captions where they were. Neither sets ``error`` or ``interrupted``.
        """
        return self._text_error

    @property
    def first_frame_latency(self) -> float | None:
        """Seconds from ``play()`` to the first audio frame, for display."""
        if self._first_frame_ns is None:
            return None
        return (self._first_frame_ns - self._play_ns) / NS_PER_SECOND

    def done(self) -> bool:
        return self._finished or self._interrupted

    def interrupt(self) -> None:
        """Stop now: the sink is cleared, the heard position frozen and ``playout_stopped``
        emitted, all before this returns; ``wait_for_playout()`` then returns once the item
        has wound down. A no-op once the item stopped, and a completed item stays completed.

        From a thread other than the loop's it is ``interrupt_threadsafe()``: the stop is
        then done on the loop, shortly after this returns.
        """
        if threading.get_ident() != self._thread:
            self.interrupt_threadsafe()
            return
        if self._stopped:
            self._playout._emit_stopped(self)  # a completed item still winding down
            return
        self._interrupted = True
        self._playout._stop_item(self)

    def interrupt_threadsafe(self) -> concurrent.futures.Future[None]:
        """``interrupt()`` from any thread; the future is done once the item has stopped
        (position frozen, ``playout_stopped`` emitted), with the error if one was raised.

        Do not block the loop's own thread on the future: the stop runs on that loop.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self.interrupt()
            except BaseException as error:
                future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
            else:
                future.set_result(None)

        if threading.get_ident() == self._thread:
            run()
        else:
            self._loop.call_soon_threadsafe(run)
        return future

    async def wait_for_playout(self) -> None:
        """Return once the item is fully finished: sink drained or cleared, events emitted.

        Each caller waits on its own future, released directly by ``_release``: cancelling
        one caller cancels only its future, and a release costs one hop, not two (shield).
        """
        if self._finished:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not self._finished:
                self._waiters.remove(waiter)

    @property
    def _started(self) -> bool:
        """True once the item's first audio frame arrived (``playout_started`` was emitted)."""
        return self._first_frame_ns is not None

    def _release(self) -> None:
        """Mark the handle finished and wake every ``wait_for_playout`` caller."""
        self._finished = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def __repr__(self) -> str:
        return (
            f"PlayoutHandle(item_id={self._item_id!r}, state={self.state.value},"
            f" audio_samples={self.audio_samples})"
        )


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
        sink_clock = getattr(self._sink, "clock", None)
        self._clock: Clock = clock or sink_clock or MonotonicClock()
        self._current: PlayoutHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stragglers: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._paused = False
        self._claimed = _claim(self, _underlying(audio_source, self._sink))

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
        if not isinstance(item_id, str) or not item_id:
            raise TypeError(f"item_id must be a non-empty str, got {item_id!r}")
        if isinstance(content_index, bool) or not isinstance(content_index, int):
            raise TypeError(f"content_index must be an int, got {content_index!r}")
        if content_index < 0:
            raise ValueError(f"content_index must be >= 0, got {content_index}")
        if transcription_fwd is not None and not is_segments_forwarder(transcription_fwd):
            raise TypeError(
                "transcription_fwd must have the TTSSegmentsForwarder methods or be None,"
                f" got {type(transcription_fwd).__name__}"
            )
        if isinstance(transcription_fwd, TranscriptForwarder) and transcription_fwd.closed:
            raise ValueError(
                f"transcription_fwd of item {item_id!r} was closed by aclose() (it belonged"
                " to an earlier item); give each item a new TranscriptForwarder"
            )
        texts = _require_async_iterable("text_stream", text_stream)
        frames = _require_async_iterable("audio_stream", audio_stream)

        previous = self._current
        while previous is not None:
            previous.interrupt()
            if self._current is previous:
                break
            previous = self._current
        if self._closed:
            raise PlayoutClosedError("a playout_stopped listener closed this AgentPlayout")
        handle = PlayoutHandle(
            playout=self,
            item_id=item_id,
            content_index=content_index,
            transcription_fwd=transcription_fwd,
        )
        item = ItemRun(self, handle, self._read_ahead_ms)
        handle._run = item
        self._current = handle
        task = asyncio.create_task(self._run_item(handle, item, previous, texts, frames))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

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
        current = self._current
        if current is not None and current.state is ItemState.PLAYING:
            current._timeline.pause()

    def resume(self) -> None:
        """Continue from the sample where ``pause()`` stopped."""
        if not self._paused:
            return
        self._sink.resume()  # type: ignore[attr-defined]
        self._paused = False
        current = self._current
        if current is not None:
            if current.state is ItemState.PAUSED:
                current._timeline.resume()
            current._captions_changed.set()

    async def aclose(self) -> None:
        """Interrupt the item in progress, wait for it, refuse further ``play()`` and free
        the sink for another ``AgentPlayout``."""
        self._closed = True
        try:
            if self._current is not None:
                self._current.interrupt()
        finally:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            _release_claim(self, self._claimed)

    def _emit_for(self, handle: PlayoutHandle, event: EventTypes, *args: Any) -> None:
        """Emit ``event`` for ``handle``: a listener's error is logged with the item id, and
        only a ``BaseException`` that is not an ``Exception`` reaches the caller."""
        try:
            self.emit(event, *args)
        except Exception:
            _log_failure(handle, f"a {event} listener")

    def _emit_stopped(self, handle: PlayoutHandle) -> None:
        """Emit ``playout_stopped`` for ``handle`` once, if its audio started.

        An item cut short emits it inside the stop; a completed one once its forwarder has
        closed (as LiveKit Agents 0.12 does, so that forwarder's ``played_text`` is whole),
        or sooner, inside the ``interrupt()`` or ``play()`` that comes while it winds down.
        """
        if handle._started and not handle._stop_emitted:
            handle._stop_emitted = True
            self._emit_for(handle, "playout_stopped", handle.interrupted)

    def _stop_item(self, handle: PlayoutHandle) -> None:
        """Stop the item now, once: freeze its position, clear the sink (if the item reached
        it), cancel its tasks, give the forwarder the final position and, for an item cut
        short, emit ``playout_stopped``; then wake the item's own task to wind it down.

        Nothing here can leave the handle half-stopped: sink and forwarder errors are logged,
        and the wake is in a ``finally``. The tasks are cancelled before that task is woken,
        so they usually have ended by the time it runs.
        """
        if handle._stopped:
            return
        handle._stopped = True
        try:
            try:
                self._freeze(handle)
            finally:
                for task in handle._tasks:
                    task.cancel()
            item = handle._run
            if item is not None:
                item.end_captions()
            if handle.interrupted:
                self._emit_stopped(handle)
        finally:
            if not handle._stop_fut.done():
                handle._stop_fut.set_result(None)

    def _freeze(self, handle: PlayoutHandle) -> None:
        """Make the item's counts final: cleared at the sink's position now, or complete."""
        timeline = handle._timeline
        handle._freeze_underruns()
        if timeline.is_final:
            return
        sink_total: int | None = None
        if timeline.started:
            try:
                self._sink.clear_queue()
            except Exception:
                _log_failure(handle, "clearing the sink")
            try:
                sink_total = self._sink.samples_written
            except Exception:
                _log_failure(handle, "reading the sink's position")
        timeline.interrupt(sink_total)

    async def _run_item(
        self,
        handle: PlayoutHandle,
        item: ItemRun,
        previous: PlayoutHandle | None,
        text_stream: AsyncIterable[Any],
        audio_stream: AsyncIterable[Any],
    ) -> None:
        """Wait for the previous item, start this one's tasks, and finish it once stopped.

        ``_stop_fut`` is awaited directly (no shield): if this task is cancelled there, the
        future is cancelled, ``_stopped`` is still False, and the ``finally`` stops the item.
        """
        try:
            if previous is not None:
                await previous.wait_for_playout()
            if not handle._stopped:
                handle._tasks = item.start(text_stream, audio_stream)
                await handle._stop_fut
        finally:
            try:
                if not handle._stopped:
                    handle._interrupted = True
                    self._stop_item(handle)
            finally:
                await self._wind_down(handle)

    async def _wind_down(self, handle: PlayoutHandle) -> None:
        """Finish the handle once the item's tasks, cancelled by ``_stop_item``, have ended
        and the forwarder is closed; each wait is bounded (``CLEANUP_TIMEOUT_S``).

        Runs inline in the item's task: usually the tasks ended before this task woke and
        the forwarder closes without waiting, so it finishes in this turn. A cancellation
        while the tasks end is held until the handle is finished, then raised; one while the
        forwarder closes cancels the close. Either way the handle finishes.
        """
        cancelled: asyncio.CancelledError | None = None
        clock = self._clock
        try:
            deadline_ns = clock.now_ns() + _CLEANUP_TIMEOUT_NS
            while True:
                try:
                    await self._bounded(handle, "the item's streams", handle._tasks, deadline_ns)
                    break
                except asyncio.CancelledError as error:
                    cancelled = error
            self._leave(handle._tasks)
            handle._tasks = []
            forwarder = handle._tr_fwd
            if forwarder is not None:
                try:
                    closing = _start_eagerly(forwarder.aclose())
                    if closing is not None:
                        try:
                            await self._bounded(
                                handle,
                                "the forwarder's aclose()",
                                [closing],
                                clock.now_ns() + _CLEANUP_TIMEOUT_NS,
                            )
                        except asyncio.CancelledError as error:
                            cancelled = error
                            closing.cancel()
                        self._leave([closing])
                        if closing.done() and not closing.cancelled():
                            closing.result()
                except Exception as error:
                    if handle._run is not None:
                        handle._run.text_failed(error, "the forwarder's aclose()")
        finally:
            try:
                self._emit_stopped(handle)
            finally:
                if self._current is handle:
                    self._current = None
                handle._release()
        if cancelled is not None:
            raise cancelled

    async def _bounded(
        self,
        handle: PlayoutHandle,
        what: str,
        futures: Sequence[asyncio.Future[Any]],
        deadline_ns: int,
    ) -> None:
        """Wait until all ``futures`` are done, or until ``deadline_ns`` on the playout's
        clock; a wait cut short is logged with the item id. Nothing is cancelled here."""
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
        if not ended:
            logger.error(
                "item %s: %s did not end within %s s of the stop; went on without it",
                handle.item_id,
                what,
                CLEANUP_TIMEOUT_S,
                extra={"item_id": handle.item_id},
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


def _start_eagerly(awaitable: Awaitable[Any]) -> asyncio.Future[Any] | None:
    """Run a coroutine up to its first real wait now: None if it finished (its error is
    raised), else a task that goes on from there. Most ``aclose()`` calls never wait, and
    this spares them the loop turn a new task costs (asyncio's eager tasks, 3.12+)."""
    if not asyncio.iscoroutine(awaitable):
        return asyncio.ensure_future(awaitable)
    try:
        yielded = awaitable.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_go_on(awaitable, yielded))


async def _go_on(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _resume(coroutine, yielded)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drive a started ``coroutine`` from the value it last yielded, as a task would."""
    while True:
        try:
            sent = yield yielded
        except BaseException as error:
            try:
                yielded = coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value


def _underlying(audio_source: object, sink: object) -> list[object]:
    """The objects a playout drives: what it was given, its wrapper and, under a LiveKit
    wrapper, the ``rtc.AudioSource`` itself (a new wrapper is made for each playout)."""
    objects = [audio_source, sink]
    for wrapper in (audio_source, sink):
        source = getattr(wrapper, "source", None)
        if source is not None and is_livekit_source(source):
            objects.append(source)
    return objects


def _claim(playout: AgentPlayout, objects: list[object]) -> list[object]:
    """Record ``playout`` as the one driver of ``objects``; refuse one already driven.

    Objects that cannot be weakly referenced (or hashed) are not tracked.
    """
    for obj in objects:
        try:
            owner_ref = _SINK_OWNERS.get(obj)
        except TypeError:
            continue
        owner = None if owner_ref is None else owner_ref()
        if owner is not None and owner is not playout:
            raise PlayoutStateError(
                f"{type(obj).__name__} is already driven by another AgentPlayout: two"
                " playouts on one output would each count the other's audio as heard;"
                " aclose() the other one first"
            )
    claimed: list[object] = []
    for obj in objects:
        try:
            _SINK_OWNERS[obj] = weakref.ref(playout)
        except TypeError:
            continue
        claimed.append(obj)
    return claimed


def _release_claim(playout: AgentPlayout, objects: list[object]) -> None:
    for obj in objects:
        owner_ref = _SINK_OWNERS.get(obj)
        if owner_ref is not None and owner_ref() is playout:
            del _SINK_OWNERS[obj]


def _log_failure(handle: PlayoutHandle, what: str) -> None:
    """Log the exception being handled, raised by ``what``, with the item id."""
    logger.exception(
        "%s failed for item %s", what, handle.item_id, extra={"item_id": handle.item_id}
    )
