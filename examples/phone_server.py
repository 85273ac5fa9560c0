"""The phone output: a Twilio Media Streams server whose report is what the caller's phone played.

Each call hears an answer of 2 s, cut 0.8 s after it starts. Runs offline: ``SimulatedCaller``
dials the server the way Twilio does, over a link that delays every byte by 80 ms each way,
and counts what its phone played. Run: ``python examples/phone_server.py``.
With Twilio, point your TwiML at the server (``<Connect><Stream url="wss://your.host/"/>``)
and set ``TWILIO_AUTH_TOKEN``, so that only Twilio's signed connections get in.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import AgentPlayout, AudioFrame
from agent_playout.sinks.twilio import DelayedLink, PhoneCall, SimulatedCaller, serve_phone

RATE = 24000


async def texts() -> AsyncIterator[str]:
    yield "Your table is booked for eight."


async def frames(seconds: float) -> AsyncIterator[AudioFrame]:
    tone = (3000 * np.sin(2 * np.pi * 330 * np.arange(round(seconds * RATE)) / RATE)).astype(
        np.int16
    )
    for start in range(0, tone.size, RATE // 50):
        yield AudioFrame.from_array(tone[start : start + RATE // 50], RATE)


async def answer(call: PhoneCall) -> None:
    playout = AgentPlayout(audio_source=call.sink)  # 24 kHz in; the sink sends 8 kHz mu-law
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=None,
        text_stream=texts(),
        audio_stream=frames(2.0),
    )
    await asyncio.sleep(0.8)  # the caller barges in
    handle.interrupt()  # sends Twilio's clear in this event-loop turn
    await handle.wait_for_playout()
    print(f"{call.call_sid}: heard {handle.audio_samples} samples at 24 kHz")
    await call.hang_up()


async def main() -> None:
    token = os.environ.get("TWILIO_AUTH_TOKEN")  # None here: loopback only
    async with (
        serve_phone(answer, host="127.0.0.1", port=0, auth_token=token) as server,
        DelayedLink("127.0.0.1", server.port, delay_ms=80) as link,
        SimulatedCaller(link.url(), call_sid="CA_example") as caller,
    ):
        await caller.wait_closed()
    played = caller.cleared_at[0][1]  # what the phone had played when the clear reached it
    print(f"the phone played {played} samples at 8 kHz = {played * 3} at 24 kHz")


if __name__ == "__main__":
    asyncio.run(main())
