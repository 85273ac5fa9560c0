"""The tasks of one item: read its text, read its audio ahead, push audio, drive captions.

Audio is read from the model's stream as it arrives (up to ``read_ahead`` ahead of the
listener), so the transcript knows how much audio exists long before it is played; a
separate task pushes it to the sink at the sink's pace.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import TYPE_CHECKING, Any

from ..clock import ceil_div
from ..core.frames import AudioFrame, Pcm, SampleChunker, frame_pcm, pcm_array
from ..core.resample import FormatConverter
from ..core.timeline import ItemState
from ..core.units import NS_PER_SECOND
from ..errors import PlayoutError
from ..transcript.aligner import TimedText
from ..transcript.forwarder import PositionDriven, TranscriptForwarder, is_position_driven

if TYPE_CHECKING:
    from .playout import AgentPlayout, PlayoutHandle

logger = logging.getLogger("agent_playout")

CHUNK_MS = 50
"""Audio is re-chunked into 50 ms frames before it reaches the sink, as LiveKit Agents 0.12 does."""

TURN_MS = 500
"""The reader lets the loop turn after each this much audio it reads without waiting, so a
model that sends a long answer at once never holds up the other sessions in the process."""

REFILL_MS = 1000
"""A reader held at the read-ahead limit resumes once this much (at most half the limit)
has been pushed: it then wakes once a second instead of once a chunk."""

CAPTION_PACE_NS = 20_000_000
CAPTION_BURST = 4
"""The caption driver's timer fires at most ``CAPTION_BURST`` times in a row faster than
once per ``CAPTION_PACE_NS`` (20 ms, within a video frame; wakes by new input do not
count). Captions of speech stay exact to the sample, while text denser than anyone can
read, such as one huge push, cannot wake the loop at every sample. The stop gives the
forwarder its exact final position whatever the pace."""

_ANY_CAPTION = sys.maxsize
"""``ItemRun._caption_due`` while the driver waits for no caption: any caption is earlier."""


class InputRejected(Exception):
    """A stream yielded something that is not valid input; carries the caller-facing error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def sink_underruns(sink: object) -> tuple[int, int] | None:
    """The sink's (underrun count, underrun nanoseconds), if it reports them."""
    count = getattr(sink, "underruns", None)
    duration = getattr(sink, "underrun_ns", None)
    if isinstance(count, int) and isinstance(duration, int):
        return count, duration
    return None


