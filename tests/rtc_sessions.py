"""A worker process for ``test_multiprocess``: sessions on real ``rtc.AudioSource`` sinks.

Run as ``python -m tests.rtc_sessions SESSIONS SECONDS``; prints one JSON line: for each
session, whether it completed, the samples its handle says were heard, and the samples
the source really released (read back through a track and an ``rtc.AudioStream``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from livekit import rtc

from agent_playout import AgentPlayout, TranscriptForwarder
from agent_playout.sinks.livekit import LiveKitSink

from .conftest import RATE, frames_of, ramp, stream
from .livekit_truth import Listener

QUEUE_MS = 1000
"""Given to the sink, as a loaded process cannot measure it (three of these run at once)."""


async def session(index: int, seconds: float) -> dict[str, Any]:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    listener = Listener(source)
    signal = ramp(round(seconds * RATE), start=index * 1000)
    playout = AgentPlayout(audio_source=LiveKitSink(source, queue_size_ms=QUEUE_MS))
    try:
        handle = playout.play(
            item_id=f"item_{index}",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=stream([]),
            audio_stream=stream(frames_of(signal, 480)),
        )
        await handle.wait_for_playout()
        heard = await listener.settled()
    finally:
        await playout.aclose()
        await listener.aclose()
        await source.aclose()
    return {
        "completed": not handle.interrupted and handle.error is None,
        "error": None if handle.error is None else repr(handle.error),
        "reported": handle.audio_samples,
        "released": int(heard.size),
        "same_audio": bool(heard.size == signal.size and (heard == signal).all()),
    }


async def main(sessions: int, seconds: float) -> None:
    results = await asyncio.gather(*(session(i, seconds) for i in range(sessions)))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
