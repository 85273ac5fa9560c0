"""The tasks of one item: read its text, read its audio ahead, push audio, drive captions.

Audio is read from the model's stream as it arrives (up to ``read_ahead`` ahead of the
listener), so the transcript knows how much audio exists long before it is played; a
separate task pushes it to the sink at the sink's pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

from .clock import NS_PER_SECOND, ceil_div
from .forwarder import PositionDriven, TranscriptForwarder
from .frames import AudioFrame, Int16Array, SampleChunker, frame_samples
from .resample import FormatConverter
from .transcript import TimedText

if TYPE_CHECKING:
    from .playout import AgentPlayout, PlayoutHandle

logger = logging.getLogger("agent_playout")

CHUNK_MS = 50
"""Audio is re-chunked into 50 ms frames before it reaches the sink, as in the seed."""


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
    """Runs one item for ``AgentPlayout``; every way out ends in ``AgentPlayout._stop_item``."""

    def __init__(self, playout: AgentPlayout, handle: PlayoutHandle, read_ahead_ms: int) -> None:
        self.playout = playout
        self.handle = handle
        self.sink = playout.sink
        self.started = False
        self._chunks: deque[AudioFrame] = deque()
        self._buffered = 0
        self._read_ahead = self.sink.sample_rate * read_ahead_ms // 1000
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._pusher_idle = False

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
                self.handle._captions_changed.set()
            if forwarder is not None:
                forwarder.mark_text_segment_end()
                self.handle._captions_changed.set()
        except Exception as error:
            self.fail(error)

    async def play_audio(self, audio_stream: AsyncIterable[Any]) -> None:
        """Push what the reader buffers until the stream ends, then drain the sink."""
        reader = asyncio.create_task(self._read_audio(audio_stream))
        reader.add_done_callback(lambda _: self._arrived.set())
        try:
            while True:
                if reader.done() and _broken(reader):
                    self.fail(reader.exception() or RuntimeError("audio reader failed"))
                    return
                if self._chunks:
                    await self._capture(self._next_chunk())
                    continue
                if reader.done():
                    break
                self._arrived.clear()
                self._pusher_idle = True
                await self._arrived.wait()
                self._pusher_idle = False
            rejected = reader.exception()
            if isinstance(rejected, InputRejected):
                self.fail(rejected.error, drain=True)
            await self._drain(complete=rejected is None)
        except Exception as error:
            self.fail(error)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _next_chunk(self) -> AudioFrame:
        chunk = self._chunks.popleft()
        self._buffered -= chunk.samples_per_channel
        if self._buffered <= self._read_ahead:
            self._room.set()
        return chunk

    async def _read_audio(self, audio_stream: AsyncIterable[Any]) -> None:
        """Take frames as they arrive: count them, convert them, buffer them in 50 ms chunks."""
        handle = self.handle
        forwarder = handle._tr_fwd
        sink = self.sink
        chunker = SampleChunker(
            sink.sample_rate, sink.num_channels, sink.sample_rate * CHUNK_MS // 1000
        )
        converter: FormatConverter | None = None
        async for frame in audio_stream:
            samples = _validate(frame)
            if samples.size == 0:
                continue
            if converter is None:
                converter = self._start(frame)
            elif (frame.sample_rate, frame.num_channels) != (
                converter.in_rate,
                converter.in_channels,
            ):
                raise InputRejected(
                    ValueError(
                        f"item {handle.item_id!r} changed format mid-stream, from"
                        f" {converter.in_rate} Hz x{converter.in_channels} to"
                        f" {frame.sample_rate} Hz x{frame.num_channels}"
                    )
                )
            if forwarder is not None:
                forwarder.push_audio(frame)
            handle._timeline.receive(samples.size // frame.num_channels)
            if self._buffer(chunker.push(converter.process(samples))) and self._pusher_idle:
                await asyncio.sleep(0)
            handle._captions_changed.set()
            while self._buffered > self._read_ahead:
                self._room.clear()
                await self._room.wait()
        if converter is not None:
            self._buffer(chunker.push(converter.flush()))
        self._buffer(chunker.flush())
        if forwarder is not None:
            forwarder.mark_audio_segment_end()
        handle._captions_changed.set()

    def _buffer(self, chunks: list[AudioFrame]) -> bool:
        """Queue ``chunks`` for the pusher; True if there were any."""
        if not chunks:
            return False
        self._chunks.extend(chunks)
        self._buffered += sum(chunk.samples_per_channel for chunk in chunks)
        self._arrived.set()
        return True

    def _start(self, frame: Any) -> FormatConverter:
        """First audio of the item: emit ``playout_started`` and set up its conversion."""
        handle = self.handle
        self.started = True
        handle._first_frame_ns = self.playout.clock.now_ns()
        handle._input_rate = frame.sample_rate
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
        handle._captions_changed.set()

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

    async def drive_captions(self, forwarder: PositionDriven) -> None:
        """Report the played position to the forwarder when its text is due to change."""
        clock = self.playout.clock
        handle = self.handle
        changed = handle._captions_changed
        while True:
            played = handle.input_played_samples
            upcoming = forwarder.set_playout_position(played)
            changed.clear()
            if upcoming is None or not self.started or self.playout.paused:
                await changed.wait()
                continue
            wait_ns = ceil_div((upcoming - played) * NS_PER_SECOND, handle.input_sample_rate)
            timer = clock.call_at(clock.now_ns() + wait_ns, changed.set)
            try:
                await changed.wait()
            finally:
                timer.cancel()


def _broken(reader: asyncio.Task[None]) -> bool:
    """True when the reader stopped on an error other than rejected input."""
    if reader.cancelled():
        return True
    error = reader.exception()
    return error is not None and not isinstance(error, InputRejected)


def _validate(frame: object) -> Int16Array:
    try:
        if frame is None:
            raise TypeError("audio_stream yielded None instead of an audio frame")
        return frame_samples(frame)
    except (TypeError, ValueError) as error:
        raise InputRejected(error) from None
