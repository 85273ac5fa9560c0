"""A phone agent: each Twilio call bridged to a realtime speech-to-speech model.

The caller's voice goes up to the model and the model's comes down to the phone, both in the
phone's own G.711 mu-law; when the model hears the caller start speaking, the phone gets
Twilio's ``clear`` and the model a truncation at what the caller's phone played. Runs
offline: ``SimulatedRealtimeServer`` stands in for the model and ``SimulatedCaller`` for
Twilio, over a link that delays every byte by 80 ms each way. Run:
``python examples/phone_realtime.py``. With OpenAI, the URL is
``wss://api.openai.com/v1/realtime?model=gpt-realtime`` and the headers
``[("Authorization", f"Bearer {os.environ['OPENAI_API_KEY']}")]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

from agent_playout.bridges import (
    ItemHeard,
    ScriptedResponse,
    SimulatedRealtimeServer,
    connect_realtime,
)
from agent_playout.bridges.phone import bridge_phone_call
from agent_playout.sinks.twilio import DelayedLink, PhoneCall, SimulatedCaller, serve_phone


def phone_agent(url: str, headers: list[tuple[str, str]]) -> Callable[[PhoneCall], Awaitable[None]]:
    async def answer(call: PhoneCall) -> None:  # one model connection per call
        connection = await connect_realtime(url, headers=headers)

        def heard(item: ItemHeard) -> None:  # what the caller heard of each answer
            state = "interrupted" if item.interrupted else "completed"
            print(f"{call.call_sid}: {state}, heard {item.audio_end_ms} ms: {item.heard_text!r}")
            print(f"the model was told: {item.to_dict()['truncation']}")

        await bridge_phone_call(
            call, connection, instructions="You book tables.", on_item_ended=heard
        )

    return answer


def spoken_answer(seconds: float) -> ScriptedResponse:
    rate = 24000
    wave = 3000 * np.sin(2 * np.pi * 330 * np.arange(round(seconds * rate)) / rate)
    return ScriptedResponse.spoken("Your table is booked for eight.", wave.astype(np.int16))


async def main() -> None:
    async with (
        SimulatedRealtimeServer([spoken_answer(2.0)]) as model,
        serve_phone(phone_agent(model.url, headers=[]), host="127.0.0.1", port=0) as server,
        DelayedLink("127.0.0.1", server.port, delay_ms=80) as link,
        SimulatedCaller(link.url(), call_sid="CA_example") as caller,
    ):
        await caller.wait_played(round(0.8 * 8000))  # 0.8 s into the answer...
        await model.speech_started()  # ...the model hears the caller start speaking
        await model.wait_for("conversation.item.truncate")
        await caller.wait_idle()  # the clear has emptied the phone's buffer
        await caller.hang_up()
    played = caller.cleared_at[0][1]  # what the phone had played when the clear reached it
    print(f"the phone played {played * 1000 // 8000} ms")


if __name__ == "__main__":
    asyncio.run(main())
