"""A realtime speech-to-speech model played to a WAV file, with the barge-in truncated to what
was heard.

Run: ``python examples/realtime_bridge.py`` talks to an offline ``SimulatedRealtimeServer``,
which speaks one answer and hears the user barge in 1.2 s into it. To talk to OpenAI
instead: ``python examples/realtime_bridge.py 'wss://api.openai.com/v1/realtime?model=gpt-realtime'``
with ``OPENAI_API_KEY`` set (the model then decides when the user spoke).
"""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np

from agent_playout import AgentPlayout
from agent_playout.bridges import (
    AudioFormat,
    RealtimeBridge,
    ScriptedResponse,
    SimulatedRealtimeServer,
    connect_realtime,
    session_update,
)
from agent_playout.sinks.wav import WavSink

ANSWER = "The next train to Boston leaves at six forty from platform three."


async def talk(url: str, headers: dict[str, str]) -> None:
    async with await connect_realtime(url, headers=headers) as model:
        with WavSink("answer.wav") as sink:
            playout = AgentPlayout(audio_source=sink)
            bridge = RealtimeBridge(playout, model.send)  # truncations go back to the model
            bridge.on("item_ended", lambda heard: print("heard:", heard.to_dict()))
            await model.send(session_update(output_format=AudioFormat.PCM16))
            await model.send({"type": "response.create"})
            await bridge.run(model)  # until the server closes the connection
            await playout.aclose()


async def offline() -> None:
    tone = (np.sin(np.arange(24000 * 3) * 2 * np.pi * 220 / 24000) * 8000).astype(np.int16)
    async with SimulatedRealtimeServer([ScriptedResponse.spoken(ANSWER, tone)]) as server:

        async def barge_in() -> None:
            await server.wait_sent("response.output_audio.delta")
            await asyncio.sleep(1.2)
            await server.speech_started()
            truncate = await server.wait_for("conversation.item.truncate")
            print("server got:", truncate)
            await server.close()

        barging = asyncio.create_task(barge_in())
        await talk(server.url, {})
        await barging


if __name__ == "__main__":
    if len(sys.argv) > 1:
        key = os.environ["OPENAI_API_KEY"]
        asyncio.run(talk(sys.argv[1], {"Authorization": f"Bearer {key}"}))
    else:
        asyncio.run(offline())
