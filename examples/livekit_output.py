"""The LiveKit output: a real ``rtc.AudioSource``, here without a room (no server needed).

In an agent the source is the one published to the room, and captions go to the room
through ``TranscriptPublisher``; publishing needs a connected room, so that part runs only
when ``room.isconnected()``. Plays half a second. Run: ``python examples/livekit_output.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc

from agent_playout import AgentPlayout, TranscriptForwarder
from agent_playout.sinks.livekit import LiveKitSink, TranscriptPublisher

RATE = 24000


async def texts() -> AsyncIterator[str]:
    yield "Half a second through LiveKit."


async def frames(seconds: float) -> AsyncIterator[rtc.AudioFrame]:
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * RATE)) / RATE)).astype(
        np.int16
    )
    for start in range(0, tone.size, RATE // 50):
        chunk = tone[start : start + RATE // 50]
        yield rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)


async def main() -> None:
    room = rtc.Room()  # room.connect(url, token) in an agent; not connected here
    source = rtc.AudioSource(24000, 1, queue_size_ms=200)
    track = rtc.LocalAudioTrack.create_audio_track("agent-voice", source)
    sink = LiveKitSink(source, queue_size_ms=200)
    playout = AgentPlayout(audio_source=sink)
    forwarder = TranscriptForwarder()
    if room.isconnected():  # publishing captions needs a room connected to a server
        agent = room.local_participant
        publication = await agent.publish_track(track)
        publisher = TranscriptPublisher(
            agent, participant_identity=agent.identity, track_sid=publication.sid
        )
        publisher.attach(forwarder)  # captions with real start/end times
    else:
        print("room not connected: captions are not published")
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=texts(),
        audio_stream=frames(0.5),
    )
    await handle.wait_for_playout()
    print(f"audio_samples: {handle.audio_samples}, heard: {handle.played_text!r}")
    await playout.aclose()
    await sink.aclose()  # a cut's fade-out ends before the source closes
    await source.aclose()


if __name__ == "__main__":
    asyncio.run(main())
