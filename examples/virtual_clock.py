"""Testing on a virtual clock: a ``NullSink`` paced by a ``VirtualClock`` plays an answer
of 2 s in no real time, and a stream that sleeps for real is reported, not left hanging.

Run: ``python examples/virtual_clock.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import AgentPlayout, AudioFrame, NullSink, VirtualClock

RATE = 24000


async def text(words: str) -> AsyncIterator[str]:
    yield words


async def frames(clock: VirtualClock, seconds: float) -> AsyncIterator[AudioFrame]:
    """20 ms frames, each sent 20 ms after the last, like a model streaming at real time."""
    for _ in range(round(seconds * 50)):
        yield AudioFrame.from_array(np.full(RATE // 50, 1000, dtype=np.int16), RATE)
        await clock.sleep(0.02)  # the virtual asyncio.sleep


async def frames_sleeping_for_real(seconds: float) -> AsyncIterator[AudioFrame]:
    for _ in range(round(seconds * 50)):
        yield AudioFrame.from_array(np.full(RATE // 50, 1000, dtype=np.int16), RATE)
        await asyncio.sleep(0.5)  # a real timer: the virtual clock cannot see it


async def main() -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    started = time.monotonic()
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=None,
        text_stream=text("Two seconds of tone."),
        audio_stream=frames(clock, 2.0),
    )
    await clock.run(handle.wait_for_playout())
    print(f"completed: {not handle.interrupted}, audio_samples: {handle.audio_samples}")
    print(f"real seconds for 2 s of audio: {time.monotonic() - started:.2f}")

    handle = playout.play(
        item_id="it_2",
        content_index=0,
        transcription_fwd=None,
        text_stream=text("Never heard."),
        audio_stream=frames_sleeping_for_real(2.0),
    )
    try:
        await clock.run(handle.wait_for_playout())
    except RuntimeError as error:
        print(f"clock.run refused: {error}")
    handle.interrupt()
    await handle.wait_for_playout()
    await playout.aclose()


if __name__ == "__main__":
    asyncio.run(main())