class ItemRun:
    """Runs one item for ``AgentPlayout``; every way out ends in ``AgentPlayout._stop_item``,
    which cancels all of the item's tasks at once."""

    def __init__(self, playout: AgentPlayout, handle: PlayoutHandle, read_ahead_ms: int) -> None:
        self.playout = playout
        self.handle = handle
        self.sink = playout.sink
        self.started = False
        self._chunks: deque[AudioFrame] = deque()
        self._buffered = 0
        self._read_ahead = self.sink.sample_rate * read_ahead_ms // 1000
        self._refill_at = self._read_ahead - min(
            self._read_ahead // 2, self.sink.sample_rate * REFILL_MS // 1000
        )
        self._reader: asyncio.Task[None] | None = None
        self._pusher_waiting: asyncio.Future[None] | None = None
        self._reader_waiting: asyncio.Future[None] | None = None
        forwarder = handle._tr_fwd
        if isinstance(forwarder, TranscriptForwarder):
            forwarder.item_id = handle.item_id
        self.captions: PositionDriven | None = forwarder if is_position_driven(forwarder) else None
        self._next_caption = (
            forwarder.next_caption_sample if isinstance(forwarder, TranscriptForwarder) else None
        )
        self._caption_due: int | None = None
        self._captions_dead = False
        self._absorb_cancel = False

    def start(
        self, text_stream: AsyncIterable[Any], audio_stream: AsyncIterable[Any]
    ) -> list[asyncio.Task[None]]:
        """Start the item's tasks and return them: pusher, audio reader, text, captions.

        The pusher starts first, so it is already waiting when the first chunk is buffered
        and takes it at once; the text comes after the audio, as the first frame matters most.
        """
        pusher = asyncio.create_task(self.play_audio())
        pusher.add_done_callback(self._pusher_done)
        self._reader = reader = asyncio.create_task(self._read_audio(audio_stream))
        reader.add_done_callback(lambda _: _wake(self._pusher_waiting))
        tasks = [pusher, reader, asyncio.create_task(self.read_text(text_stream))]
        if self.captions is not None:
            tasks.append(asyncio.create_task(self.drive_captions(self.captions)))
        return tasks

    def fail(self, error: BaseException, *, drain: bool = False) -> None:
        """End the item on ``error``, logged once with the item id; ``drain`` plays the rest
        (a later ``fail`` without it, or an ``interrupt()``, still stops the item)."""
        handle = self.handle
        if handle._stopped:
            return
        if handle._error is None:
            handle._error = error
            handle._interrupted = True
            logger.error(
                "item %s failed: %s",
                handle.item_id,
                error,
                exc_info=error,
                extra={"item_id": handle.item_id},
            )
        if not drain:
            self.playout._stop_item(handle)

    def _pusher_done(self, pusher: asyncio.Task[None]) -> None:
        """The pusher ends only after stopping the item, unless something it awaited raised
        ``CancelledError`` or a ``BaseException``: then the item is stopped here."""
        if not self.handle._stopped:
            self.fail(_task_error(pusher, f"the audio pusher of item {self.handle.item_id!r}"))

    def text_failed(self, error: BaseException, what: str) -> None:
        """The text or a forwarder call failed: record it, log it once with the item id.

        The audio plays on; only the captions are affected.
        """
        handle = self.handle
        if handle._text_error is not None:
            logger.debug(
                "item %s: %s failed after the captions stopped: %r", handle.item_id, what, error
            )
            return
        handle._text_error = error
        logger.error(
            "item %s: %s failed; the captions stop there, the audio plays on: %s",
            handle.item_id,
            what,
            error,
            exc_info=error,
            extra={"item_id": handle.item_id},
        )

    def captions_failed(self, error: BaseException, what: str) -> None:
        """A forwarder call raised: stop driving the captions where they are."""
        self._captions_dead = True
        self._caption_due = None
        self._next_caption = None
        self.handle._captions_changed.set()
        self.text_failed(error, what)

    def _forwarder_call(self, call: Callable[[], object], what: str) -> None:
        """Make one forwarder call; if it raises, the captions stop (``captions_failed``)."""
        try:
            call()
        except Exception as error:
            self.captions_failed(error, f"the forwarder's {what}")

    def end_captions(self) -> None:
        """At the stop, before ``playout_stopped``: the forwarder learns the frozen position
        (so its ``played_text`` is final when the event fires) and that the text ended."""
        handle = self.handle
        forwarder = handle._tr_fwd
        if forwarder is None:
            return
        captions = self.captions
        if captions is not None and not self._captions_dead:
            position = handle.input_played_samples
            self._forwarder_call(
                lambda: captions.set_playout_position(position), "set_playout_position()"
            )
        self._forwarder_call(forwarder.mark_text_segment_end, "mark_text_segment_end()")
        if (
            self.started
            and handle._timeline.state is ItemState.FINISHED
            and not self._captions_dead
        ):
            self._forwarder_call(forwarder.segment_playout_finished, "segment_playout_finished()")

    async def read_text(self, text_stream: AsyncIterable[Any]) -> None:
        """Push the text to the forwarder; a bad text stream stops the text, not the audio."""
        handle = self.handle
        forwarder = handle._tr_fwd
        try:
            async for text in text_stream:
                if not isinstance(text, str | TimedText):
                    error = TypeError(
                        f"text_stream of item {handle.item_id!r} must yield str or TimedText,"
                        f" got {type(text).__name__}"
                    )
                    self.text_failed(error, "the text stream")
                    return
                if forwarder is None or self._captions_dead:
                    continue
                try:
                    if isinstance(text, TimedText) and not isinstance(
                        forwarder, TranscriptForwarder
                    ):
                        forwarder.push_text(text.text)
                    else:
                        forwarder.push_text(text)  # type: ignore[arg-type]
                except Exception as error:
                    self.captions_failed(error, "the forwarder's push_text()")
                    continue
                self._captions_input()
            if forwarder is not None and not self._captions_dead:
                self._forwarder_call(forwarder.mark_text_segment_end, "mark_text_segment_end()")
                self._captions_input()
        except asyncio.CancelledError as error:
            what = f"text_stream of item {handle.item_id!r}"
            self.text_failed(_stray_cancel(error, what, handle._stopped), "the text stream")
        except Exception as error:
            self.text_failed(error, "the text stream")

    async def play_audio(self) -> None:
        """Push what the reader buffers until it ends, then drain the sink.

        Every way out stops the item first, and so cancels the reader with the other tasks.
        """
        reader = self._reader
        assert reader is not None
        chunks = self._chunks
        try:
            while True:
                if reader.done() and _broken(reader):
                    self.fail(
                        _task_error(reader, f"the audio reader of item {self.handle.item_id!r}")
                    )
                    return
                if chunks:
                    await self._capture(self._next_chunk())
                    continue
                if reader.done():
                    break
                self._pusher_waiting = asyncio.get_running_loop().create_future()
                try:
                    await self._pusher_waiting
                finally:
                    self._pusher_waiting = None
            rejected = reader.exception()
            if isinstance(rejected, InputRejected):
                self.fail(rejected.error, drain=True)
            await self._drain(complete=rejected is None)
        except Exception as error:
            self.fail(error)

    def _next_chunk(self) -> AudioFrame:
        chunk = self._chunks.popleft()
        self._buffered -= chunk.samples_per_channel
        if self._buffered <= self._refill_at:
            _wake(self._reader_waiting)
        return chunk

    async def _read_audio(self, audio_stream: AsyncIterable[Any]) -> None:
        """Take frames as they arrive: count them, convert them, buffer them in 50 ms chunks.

        This runs for every frame the model sends, so it keeps to plain comparisons and one
        copy of the audio; numpy is only called when a 50 ms chunk is complete.
        """
        handle = self.handle
        forwarder = handle._tr_fwd
        timeline = handle._timeline
        sink = self.sink
        chunk_samples = sink.sample_rate * CHUNK_MS // 1000
        chunker = SampleChunker(sink.sample_rate, sink.num_channels, chunk_samples)
        turn_samples = sink.sample_rate * TURN_MS // 1000
        unyielded = 0
        converter: FormatConverter | None = None
        in_rate = in_channels = 0
        try:
            async for frame in audio_stream:
                pcm = _validate(frame, handle.item_id)
                if not len(pcm):
                    continue
                if converter is None:
                    converter = self._start(frame)
                    in_rate, in_channels = converter.in_rate, converter.in_channels
                    if self._absorb_cancel:
                        await self._absorb_listener_cancel()
                elif frame.sample_rate != in_rate or frame.num_channels != in_channels:
                    raise InputRejected(
                        ValueError(
                            f"item {handle.item_id!r} changed format mid-stream, from"
                            f" {in_rate} Hz x{in_channels} to"
                            f" {frame.sample_rate} Hz x{frame.num_channels}"
                        )
                    )
                if forwarder is not None:
                    try:
                        forwarder.push_audio(frame)
                    except Exception as error:
                        self.captions_failed(error, "the forwarder's push_audio()")
                        forwarder = None
                    if self._caption_due is not None:
                        self._captions_input()
                timeline.receive(len(pcm) // in_channels)
                if not converter.is_identity:
                    pcm = converter.process(pcm_array(pcm))
                chunks = chunker.push(pcm)
                if chunks:
                    self._buffer(chunks, len(chunks) * chunk_samples)
                    unyielded += len(chunks) * chunk_samples
                    if unyielded >= turn_samples or (
                        self._pusher_waiting is not None and self._sink_starving(chunk_samples)
                    ):
                        unyielded = 0
                        await asyncio.sleep(0)
                if self._buffered > self._read_ahead:
                    await self._wait_for_room()
        except asyncio.CancelledError as error:
            what = f"audio_stream of item {handle.item_id!r}"
            raise _stray_cancel(error, what, handle._stopped) from error
        if converter is not None:
            for chunk in chunker.push(converter.flush()) + chunker.flush():
                self._buffer([chunk], chunk.samples_per_channel)
        if forwarder is not None:
            self._forwarder_call(forwarder.mark_audio_segment_end, "mark_audio_segment_end()")
            self._captions_input()

    async def _absorb_listener_cancel(self) -> None:
        """A ``playout_started`` listener cancelled this task (the reader's): take that
        cancellation here, log it, and read on; a listener never changes the audio."""
        task = asyncio.current_task()
        assert task is not None
        self._absorb_cancel = False
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self.handle._stopped or _uncancel(task) > 0:
                raise
            logger.error(
                "item %s: a playout_started listener cancelled the item's task; ignored",
                self.handle.item_id,
                extra={"item_id": self.handle.item_id},
            )

    async def _wait_for_room(self) -> None:
        """Hold the reader while more than ``read_ahead`` is buffered (see ``REFILL_MS``)."""
        while self._buffered > self._read_ahead:
            self._reader_waiting = asyncio.get_running_loop().create_future()
            try:
                await self._reader_waiting
            finally:
                self._reader_waiting = None

    def _buffer(self, chunks: list[AudioFrame], samples: int) -> None:
        """Queue ``chunks``, ``samples`` per channel in all, for the pusher."""
        self._chunks.extend(chunks)
        self._buffered += samples
        _wake(self._pusher_waiting)

    def _sink_starving(self, chunk_samples: int) -> bool:
        """Whether the sink holds less than a chunk, so the pusher must run before the reader
        reads on. Otherwise the reader keeps the loop: under load every hand-over costs a
        whole turn of the event loop, and it would cost one per chunk."""
        sink = self.sink
        return sink.samples_written - sink.samples_played < chunk_samples

    def _start(self, frame: Any) -> FormatConverter:
        """First audio of the item: emit ``playout_started`` and set up its conversion."""
        handle = self.handle
        self.started = True
        handle._first_frame_ns = self.playout.clock.now_ns()
        handle._input_rate = frame.sample_rate
        handle._captions_changed.set()
        if handle._tr_fwd is not None:
            self._forwarder_call(
                handle._tr_fwd.segment_playout_started, "segment_playout_started()"
            )
        task = asyncio.current_task()
        cancels = _cancel_requests(task)
        self.playout._emit_for(handle, "playout_started")
        self._absorb_cancel = _cancel_requests(task) > cancels
        try:
            return FormatConverter(
                frame.sample_rate, frame.num_channels, self.sink.sample_rate, self.sink.num_channels
            )
        except ValueError as error:
            raise InputRejected(error) from None

    async def _capture(self, chunk: AudioFrame) -> None:
        handle = self.handle
        timeline = handle._timeline
        if not timeline.started:
            handle._underrun_base = sink_underruns(self.sink)
            if self.playout.paused:
                timeline.push(0, self.sink.samples_written)
                timeline.pause()
        timeline.push(chunk.samples_per_channel, self.sink.samples_written)
        await self.sink.capture_frame(chunk)

    async def _drain(self, *, complete: bool) -> None:
        """Wait until the sink has played everything pushed, then end the item.

        ``complete`` is False when input was rejected: what was queued still plays, but
        the item did not play all it was given.
        """
        handle = self.handle
        if self.started:
            await self.sink.wait_for_playout()
        handle._freeze_underruns()
        if complete and not handle._timeline.state.is_final:
            handle._timeline.complete()
        self.playout._stop_item(handle)

    def _captions_input(self) -> None:
        """Wake the caption driver if the input just taken can bring its next caption earlier.

        A caption that moves later needs no wake: the driver's timer fires early, it sees no
        new word heard, and it waits again. A forwarder other than ``TranscriptForwarder``
        cannot say where its next caption is, so the driver is woken on all its input.
        """
        due = self._caption_due
        if due is None:
            return
        if self._next_caption is not None:
            try:
                upcoming = self._next_caption()
            except Exception as error:
                self.captions_failed(error, "the forwarder's next_caption_sample()")
                return
            if upcoming is None or upcoming >= due:
                return
            self._caption_due = upcoming
        self.handle._captions_changed.set()

    async def drive_captions(self, forwarder: PositionDriven) -> None:
        """Report the played position to the forwarder when its text is due to change.

        It wakes on its timer, at the first frame, on ``resume()``, and on input that brings
        the next caption earlier (``_captions_input``); ``_caption_due`` tells the input
        which caption its timer waits for (None: none until the first frame or a resume).
        """
        clock = self.playout.clock
        handle = self.handle
        changed = handle._captions_changed
        paced_ns = 0  # the pace's schedule (a token bucket in GCRA form; CAPTION_PACE_NS)
        while not self._captions_dead:
            played = handle.input_played_samples
            try:
                upcoming = forwarder.set_playout_position(played)
            except Exception as error:
                self.captions_failed(error, "the forwarder's set_playout_position()")
                return
            changed.clear()
            if not self.started or self.playout.paused:
                self._caption_due = None
                await changed.wait()
                continue
            if upcoming is None:
                self._caption_due = _ANY_CAPTION
                await changed.wait()
                continue
            self._caption_due = upcoming
            wait_ns = ceil_div((upcoming - played) * NS_PER_SECOND, handle.input_sample_rate)
            due_ns = max(clock.now_ns() + wait_ns, paced_ns - CAPTION_BURST * CAPTION_PACE_NS)
            timer = clock.call_at(due_ns, changed.set)
            try:
                await changed.wait()
            finally:
                timer.cancel()
            if clock.now_ns() >= due_ns:  # a wake by the timer counts against the pace
                paced_ns = max(paced_ns, due_ns) + CAPTION_PACE_NS


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve the future a task of the item waits on, if it waits."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _task_error(task: asyncio.Task[None], what: str) -> BaseException:
    """Why ``task`` (done) ended: its error, or a ``PlayoutError`` naming it if cancelled."""
    if task.cancelled():
        return PlayoutError(f"{what} was cancelled while the item was not stopped")
    return task.exception() or PlayoutError(f"{what} ended without stopping the item")


def _cancel_requests(task: asyncio.Task[Any] | None) -> int:
    """Cancellations requested of ``task`` and not yet taken back (0 before Python 3.11,
    which cannot tell: a listener's cancel then ends the item with an error)."""
    if task is None:
        return 0
    if sys.version_info >= (3, 11):
        return task.cancelling()
    return 0


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Take back one cancellation request of ``task`` (3.11+); the requests left."""
    if sys.version_info >= (3, 11):
        return task.uncancel()
    return 0


def _stray_cancel(error: asyncio.CancelledError, what: str, stopped: bool) -> PlayoutError:
    """A ``CancelledError`` from user code while the item was not stopped and this task not
    cancelled (an upstream task was): returned as an error of the stream. One meant for
    this task is re-raised: the engine cancels an item's tasks only once it is stopped."""
    if stopped or _cancel_requests(asyncio.current_task()):
        raise error
    return PlayoutError(
        f"{what} raised CancelledError while the item was not cancelled"
        " (was the task producing it cancelled?)"
    )


def _broken(reader: asyncio.Task[None]) -> bool:
    """True when the reader stopped on an error other than rejected input."""
    if reader.cancelled():
        return True
    error = reader.exception()
    return error is not None and not isinstance(error, InputRejected)


def _validate(frame: object, item_id: str) -> Pcm:
    try:
        if frame is None:
            raise TypeError("audio_stream yielded None instead of an audio frame")
        return frame_pcm(frame)
    except (TypeError, ValueError) as error:
        kind = ValueError if isinstance(error, ValueError) else TypeError
        raise InputRejected(kind(f"item {item_id!r}: {error}")) from None
