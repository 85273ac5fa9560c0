"""The speakers output, with the documented fallback to a WAV file on a machine without
sound output (a server, a container, CI): ``DeviceSink`` raises ``NoOutputDeviceError``.

Plays half a second of tone. Run: ``python examples/speakers.py [fallback.wav]``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import AgentPlayout, AudioFrame
from agent_playout.sinks.device import DeviceSink, NoOutputDeviceError
from agent_playout.sinks.wav import WavSink

RATE = 24000


async def texts() -> AsyncIterator[str]:
    yield "Hello from the speakers."


async def frames(seconds: float) -> AsyncIterator[AudioFrame]:
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * RATE)) / RATE)).astype(
        np.int16
    )
    for start in range(0, tone.size, RATE // 50):
        yield AudioFrame.from_array(tone[start : start + RATE // 50], RATE)


async def speak(playout: AgentPlayout) -> None:
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=None,
        text_stream=texts(),
        audio_stream=frames(0.5),
    )
    await handle.wait_for_playout()
    print(f"audio_samples: {handle.audio_samples}")


async def main(fallback: str) -> None:
    try:
        sink = DeviceSink(24000, 1)
    except NoOutputDeviceError as error:  # no sound card or sound server: use WavSink
        print(f"no speakers ({error}); writing {fallback}")
        with WavSink(fallback, 24000, 1) as wav:
            await speak(AgentPlayout(audio_source=wav))
        return
    async with sink:
        print("playing on the default output device")
        await speak(AgentPlayout(audio_source=sink))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "speakers.wav"))
