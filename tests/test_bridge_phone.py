"""``bridge_phone_call`` end to end over real sockets on 127.0.0.1: ``SimulatedCaller`` (the
fake phone, whose ``played`` count is the ground truth) dials ``serve_phone``, and each call
is bridged to ``SimulatedRealtimeServer`` (the fake model).

The exact cases run the phone's time on a ``VirtualClock`` shared by the caller and the
server: the sockets are real, and no phone time passes while a message is on its way, so the
phone-confirmed position is exact to the sample and the truncation must match the phone to
the millisecond. The cases on the real clock (marked) check how either side's end reaches
the other, and a barge-in with an 80 ms link between the caller and the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("websockets")

from agent_playout.bridges import Dialect
from agent_playout.bridges.connection import RealtimeConnection, connect_realtime
from agent_playout.bridges.heard import ItemHeard
from agent_playout.bridges.phone import bridge_phone_call
from agent_playout.bridges.simulator import ScriptedResponse, SimulatedRealtimeServer
from agent_playout.clock import Clock, VirtualClock
from agent_playout.core import mulaw
from agent_playout.sinks.twilio import (
    DelayedLink,
    PhoneCall,
    PhoneServer,
    SimulatedCaller,
    serve_phone,
)

from .conftest import until

PHONE_RATE = 8000
MODEL_RATE = 24000
ANSWER = "Your table for two is booked for eight tonight, by the window."
REAL_LINK_TOLERANCE_MS = 30
"""Over a real 80 ms link the phone's position is the sink's model of it (the round trip
measured by pings, the marks' echoes): within 1.5 of the phone's 20 ms chunks, as the phone
command's own tests allow."""


def tone(seconds: float, rate: int, amplitude: int = 6000) -> np.ndarray:
    wave = amplitude * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate)
    return wave.astype(np.int16)


def answer(seconds: float = 2.0) -> ScriptedResponse:
    return ScriptedResponse.spoken(ANSWER, tone(seconds, MODEL_RATE))


def speech_media(caller: SimulatedCaller, seconds: float) -> list[str]:
    """The caller's voice (a loud tone) as Twilio's inbound ``media`` messages, 20 ms each."""
    payload = mulaw.encode(tone(seconds, PHONE_RATE, amplitude=8000))
    return [
        json.dumps(
            {
                "event": "media",
                "streamSid": caller.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(n + 1),
                    "timestamp": str(n * 20),
                    "payload": base64.b64encode(payload[i : i + 160]).decode(),
                },
            }
        )
        for n, i in enumerate(range(0, len(payload), 160))
    ]


@dataclass
class Bridged:
    """What the phone server's handler saw: each call, its model connection, the items."""

    calls: list[PhoneCall] = field(default_factory=list)
    connections: list[RealtimeConnection] = field(default_factory=list)
    heard: list[ItemHeard] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    returned: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def bridged_phone(
    model: SimulatedRealtimeServer, *, clock: Clock | None = None, **options: Any
) -> AsyncIterator[tuple[PhoneServer, Bridged]]:
    """A phone server that bridges each call to ``model``."""
    bridged = Bridged()

    async def handler(call: PhoneCall) -> None:
        connection = await connect_realtime(model.url)
        bridged.calls.append(call)
        bridged.connections.append(connection)
        task = asyncio.ensure_future(
            bridge_phone_call(call, connection, on_item_ended=bridged.heard.append, **options)
        )
        bridged.tasks.append(task)
        try:
            await task
        finally:
            bridged.returned.set()

    async with serve_phone(handler, clock=clock) as server:
        yield server, bridged


async def play_for(clock: VirtualClock, seconds: float) -> None:
    """Let the phone play ``seconds``, 10 ms at a time: between the steps the sockets carry
    what the caller and the server sent (marks, their echoes, pongs) at the same phone time."""
    for _ in range(round(seconds * 100)):
        await clock.advance(0.01)
        await asyncio.sleep(0.002)


def exact_ms(samples: int) -> int:
    return samples * 1000 // PHONE_RATE


async def wait_for(condition: Callable[[], bool]) -> None:
    await until(condition, timeout=5.0)


PHONE_FORMATS: dict[Dialect, dict[str, Any]] = {
    "ga": {
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}},
            "output": {"format": {"type": "audio/pcmu"}},
        }
    },
    "beta": {"input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw"},
}
"""What the bridge's ``session.update`` asks for, in each dialect: mu-law both ways."""


