"""The tasks of one item: read its text, read its audio ahead, push audio, drive captions.

Audio is read from the model's stream as it arrives (up to ``read_ahead`` ahead of the
listener), so the transcript knows how much audio exists long before it is played; a
separate task pushes it to the sink at the sink's pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Callable
from typing import Any

from ..clock import Clock
from ..core.frames import Pcm, PcmQueue, frame_pcm, pcm_array, pcm_in_format
from ..core.positions import refill_level, samples_in
from ..core.resample import FormatConverter
from ..errors import OutputEndedError
from ..sinks.base import PositionedSink
from ..transcript.forwarder import SegmentsForwarder
from .captions import Captions, read_text, text_failed
from .guards import cancel_requests, log_failure, stray_cancel, task_error, uncancel, wake
from .handle import sink_underruns
from .record import ItemRecord

logger = logging.getLogger("agent_playout")

CHUNK_MS = 50
"""Audio is re-chunked into 50 ms frames before it reaches the sink, as LiveKit Agents 0.12 does."""

TURN_MS = 100
"""The reader lets the loop turn after each this much audio it reads without waiting, so a
model that sends a long answer at once never holds up the other sessions in the process.
At 500 ms, 1,000 sessions starting together read for so long that sinks holding 200 ms ran
dry (``bench.worker ours cpu_null``: 0.4 s late); at 100 ms they do not, for no more CPU."""

REFILL_MS = 1000
"""A reader held at the read-ahead limit resumes once this much (at most half the limit)
has been pushed: it then wakes once a second instead of once a chunk."""

Emit = Callable[..., None]
"""``emit(record, event, *args)``: emit a playout event for the item's record."""


