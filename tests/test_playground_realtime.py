"""The playground with ``--realtime``: each tab (a real aiortc peer) talks to its own
connection to a simulated realtime server; Speak asks for a response, the bridge plays it
on the tab's WebRTC playout with captions, and Interrupt sends the model the truncation at
what the tab's receiver confirmed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("aiortc")
pytest.importorskip("websockets")

import aiohttp

from agent_playout.bridges import ScriptedResponse, SimulatedRealtimeServer
from agent_playout.playground import PlaygroundServer, RealtimeTarget, serve_playground

from .playground_peer import Tab

pytestmark = pytest.mark.realtime

ANSWER = "The next train to Boston leaves at six forty from platform three."


def speech(seconds: float) -> np.ndarray:
    """A 24 kHz tone in bursts, like words."""
    t = np.arange(round(seconds * 24000)) / 24000
    envelope = 0.3 + 0.7 * (np.sin(2 * np.pi * 3 * t) > 0)
    return (np.sin(2 * np.pi * 220 * t) * envelope * 9000).astype(np.int16)


@pytest.fixture
async def model() -> AsyncIterator[SimulatedRealtimeServer]:
    responses = [ScriptedResponse.spoken(ANSWER, speech(4.0))]
    async with SimulatedRealtimeServer(responses, speed=1.5, script_per_connection=True) as server:
        yield server


@pytest.fixture
async def playground(model: SimulatedRealtimeServer) -> AsyncIterator[PlaygroundServer]:
    target = RealtimeTarget(model.url, instructions="You answer train questions.")
    async with serve_playground(None, realtime=target) as server:
        yield server


async def test_speak_asks_the_model_and_interrupt_truncates_it_where_the_tab_heard(
    model: SimulatedRealtimeServer, playground: PlaygroundServer
) -> None:
    async with aiohttp.ClientSession() as http, Tab.opened(http, playground.url) as tab:
        assert tab.of_kind("hello")[0]["mode"] == "realtime"
        await tab.wait_for("model", state="connected")
        update = await model.wait_for("session.update")
        assert update["session"]["instructions"] == "You answer train questions."
        await tab.send({"type": "speak", "text": "Say when the next train leaves."})
        asked = await model.wait_for("response.create")
        assert asked["response"]["instructions"] == "Say when the next train leaves."
        started = await tab.wait_for("item-started")
        await tab.first_caption(started["item_id"])
        await tab.send({"type": "interrupt"})
        truncate = await model.wait_for("conversation.item.truncate")
        report = await tab.wait_for("report", item_id=started["item_id"])
        assert report["interrupted"] is True
        assert report["position_confirmed"] is True
        assert report["truncation"] == {
            key: truncate[key] for key in ("type", "item_id", "content_index", "audio_end_ms")
        }
        assert truncate["audio_end_ms"] == report["heard_samples"] * 1000 // 48000
        assert ANSWER.startswith(report["heard_text"].strip())
        assert report["heard_text"].strip()
        assert report["plot"] is None
        await model.wait_for("response.cancel")


async def test_an_unreachable_model_is_said_on_the_page_and_speak_is_refused_saying_why() -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    target = RealtimeTarget(f"ws://127.0.0.1:{port}/v1/realtime")
    async with (
        serve_playground(None, realtime=target) as playground,
        aiohttp.ClientSession() as http,
        Tab.opened(http, playground.url) as tab,
    ):
        error = await tab.wait_for("error")
        assert error["message"].startswith("the realtime model is unreachable: ")
        await tab.send({"type": "speak", "text": "Hello?"})
        refused = await tab.wait_for("error", message="the realtime model is not connected")
        assert refused
        assert tab.session in playground.sessions
