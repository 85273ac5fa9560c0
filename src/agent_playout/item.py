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
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

from .clock import NS_PER_SECOND, ceil_div
from .forwarder import PositionDriven, TranscriptForwarder, is_position_driven
from .frames import AudioFrame, Pcm, SampleChunker, frame_pcm, pcm_array
from .resample import FormatConverter
from .transcript import TimedText

if TYPE_CHECKING:
    from .playout import AgentPlayout, PlayoutHandle

logger = logging.getLogger("agent_playout")

CHUNK_MS = 50
"""Audio is re-chunked into 50 ms frames before it reaches the sink, as in the seed."""

TURN_MS = 500
"""The reader lets the loop turn after each this much audio it reads without waiting, so a
model that sends a long answer at once never holds up the other sessions in the process."""

REFILL_MS = 1000
"""A reader held at the read-ahead limit resumes once this much (at most half the limit)
has been pushed: it then wakes once a second instead of once a chunk."""

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

    def start(
        self, text_stream: AsyncIterable[Any], audio_stream: AsyncIterable[Any]
    ) -> list[asyncio.Task[None]]:
        """Start the item's tasks and return them: pusher, audio reader, text, captions.

        The pusher starts first, so it is already waiting when the first chunk is buffered
        and takes it at once; the text comes after the audio, as the first frame matters most.
        """
        pusher = asyncio.create_task(self.play_audio())
        self._reader = reader = asyncio.create_task(self._read_audio(audio_stream))
        reader.add_done_callback(lambda _: _wake(self._pusher_waiting))
        tasks = [pusher, reader, asyncio.create_task(self.read_text(text_stream))]
        if self.captions is not None:
            tasks.append(asyncio.create_task(self.drive_captions(self.captions)))
        return tasks

    def fail(self, error: BaseException, *, drain: bool = False) -> None:
        """End the item on ``error``, logged once with the item id; ``drain`` plays the rest."""
        handle = self.handle
        if handle.done():
            return
        handle._error = error
        handle._interrupted = True
        logger.error("item %s failed: %s", handle.item_id, error, exc_info=error)
        if not drain:
            self.playout._stop_item(handle)

    async def read_text(self, text_stream: AsyncIterable[Any]) -> None:
        forwarder = self.handle._tr_fwd
        try:
            async for text in text_stream:
                if not isinstance(text, str | TimedText):
                    raise TypeError(
                        f"text_stream must yield str or TimedText, got {type(text).__name__}"
                    )
                if forwarder is None:
                    continue
                if isinstance(text, TimedText) and not isinstance(forwarder, TranscriptForwarder):
                    forwarder.push_text(text.text)
                else:
                    forwarder.push_text(text)  # type: ignore[arg-type]
                self._captions_input()
            if forwarder is not None:
                forwarder.mark_text_segment_end()
                self._captions_input()
        except Exception as error:
            self.fail(error)

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
                    self.fail(reader.exception() or RuntimeError("audio reader failed"))
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
        async for frame in audio_stream:
            pcm = _validate(frame)
            if not len(pcm):
                continue
            if converter is None:
                converter = self._start(frame)
                in_rate, in_channels = converter.in_rate, converter.in_channels
            elif frame.sample_rate != in_rate or frame.num_channels != in_channels:
                raise InputRejected(
                    ValueError(
                        f"item {handle.item_id!r} changed format mid-stream, from"
                        f" {in_rate} Hz x{in_channels} to"
                        f" {frame.sample_rate} Hz x{frame.num_channels}"
                    )
                )
            if forwarder is not None:
                forwarder.push_audio(frame)
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
        if converter is not None:
            for chunk in chunker.push(converter.flush()) + chunker.flush():
                self._buffer([chunk], chunk.samples_per_channel)
        if forwarder is not None:
            forwarder.mark_audio_segment_end()
            self._captions_input()

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
            handle._tr_fwd.segment_playout_started()
        self.playout.emit("playout_started")
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
            upcoming = self._next_caption()
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
        while True:
            played = handle.input_played_samples
            upcoming = forwarder.set_playout_position(played)
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
            timer = clock.call_at(clock.now_ns() + wait_ns, changed.set)
            try:
                await changed.wait()
            finally:
                timer.cancel()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve the future a task of the item waits on, if it waits."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _broken(reader: asyncio.Task[None]) -> bool:
    """True when the reader stopped on an error other than rejected input."""
    if reader.cancelled():
        return True
    error = reader.exception()
    return error is not None and not isinstance(error, InputRejected)


def _validate(frame: object) -> Pcm:
    try:
        if frame is None:
            raise TypeError("audio_stream yielded None instead of an audio frame")
        return frame_pcm(frame)
    except (TypeError, ValueError) as error:
        raise InputRejected(error) from None
