"""Streams one answer through the engine as a realtime model would: the CLI's core.

Audio arrives in pieces (a sentence from a voice, or a whole file) and is cut into small
frames that the engine reads as they come; each piece's text is queued for the transcript
just before its audio, so captions are known before the words are heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..core.frames import AudioFrame
from ..core.units import NS_PER_SECOND
from ..engine.handle import PlayoutHandle
from ..engine.playout import AgentPlayout
from ..engine.report import PlayoutReport
from ..transcript.forwarder import TranscriptForwarder
from ..transcript.timed_text import TimedText
from ..tts import SynthesisChunk, Voice

Int16Array = npt.NDArray[np.int16]

FRAME_MS = 20
"""Frame size of the streamed audio, as a realtime model sends it."""


@dataclass(frozen=True)
class Piece:
    """Interleaved int16 audio and the transcript text that goes with it."""

    audio: Int16Array
    texts: tuple[str | TimedText, ...]


@dataclass(frozen=True)
class Spoken:
    """The outcome of one item: its report and the audio received for it (mixed to mono)."""

    report: PlayoutReport
    audio: Int16Array


Watcher = Callable[[TranscriptForwarder], None]
"""Called with the item's forwarder once it is playing, e.g. to show its captions."""


def voice_pieces(voice: Voice, text: str, *, in_thread: bool) -> AsyncIterator[Piece]:
    """Synthesize ``text`` sentence by sentence, each word's time as a ``TimedText``.

    ``in_thread`` keeps the event loop (and so the playout) running while the voice works;
    without it synthesis blocks the loop, which is what a virtual clock needs.
    """
    rate = voice.sample_rate

    def piece(chunk: SynthesisChunk) -> Piece:
        texts = tuple(TimedText(f"{w.text} ", w.start / rate, w.end / rate) for w in chunk.words)
        return Piece(chunk.audio, texts)

    async def pieces() -> AsyncIterator[Piece]:
        chunks: Iterator[SynthesisChunk] = voice.synthesize(text)
        while True:
            if in_thread:
                chunk = await asyncio.to_thread(next, chunks, None)
            else:
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield piece(chunk)

    return pieces()


async def file_pieces(audio: Int16Array, text: str) -> AsyncIterator[Piece]:
    """A recorded answer: all its audio at once, the text without timings."""
    yield Piece(audio, (text,))


def _mono(audio: Int16Array, num_channels: int) -> Int16Array:
    """Interleaved audio mixed down to one channel, for the plot."""
    if num_channels == 1:
        return audio
    mixed: Int16Array = audio.reshape(-1, num_channels).mean(axis=1).astype(np.int16)
    return mixed


async def speak(
    playout: AgentPlayout,
    pieces: AsyncIterator[Piece],
    *,
    item_id: str,
    sample_rate: int,
    num_channels: int = 1,
    interrupt_after: float | None = None,
    watch: Watcher | None = None,
) -> Spoken:
    """Play one item from ``pieces`` and report what was heard; a simulated barge-in
    interrupts it once the listener has heard ``interrupt_after`` seconds of it."""
    forwarder = TranscriptForwarder(record_words=True)
    texts: asyncio.Queue[str | TimedText | None] = asyncio.Queue()
    received: list[Int16Array] = []
    timings: list[TimedText] = []
    step = sample_rate * FRAME_MS // 1000

    async def audio_stream() -> AsyncIterator[AudioFrame]:
        async for piece in pieces:
            for text in piece.texts:
                texts.put_nowait(text)
            received.append(_mono(piece.audio, num_channels))
            for start in range(0, piece.audio.size, step * num_channels):
                chunk = piece.audio[start : start + step * num_channels]
                yield AudioFrame(chunk, sample_rate, num_channels, chunk.size // num_channels)
        texts.put_nowait(None)

    async def text_stream() -> AsyncIterator[str | TimedText]:
        while (text := await texts.get()) is not None:
            if isinstance(text, TimedText):
                timings.append(text)
            yield text

    handle = playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=text_stream(),
        audio_stream=audio_stream(),
    )
    barge_in = (
        None
        if interrupt_after is None
        else asyncio.create_task(_interrupt_once_heard(playout, handle, interrupt_after))
    )
    if watch is not None:
        watch(forwarder)
    try:
        await handle.wait_for_playout()
    finally:
        if barge_in is not None:
            barge_in.cancel()
            await asyncio.gather(barge_in, return_exceptions=True)
    report = PlayoutReport.from_playout(handle, forwarder, timings=timings)
    audio = np.concatenate(received) if received else np.zeros(0, dtype=np.int16)
    return Spoken(report, audio)


async def _interrupt_once_heard(
    playout: AgentPlayout, handle: PlayoutHandle, seconds: float
) -> None:
    """Interrupt ``handle`` when its played position reaches ``seconds``, wherever the wall
    clock is by then (first-frame latency and underruns do not move the cut)."""
    clock = playout.clock
    while not handle.done():
        remaining = seconds - handle.played_samples / handle.sample_rate
        if remaining <= 0:
            handle.interrupt()
            return
        await clock.sleep_until(clock.now_ns() + max(round(remaining * NS_PER_SECOND), 1_000_000))