@pytest.mark.parametrize(("heard_s", "dialect"), [(0.25, "ga"), (0.73, "beta")])
async def test_a_barge_in_truncates_the_item_exactly_where_the_callers_phone_was(
    heard_s: float, dialect: Dialect
) -> None:
    clock = VirtualClock()
    async with (
        SimulatedRealtimeServer([answer()], dialect=dialect) as model,
        bridged_phone(model, clock=clock, dialect=dialect) as (server, bridged),
        SimulatedCaller(server.url, clock=clock, send_inbound=False) as caller,
    ):
        await wait_for(lambda: caller.samples_received >= 3200)  # the sink's 400 ms queue
        await play_for(clock, heard_s)
        await model.speech_started()
        truncate = await model.wait_for("conversation.item.truncate")
        await wait_for(lambda: bool(caller.cleared_at))
        truncated = await model.wait_sent("conversation.item.truncated")
        ((_, played),) = caller.cleared_at
        await wait_for(lambda: bool(bridged.heard))
    update, create = model.received[:2]
    assert update["type"] == "session.update"
    assert {k: v for k, v in update["session"].items() if k != "type"} == PHONE_FORMATS[dialect]
    assert create["type"] == "response.create"
    assert played == round(heard_s * PHONE_RATE)  # the phone's time did not move on
    assert truncate["audio_end_ms"] == exact_ms(played)
    assert truncated["audio_end_ms"] == truncate["audio_end_ms"]  # the model took it
    (heard,) = bridged.heard
    assert (heard.item_id, heard.content_index) == (truncate["item_id"], 0)
    assert heard.interrupted
    assert heard.sample_rate == PHONE_RATE
    assert heard.heard_samples == played
    assert ANSWER.startswith(heard.heard_text.strip())
    assert caller.close_code == 1000


async def test_the_callers_voice_goes_up_and_its_barge_in_truncates_where_the_phone_was() -> None:
    clock = VirtualClock()
    async with (
        SimulatedRealtimeServer([answer()]) as model,
        bridged_phone(model, clock=clock) as (server, bridged),
        SimulatedCaller(server.url, clock=clock, send_inbound=False) as caller,
    ):
        await wait_for(lambda: caller.samples_received >= 3200)
        await play_for(clock, 0.31)
        speech = speech_media(caller, 0.2)
        for message in speech:
            caller.send_raw(message)
        started = await model.wait_sent("input_audio_buffer.speech_started")
        truncate = await model.wait_for("conversation.item.truncate")
        await wait_for(lambda: bool(caller.cleared_at))
        ((_, played),) = caller.cleared_at
        appends = [e for e in model.received if e["type"] == "input_audio_buffer.append"]
    uploaded = np.concatenate([mulaw.decode(base64.b64decode(e["audio"])) for e in appends])
    assert uploaded.size == 160 * len(speech)  # every sample the caller said, in order
    assert np.array_equal(uploaded, mulaw.decode(mulaw.encode(tone(0.2, PHONE_RATE, 8000))))
    assert all(0 < len(base64.b64decode(e["audio"])) <= 800 for e in appends)  # <= 100 ms
    assert started["audio_start_ms"] >= 0
    assert truncate["audio_end_ms"] == exact_ms(played) == exact_ms(round(0.31 * PHONE_RATE))
    assert [h.heard_samples for h in bridged.heard] == [played]


async def test_a_barge_in_before_the_phone_played_anything_deletes_the_item() -> None:
    clock = VirtualClock()
    async with (
        SimulatedRealtimeServer([answer()]) as model,
        bridged_phone(model, clock=clock) as (server, bridged),
        SimulatedCaller(server.url, clock=clock, send_inbound=False) as caller,
    ):
        await wait_for(lambda: caller.samples_received > 0)
        await model.speech_started()
        delete = await model.wait_for("conversation.item.delete")
        await wait_for(lambda: bool(caller.cleared_at))
        await wait_for(lambda: bool(bridged.heard))
    assert caller.cleared_at[0][1] == 0
    (heard,) = bridged.heard
    assert delete["item_id"] == heard.item_id
    assert heard.heard_samples == 0
    assert not any(e["type"] == "conversation.item.truncate" for e in model.received)


async def test_the_caller_hanging_up_closes_the_model_connection_and_reports_the_item() -> None:
    clock = VirtualClock()
    async with (
        SimulatedRealtimeServer([answer()]) as model,
        bridged_phone(model, clock=clock) as (server, bridged),
    ):
        async with SimulatedCaller(server.url, clock=clock, send_inbound=False) as caller:
            await wait_for(lambda: caller.samples_received >= 3200)
            await play_for(clock, 0.4)
            await caller.hang_up()
        truncate = await model.wait_for("conversation.item.truncate")
        await asyncio.wait_for(bridged.returned.wait(), 5.0)
        (connection,) = bridged.connections
        assert connection.close_code is not None  # the bridge closed it
        assert bridged.calls[0].end_reason == "the caller hung up (stop)"
    (heard,) = bridged.heard
    assert heard.interrupted
    assert heard.heard_samples == caller.played == round(0.4 * PHONE_RATE)
    assert truncate["audio_end_ms"] == 400  # the model's context ends where the caller left


