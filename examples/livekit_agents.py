"""LiveKit Agents 1.x: a session speaks through ``ExactAudioOutput`` and is cut short.

In an agent the output publishes its track to the connected room; here there is no server,
so it plays to a source of its own. The session's chat context then holds exactly the
words heard. Needs ``pip install 'agent-playout[livekit-agents]'``. Plays about 1 s.
Run: ``python examples/livekit_agents.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession

from agent_playout.integrations.livekit_agents import ExactAudioOutput

RATE = 24000
TEXT = "The next train to Boston leaves at six forty from platform three."


async def tone(seconds: float) -> AsyncIterator[rtc.AudioFrame]:
    """The speech's audio, as a TTS would stream it (a tone here)."""
    samples = np.arange(round(seconds * RATE))
    wave = (3000 * np.sin(2 * np.pi * 220 * samples / RATE)).astype(np.int16)
    for start in range(0, wave.size, RATE // 50):
        chunk = wave[start : start + RATE // 50]
        yield rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)


async def main() -> None:
    room = rtc.Room()  # await room.connect(url, token) in an agent; not connected here
    session: AgentSession[None] = AgentSession()
    await session.start(Agent(instructions="You give train times."))  # room=room in an agent
    source = None
    if room.isconnected():
        session.output.audio = ExactAudioOutput(room, session=session)
    else:  # no server: the output plays to a source of its own
        source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
        session.output.audio = ExactAudioOutput(session=session, source=source, queue_size_ms=200)
    handle = session.say(TEXT, audio=tone(4.0))
    await asyncio.sleep(1.0)
    handle.interrupt()  # the user barged in
    await handle.wait_for_playout()
    output = session.output.audio
    assert isinstance(output, ExactAudioOutput)
    print(f"played: {output.last_playback_samples} samples")
    message = session.history.items[-1]
    assert message.type == "message"
    print(f"chat context: {message.text_content!r}, interrupted={message.interrupted}")
    await session.aclose()
    await output.aclose()
    if source is not None:
        await source.aclose()  # the output closes only a source it made itself


if __name__ == "__main__":
    asyncio.run(main())
