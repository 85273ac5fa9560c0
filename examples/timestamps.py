"""Word timings: ``TimedText`` from a voice, or from a provider's message as it arrives.

Cartesia's websocket sends ``{"type": "timestamps", "word_timestamps": {...}}``; ElevenLabs'
sends ``{"audio": ..., "alignment": {...}, "normalizedAlignment": {...}}``. Both become
``TimedText`` words; played with a cut at 0.9 s, exactly the words that started by then
are heard. Run: ``python examples/timestamps.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import numpy as np

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    TimedText,
    TranscriptForwarder,
    TranscriptSegment,
    VirtualClock,
    from_character_alignment,
    from_word_timestamps,
)

RATE = 24000

cartesia_message = {  # a Cartesia websocket message, parsed from JSON
    "type": "timestamps",
    "context_id": "ctx-1",
    "done": False,
    "status_code": 206,
    "word_timestamps": {
        "words": ["Hello,", "how", "can", "I", "help?"],
        "start": [0.0, 0.5, 0.8, 1.0, 1.2],
        "end": [0.42, 0.75, 0.98, 1.1, 1.6],
    },
}
elevenlabs_message = {  # an ElevenLabs stream-input message, parsed from JSON
    "audio": "<base64 PCM>",
    "isFinal": None,
    "alignment": {
        "chars": list("Hi there"),
        "charStartTimesMs": [0, 60, 120, 180, 240, 300, 360, 420],
        "charDurationsMs": [60, 60, 60, 60, 60, 60, 60, 60],
    },
    "normalizedAlignment": None,
}


async def voice_with_timings() -> AsyncIterator[TimedText]:
    """What a voice that knows its word timings yields as its text stream."""
    yield TimedText("Hello, ", start=0.0, end=0.42)  # seconds from the item's first sample
    yield TimedText("there.", start=0.5, end=0.9)


async def texts(words: Iterable[TimedText]) -> AsyncIterator[TimedText]:
    for word in words:
        yield word


async def audio(seconds: float) -> AsyncIterator[AudioFrame]:
    for _ in range(round(seconds * 10)):
        yield AudioFrame.from_array(np.full(RATE // 10, 1000, dtype=np.int16), RATE)


def show(segment: TranscriptSegment) -> None:
    if segment.final:
        print(f"  segment [{segment.start:.2f} → {segment.end:.2f} s] {segment.text!r}")


async def main() -> None:
    words = from_word_timestamps(cartesia_message)  # the message, or its "word_timestamps"
    # ElevenLabs' times restart at 0 in each message: offset by the audio received before it
    chars = from_character_alignment(elevenlabs_message, offset=1.6)  # or normalized=True
    print("cartesia:", [(word.text, word.start) for word in words])
    print("elevenlabs:", [(word.text, word.start) for word in chars])
    print("voice:", [word async for word in voice_with_timings()])

    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    forwarder = TranscriptForwarder()
    forwarder.on("segment", show)
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=texts(words),
        audio_stream=audio(1.8),
    )
    await clock.advance(0.9)
    handle.interrupt()
    await handle.wait_for_playout()
    print(f"cut at {handle.audio_samples / RATE:.2f} s, heard: {handle.played_text!r}")
    await playout.aclose()


if __name__ == "__main__":
    asyncio.run(main())
