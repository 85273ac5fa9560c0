"""A real LiveKit Agents 1.x ``AgentSession`` speaking through ``ExactAudioOutput``.

No room and no cloud: the session runs its own pipeline (LLM node, TTS node, forwarding,
interruption, chat context) on a fake LLM and TTS; the output plays to an
``rtc.AudioSource`` read back through a ``LocalAudioTrack``. What stops short of
production: the track is not published (that needs a server), and the user's barge-in is
``session.interrupt()``, not speech through a VAD.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .conftest import RATE, ramp, until
from .livekit_agents_required import require_livekit_agents

agents = require_livekit_agents()

from livekit import rtc  # noqa: E402
from livekit.agents import Agent, AgentSession  # noqa: E402

from agent_playout.integrations.livekit_agents import ExactAudioOutput  # noqa: E402

from .livekit_agents_drive import heard_text  # noqa: E402
from .livekit_agents_fakes import RampTTS, ReplyLLM  # noqa: E402
from .livekit_truth import Listener, heard_through  # noqa: E402

pytestmark = pytest.mark.realtime

REPLY = "Sure. The train leaves at nine from platform four, so be there early today."


class CountingOutput(ExactAudioOutput):
    """Counts the samples the session captured (its TTS node adds silent 10 ms markers)."""

    captured = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        self.captured += frame.samples_per_channel
        await super().capture_frame(frame)


@pytest.fixture(params=["after start", "before start"])
async def session(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[AgentSession, RampTTS, CountingOutput, Listener]]:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    listener = Listener(source)
    speech = RampTTS()
    session = AgentSession(llm=ReplyLLM(REPLY), tts=speech)
    output = CountingOutput(session=session, source=source, queue_size_ms=200)
    if request.param == "before start":
        session.output.audio = output
        await session.start(Agent(instructions="Answer briefly."))
    else:
        await session.start(Agent(instructions="Answer briefly."))
        session.output.audio = output
    try:
        yield session, speech, output, listener
    finally:
        await session.aclose()
        await output.aclose()
        await listener.aclose()
        await source.aclose()


def assistant_messages(session: AgentSession) -> list[tuple[str, bool]]:
    return [
        (item.text_content or "", item.interrupted)
        for item in session.history.items
        if item.type == "message" and item.role == "assistant"
    ]


async def test_an_interrupted_reply_keeps_exactly_the_heard_words_in_the_chat_context(
    session: tuple[AgentSession, RampTTS, CountingOutput, Listener],
) -> None:
    agent_session, speech, output, listener = session
    handle = agent_session.generate_reply(user_input="When does the train leave?")
    await until(lambda: output.sink.samples_played > 0, timeout=10)
    await asyncio.sleep(0.8)
    await agent_session.interrupt()
    await asyncio.wait_for(handle.wait_for_playout(), 10)
    heard = await listener.settled()
    samples = output.last_playback_samples
    [(spoken_text, length)] = speech.spoken
    assert spoken_text == REPLY
    signal = ramp(length, start=5000)
    assert heard_through(heard, signal, output.sink.fade_samples) == (samples, heard.size)
    text, interrupted = assistant_messages(agent_session)[-1]
    assert interrupted
    assert text == heard_text(REPLY, output.captured, samples)
    assert 0 < len(text.split()) < len(REPLY.split())
    assert 0 < len(text) < len(REPLY)


async def test_a_reply_played_out_goes_whole_into_the_chat_context(
    session: tuple[AgentSession, RampTTS, CountingOutput, Listener],
) -> None:
    agent_session, speech, output, listener = session
    agent_session.output.audio = output  # set again after start: a no-op
    handle = agent_session.generate_reply(user_input="When does the train leave?")
    await asyncio.wait_for(handle.wait_for_playout(), 20)
    heard = await listener.settled()
    [(_, length)] = speech.spoken
    assert heard.tolist() == ramp(length, start=5000).tolist()
    assert output.last_playback_samples == output.captured >= length
    assert assistant_messages(agent_session)[-1] == (REPLY, False)
