"""The WAV output: the file holds exactly what the listener heard, fade-out included.

Plays at real time (an answer of 1 s, cut after 0.4 s) and then reads the file back.
Run: ``python examples/wav_output.py [answer.wav]``.
"""

from __future__ import annotations

import asyncio
import sys
import wave
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import AgentPlayout, AudioFrame
from agent_playout.sinks.wav import WavSink

RATE = 24000


async def texts() -> AsyncIterator[str]:
    yield "Your table is booked for eight."


async def frames(seconds: float) -> AsyncIterator[AudioFrame]:
    tone = (3000 * np.sin(2 * np.pi * 330 * np.arange(round(seconds * RATE)) / RATE)).astype(
        np.int16
    )
    for start in range(0, tone.size, RATE // 50):
        yield AudioFrame.from_array(tone[start : start + RATE // 50], RATE)


async def main(path: str) -> None:
    with WavSink(path, 24000, 1) as sink:
        playout = AgentPlayout(audio_source=sink)
        handle = playout.play(
            item_id="it_1",
            content_index=0,
            transcription_fwd=None,
            text_stream=texts(),
            audio_stream=frames(1.0),
        )
        await asyncio.sleep(0.4)
        handle.interrupt()
        await handle.wait_for_playout()
    with wave.open(path, "rb") as written:
        print(f"heard: {handle.played_samples} samples, in {path}: {written.getnframes()}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "answer.wav"))