@pytest.mark.realtime
async def test_a_call_already_ended_is_not_bridged_and_its_connection_is_closed() -> None:
    async with SimulatedRealtimeServer([answer()]) as model:
        connection = await connect_realtime(model.url)
        returned = asyncio.Event()

        async def handler(call: PhoneCall) -> None:
            await call.wait_ended()
            await bridge_phone_call(call, connection)
            returned.set()

        async with serve_phone(handler) as server:
            async with SimulatedCaller(server.url) as caller:
                await caller.hang_up()
            await asyncio.wait_for(returned.wait(), 5.0)
        assert connection.close_code is not None
        with pytest.raises(TimeoutError):  # a response nobody would hear costs all the same
            await model.wait_for("session.update", timeout=0.5)
    assert model.received == []


@pytest.mark.realtime
async def test_a_failed_send_is_logged_and_given_as_the_reason_without_the_models_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SimulatedRealtimeServer([]) as model:
        ended: list[str | None] = []

        async def handler(call: PhoneCall) -> None:
            connection = await connect_realtime(f"{model.url}?api-key=sk-secret")
            await connection.aclose()  # gone before the bridge's first send
            await bridge_phone_call(call, connection)
            ended.append(call.end_reason)

        async with serve_phone(handler) as server, SimulatedCaller(server.url) as caller:
            await asyncio.wait_for(caller.wait_closed(), 5.0)
            await wait_for(lambda: bool(ended))
    (reason,) = ended
    assert reason is not None
    assert reason.startswith("the realtime bridge failed: cannot send 'session.update'")
    assert "sk-secret" not in caplog.text
    assert "the realtime bridge failed: cannot send 'session.update'" in caplog.text


@pytest.mark.realtime
async def test_the_model_closing_hangs_up_the_call_with_a_reason_naming_the_model() -> None:
    async with (
        SimulatedRealtimeServer([]) as model,
        bridged_phone(model, greet=False) as (server, bridged),
        SimulatedCaller(server.url) as caller,
    ):
        await model.wait_for("session.update")
        await model.close(1000, "session over")
        await asyncio.wait_for(caller.wait_closed(), 5.0)
        await asyncio.wait_for(bridged.returned.wait(), 5.0)
    assert caller.close_code == 1000
    reason = bridged.calls[0].end_reason
    assert reason == "the realtime model closed the connection (code 1000: session over)"
    assert bridged.heard == []


@pytest.mark.realtime
async def test_a_dropped_model_connection_hangs_up_the_call_with_one_line_saying_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "agent_playout")
    async with (
        SimulatedRealtimeServer([]) as model,
        bridged_phone(model, greet=False) as (server, bridged),
        SimulatedCaller(server.url, call_sid="CAdropped") as caller,
    ):
        await model.wait_for("session.update")
        await model.drop()
        await asyncio.wait_for(bridged.returned.wait(), 5.0)
    assert caller.close_code == 1000
    said = [r.getMessage() for r in caplog.records if "CAdropped" in r.getMessage()]
    assert said[1:] == [
        "call CAdropped: ended: the connection to the realtime model dropped (no close frame)"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.realtime
async def test_a_cancelled_bridge_hangs_up_and_closes_the_model_connection() -> None:
    async with (
        SimulatedRealtimeServer([answer()]) as model,
        bridged_phone(model) as (server, bridged),
        SimulatedCaller(server.url) as caller,
    ):
        await wait_for(lambda: caller.samples_received > 0)
        (task,) = bridged.tasks
        task.cancel()
        await asyncio.wait_for(caller.wait_closed(), 5.0)
        await asyncio.wait_for(bridged.returned.wait(), 5.0)
        assert task.cancelled()
        assert bridged.connections[0].close_code is not None
    assert caller.close_code == 1000
    assert [h.interrupted for h in bridged.heard] == [True]


@pytest.mark.realtime
async def test_behind_an_80_ms_link_the_callers_barge_in_truncates_where_the_phone_was() -> None:
    async with (
        SimulatedRealtimeServer([answer(3.0)]) as model,
        bridged_phone(model) as (server, bridged),
        DelayedLink("127.0.0.1", server.port, delay_ms=80) as link,
        SimulatedCaller(link.url()) as caller,
    ):
        await caller.wait_played(round(0.8 * PHONE_RATE))
        for message in speech_media(caller, 0.2):
            caller.send_raw(message)
        truncate = await model.wait_for("conversation.item.truncate")
        await wait_for(lambda: bool(caller.cleared_at))
        ((_, played),) = caller.cleared_at
    assert abs(truncate["audio_end_ms"] - exact_ms(played)) <= REAL_LINK_TOLERANCE_MS
    assert truncate["audio_end_ms"] > 800
    assert [h.audio_end_ms for h in bridged.heard] == [truncate["audio_end_ms"]]