class InputRejected(Exception):
    """A stream yielded something that is not valid input; carries the caller-facing error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class ItemRun:
    """Runs one item for ``AgentPlayout``; every way out ends in ``stop()``, which cancels
    all of the item's tasks at once. It changes the item's state only through its record."""

    def __init__(
        self,
        record: ItemRecord,
        sink: PositionedSink,
        forwarder: SegmentsForwarder | None,
        *,
        clock: Clock,
        read_ahead_ms: int,
        paused: Callable[[], bool],
        emit: Emit,
    ) -> None:
        self.record = record
        self.sink = sink
        self.forwarder = forwarder
        self._clock = clock
        self._paused = paused
        self._emit = emit
        self._queue = PcmQueue(sink.sample_rate, sink.num_channels)
        self._chunk_samples = chunk = samples_in(CHUNK_MS, sink.sample_rate)
        # The reader is held only with a whole chunk queued, and let go before the pusher
        # runs short of one: neither can then wait for the other.
        self._read_ahead = max(samples_in(read_ahead_ms, sink.sample_rate), chunk)
        self._refill_at = max(
            refill_level(self._read_ahead, samples_in(REFILL_MS, sink.sample_rate)), chunk - 1
        )
        self._reader: asyncio.Task[None] | None = None
        self._pusher_waiting: asyncio.Future[None] | None = None
        self._reader_waiting: asyncio.Future[None] | None = None
        self.captions = (
            None if forwarder is None else Captions(record, forwarder, sink, clock, paused)
        )
        self._absorb_cancel = False

    def start(self, text_stream: AsyncIterable[Any], audio_stream: AsyncIterable[Any]) -> None:
        """Start the item's tasks: pusher, audio reader, text, captions.

        The pusher starts first, so it is already waiting when the first chunk is buffered
        and takes it at once; the text comes after the audio, as the first frame matters most.
        """
        pusher = asyncio.create_task(self.play_audio())
        pusher.add_done_callback(self._pusher_done)
        self._reader = reader = asyncio.create_task(self._read_audio(audio_stream))
        reader.add_done_callback(lambda _: wake(self._pusher_waiting))
        captions = self.captions
        tasks = [pusher, reader, asyncio.create_task(read_text(self.record, text_stream, captions))]
        if captions is not None and captions.driven is not None:
            tasks.append(asyncio.create_task(captions.drive(captions.driven)))
        self.record.run(tasks)

    def fail(self, error: BaseException, *, drain: bool = False) -> None:
        """End the item on ``error``, logged once with the item id (with its traceback unless the
        output went away: a hung-up call's message says it all); ``drain`` plays the rest
        (a later ``fail`` without it, or an ``interrupt()``, still stops the item)."""
        record = self.record
        if record.stopped:
            return
        if record.fail(error):
            logger.error(
                "item %s failed: %s",
                record.item_id,
                error,
                exc_info=None if isinstance(error, OutputEndedError) else error,
                extra={"item_id": record.item_id},
            )
        if not drain:
            self.stop()

    def stop(self, *, interrupted: bool = False) -> None:
        """Stop the item now, once: freeze its position, clear the sink (if the item reached
        it), cancel its tasks, give the forwarder the final position and, for an item cut
        short, emit ``playout_stopped``; then wake the item's own task to wind it down.

        Nothing here can leave the item half-stopped: sink and forwarder errors are logged,
        and the wake is in a ``finally``. The tasks are cancelled before that task is woken,
        so they usually have ended by the time it runs.
        """
        record = self.record
        if not record.stop(interrupted=interrupted):
            return
        try:
            try:
                self._freeze()
            finally:
                for task in record.tasks:
                    task.cancel()
            if self.captions is not None:
                self.captions.end()
            if record.interrupted:
                self.emit_stopped()
        finally:
            record.stop_done()

    def emit_stopped(self) -> None:
        """Emit ``playout_stopped`` once, if the item's audio started.

        An item cut short emits it inside the stop; a completed one once its forwarder has
        closed (as LiveKit Agents 0.12 does, so that forwarder's ``played_text`` is whole),
        or sooner, inside the ``interrupt()`` or ``play()`` that comes while it winds down.
        """
        record = self.record
        if record.claim_stop_event():
            self._emit(record, "playout_stopped", record.interrupted)

    def text_failed(self, error: BaseException, what: str) -> None:
        """The text or a forwarder call failed: the captions stop, the audio plays on."""
        text_failed(self.record, error, what)

    def wake_captions(self) -> None:
        """Let the caption driver look again (the output resumed)."""
        if self.captions is not None:
            self.captions.changed.set()

    def _freeze(self) -> None:
        """Make the item's counts final: cleared at the sink's position now, or complete."""
        record = self.record
        self.freeze_underruns()
        if record.timeline.is_final:
            return
        sink_total: int | None = None
        if record.timeline.started:
            try:
                self.sink.clear_queue()
            except Exception:
                log_failure(record.item_id, "clearing the sink")
            try:
                sink_total = self.sink.samples_written
            except Exception:
                log_failure(record.item_id, "reading the sink's position")
        record.interrupt_at(sink_total)

    def freeze_underruns(self) -> None:
        """Keep the item's underrun counts as they are now; none if the sink fails to say."""
        record = self.record
        if record.underruns_live:
            try:
                now = sink_underruns(self.sink)
            except Exception:
                log_failure(record.item_id, "reading the sink's underruns")
                now = None
            record.freeze_underruns(now)

    def _pusher_done(self, pusher: asyncio.Task[None]) -> None:
        """The pusher ends only after stopping the item, unless something it awaited raised
        ``CancelledError`` or a ``BaseException``: then the item is stopped here."""
        if not self.record.stopped:
            self.fail(task_error(pusher, f"the audio pusher of item {self.record.item_id!r}"))

    async def play_audio(self) -> None:
        """Push what the reader queues, a chunk at a time, until it ends; then drain the sink.

        The rest of a stream that ended (or was rejected part way) goes out as one shorter
        chunk. Every way out stops the item first, and so cancels the reader with the others.
        """
        reader = self._reader
        assert reader is not None
        queue = self._queue
        take = queue.take
        chunk = self._chunk_samples
        refill_at = self._refill_at
        record = self.record
        sink = self.sink
        capture = sink.capture_frame
        push = record.push
        started = reader_ended = False
        try:
            while True:
                available = queue.samples
                if not reader_ended and reader.done():
                    if _broken(reader):
                        what = f"the audio reader of item {record.item_id!r}"
                        self.fail(task_error(reader, what))
                        return
                    reader_ended = True
                if reader_ended:
                    if not available:
                        break
                elif available < chunk:
                    self._pusher_waiting = asyncio.get_running_loop().create_future()
                    try:
                        await self._pusher_waiting
                    finally:
                        self._pusher_waiting = None
                    continue
                count = min(available, chunk)
                frame = take(count)
                if available - count <= refill_at and self._reader_waiting is not None:
                    wake(self._reader_waiting)
                if not started:
                    started = True
                    self._first_push()
                push(count, sink.samples_written)
                await capture(frame)
            rejected = reader.exception()
            if isinstance(rejected, InputRejected):
                self.fail(rejected.error, drain=True)
            await self._drain(complete=rejected is None)
        except Exception as error:
            self.fail(error)

    def _first_push(self) -> None:
        """The item's first audio goes to the sink: its underruns start counting, and an
        output paused before it began holds the item paused from its first sample."""
        record = self.record
        sink = self.sink
        record.start_underruns(sink_underruns(sink))
        if self._paused():
            record.push(0, sink.samples_written)
            record.pause()

    async def _read_audio(self, audio_stream: AsyncIterable[Any]) -> None:
        """Take frames as they arrive: count them, convert them, queue them for the pusher.

        This runs for every frame the model sends: a frame in the item's format costs plain
        comparisons and one copy (``PcmQueue.put_frame`` for an rtc frame the sink takes as
        it is, else ``pcm_in_format``); the first frame, and any other, is checked in full.
        """
        record = self.record
        receive = record.receive
        captions = self.captions
        forwarder = None if captions is None else captions.forwarder
        queue = self._queue
        put = queue.put
        put_frame = queue.put_frame
        chunk = self._chunk_samples
        out_channels = self.sink.num_channels
        turn_samples = samples_in(TURN_MS, self.sink.sample_rate)
        unyielded = 0
        converter: FormatConverter | None = None
        convert: Callable[[Any], Any] | None = None
        identity = False
        in_rate = in_channels = 0
        try:
            async for frame in audio_stream:
                count = put_frame(frame) if identity else 0
                if count:
                    unyielded += count
                else:
                    pcm = pcm_in_format(frame, in_rate, in_channels)
                    if pcm is None:
                        pcm = _validate(frame, record.item_id)
                        if not len(pcm):
                            continue
                        if converter is None:
                            converter = await self._start(frame)
                            in_rate, in_channels = converter.in_rate, converter.in_channels
                            identity = converter.is_identity
                            convert = None if identity else converter.process
                        elif frame.sample_rate != in_rate or frame.num_channels != in_channels:
                            raise _format_changed(record.item_id, in_rate, in_channels, frame)
                    count = len(pcm) // in_channels
                    if convert is None:
                        put(pcm, count)
                        unyielded += count
                    else:
                        converted = convert(pcm_array(pcm))
                        put(converted, len(converted) // out_channels)
                        unyielded += len(converted) // out_channels
                if forwarder is not None and captions is not None:  # inline: once a frame
                    try:
                        forwarder.push_audio(frame)
                    except Exception as error:
                        captions.audio_failed(error)
                        forwarder = None
                    if captions.due is not None:
                        captions.input_taken()
                receive(count)
                if queue.samples >= chunk:
                    waiting = self._pusher_waiting
                    if waiting is not None:
                        wake(waiting)
                    if unyielded >= turn_samples or (
                        waiting is not None and self._sink_starving(chunk)
                    ):
                        unyielded = 0
                        await asyncio.sleep(0)
                    if queue.samples > self._read_ahead:
                        await self._wait_for_room()
        except asyncio.CancelledError as error:
            what = f"audio_stream of item {record.item_id!r}"
            raise stray_cancel(error, what, record.stopped) from error
        if converter is not None and convert is not None:
            tail = converter.flush()
            put(tail, len(tail) // out_channels)
        if captions is not None:
            captions.audio_ended()

    async def _absorb_listener_cancel(self) -> None:
        """A ``playout_started`` listener cancelled this task (the reader's): take that
        cancellation here, log it, and read on; a listener never changes the audio."""
        task = asyncio.current_task()
        assert task is not None
        self._absorb_cancel = False
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self.record.stopped or uncancel(task) > 0:
                raise
            logger.error(
                "item %s: a playout_started listener cancelled the item's task; ignored",
                self.record.item_id,
                extra={"item_id": self.record.item_id},
            )

    async def _wait_for_room(self) -> None:
        """Hold the reader while more than ``read_ahead`` is queued (see ``REFILL_MS``)."""
        while self._queue.samples > self._read_ahead:
            self._reader_waiting = asyncio.get_running_loop().create_future()
            try:
                await self._reader_waiting
            finally:
                self._reader_waiting = None

    def _sink_starving(self, chunk_samples: int) -> bool:
        """Whether the sink holds less than a chunk, so the pusher must run before the reader
        reads on. Otherwise the reader keeps the loop: under load every hand-over costs a
        whole turn of the event loop, and it would cost one per chunk."""
        sink = self.sink
        return sink.samples_written - sink.samples_played < chunk_samples

    async def _start(self, frame: Any) -> FormatConverter:
        """First audio of the item: emit ``playout_started`` and set up its conversion."""
        record = self.record
        record.begin(self._clock.now_ns(), frame.sample_rate)
        if self.captions is not None:
            self.captions.begin()
        task = asyncio.current_task()
        cancels = cancel_requests(task)
        self._emit(record, "playout_started")
        self._absorb_cancel = cancel_requests(task) > cancels
        try:
            converter = FormatConverter(
                frame.sample_rate, frame.num_channels, self.sink.sample_rate, self.sink.num_channels
            )
        except ValueError as error:
            raise InputRejected(error) from None
        if self._absorb_cancel:
            await self._absorb_listener_cancel()
        return converter

    async def _drain(self, *, complete: bool) -> None:
        """Wait until the sink has played everything pushed, then end the item.

        ``complete`` is False when input was rejected: what was queued still plays, but
        the item did not play all it was given.
        """
        record = self.record
        if record.started:
            await self.sink.wait_for_playout()
        if complete and not record.timeline.state.is_final:
            record.complete()
        self.stop()


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


def _format_changed(item_id: str, in_rate: int, in_channels: int, frame: Any) -> InputRejected:
    return InputRejected(
        ValueError(
            f"item {item_id!r} changed format mid-stream, from {in_rate} Hz x{in_channels}"
            f" to {frame.sample_rate} Hz x{frame.num_channels}"
        )
    )
