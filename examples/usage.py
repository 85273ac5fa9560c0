"""The README's Usage block: play an answer, barge in after 1 s, say what was heard.

It runs on a ``VirtualClock`` with a ``NullSink``, so it takes no real time; every output
in the README plays the same way. Run: ``python examples/usage.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    PlayoutReport,
    TranscriptForwarder,
    VirtualClock,
    truncation_for,
)

RATE = 24000
ANSWER = "The next train to Boston leaves at 6:40 from platform three."


async def model_text(clock: VirtualClock) -> AsyncIterator[str]:
    """The answer's transcript deltas, as a realtime model streams them."""
    for index, word in enumerate(ANSWER.split(" ")):
        yield word if index == 0 else " " + word
        await clock.sleep(0.02)


async def model_audio(clock: VirtualClock, seconds: float = 3.0) -> AsyncIterator[AudioFrame]:
    """The answer's audio: 100 ms frames of 24 kHz PCM16, sent faster than real time."""
    tone = (3000 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * RATE)) / RATE)).astype(
        np.int16
    )
    for start in range(0, tone.size, RATE // 10):
        yield AudioFrame.from_array(tone[start : start + RATE // 10], RATE)
        await clock.sleep(0.05)


async def main() -> None:
    clock = VirtualClock()
    sink = NullSink(clock=clock)  # any output: LiveKit, speakers, WAV, ...
    texts, frames = model_text(clock), model_audio(clock)  # async iterables of str / frames
    forwarder = TranscriptForwarder(record_words=True)  # record_words: for the report

    playout = AgentPlayout(audio_source=sink)
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=texts,
        audio_stream=frames,
    )
    await clock.advance(1.0)  # the listener barges in after 1 s
    handle.interrupt()  # the sink is cleared in this call
    await handle.wait_for_playout()  # forwarder closed, playout_stopped emitted
    print("audio_samples:", handle.audio_samples)  # heard samples at 24 kHz, exact
    print("played_text:", repr(handle.played_text))  # the words heard

    # What to send the realtime API: conversation.item.truncate or .delete, or None if all
    # was heard. Counts are at 24 kHz; the model sent what the item received here.
    sent_24khz = handle.received_samples * 24000 // handle.input_sample_rate
    cut = truncation_for(
        item_id=handle.item_id,
        content_index=0,
        heard_samples=handle.audio_samples,
        sent_samples=sent_24khz,
        completed=not handle.interrupted,
    )
    print("send:", None if cut is None else cut.to_event())
    report = PlayoutReport.from_playout(handle, forwarder)  # the same, as one JSON record
    print("report:", report.to_json(indent=None))
    await playout.aclose()


if __name__ == "__main__":
    asyncio.run(main())
