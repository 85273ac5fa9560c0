"""The phone server over real sockets on 127.0.0.1: who may connect, bad input, limits, and
many calls at once. Bad messages come from a raw ``websockets`` client, the calls that
should be unaffected from ``SimulatedCaller``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import numpy as np
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_playout import AgentPlayout
from agent_playout.sinks.twilio import PhoneCall, SimulatedCaller, serve_phone

from .conftest import frames_of, stream

pytestmark = pytest.mark.realtime

SID = "MZ00000000000000000000000000000001"
TOKEN = "12345678901234567890123456789012"


def start_message(stream_sid: str = SID) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": "AC1",
                "streamSid": stream_sid,
                "callSid": "CA_raw",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {},
            },
        }
    )


async def raw_call(url: str) -> ClientConnection:
    connection = await connect(url)
    await connection.send(
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    )
    await connection.send(start_message())
    return connection


async def quiet_handler(call: PhoneCall) -> None:
    await call.wait_ended()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused a message" in r.getMessage()]


BAD_MESSAGES = [
    ("{not json", "JSON"),
    ("[1, 2]", "object"),
    (json.dumps({"event": "bogus", "streamSid": SID}), "bogus"),
    (
        json.dumps({"event": "media", "streamSid": "MZwrong", "media": {"payload": "/w=="}}),
        "streamSid",
    ),
    (
        json.dumps(
            {
                "event": "media",
                "streamSid": SID,
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "%%%"},
            }
        ),
        "payload",
    ),
]


@pytest.mark.parametrize(("message", "named"), BAD_MESSAGES)
async def test_a_bad_message_gets_one_log_line_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture, message: str, named: str
) -> None:
    calls: list[PhoneCall] = []

    async def handler(call: PhoneCall) -> None:
        calls.append(call)
        await call.wait_ended()

    caplog.set_level(logging.WARNING, "agent_playout")
    async with serve_phone(handler) as server:
        connection = await raw_call(server.url)
        await connection.send(message)
        mark = {"event": "mark", "streamSid": SID, "mark": {"name": "ap-not-ours"}}
        await connection.send(json.dumps(mark))
        for _ in range(50):
            if calls and refusals(caplog):
                break
            await asyncio.sleep(0.02)
        lines = refusals(caplog)
        assert len(lines) == 1
        assert named in lines[0]
        assert "CA_raw" in lines[0]
        assert calls
        assert not calls[0].ended
        await connection.close()


async def test_media_before_start_is_refused_and_the_call_still_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[PhoneCall] = []

    async def handler(call: PhoneCall) -> None:
        calls.append(call)
        await call.wait_ended()

    caplog.set_level(logging.WARNING, "agent_playout")
    async with serve_phone(handler) as server:
        connection = await connect(server.url)
        media = {"event": "media", "streamSid": SID, "media": {"payload": "/w=="}}
        await connection.send(json.dumps(media))
        await connection.send(start_message())
        for _ in range(50):
            if calls:
                break
            await asyncio.sleep(0.02)
        assert calls
        assert any("before start" in r.getMessage() for r in caplog.records)
        await connection.close()


async def test_an_oversized_message_closes_that_call_with_1009_only() -> None:
    async with (
        serve_phone(quiet_handler, max_message_bytes=4096) as server,
        SimulatedCaller(server.url, call_sid="CA_other") as other,
    ):
        connection = await raw_call(server.url)
        await connection.send("x" * 5000)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 2.0)
        assert connection.close_code == 1009
        await asyncio.sleep(0.1)
        assert server.active_calls == 1
        assert other.played == 0  # and still connected


async def test_a_flood_of_messages_closes_that_call_with_1008() -> None:
    async with serve_phone(quiet_handler) as server:
        connection = await raw_call(server.url)
        mark = json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "1"}})
        for _ in range(5000):
            await connection.send(mark)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 1.0)
        await asyncio.sleep(0.05)
        assert connection.close_code == 1008
        assert server.active_calls == 0


def signed_headers(url: str, token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, {})}


async def test_a_valid_signature_is_let_in() -> None:
    public = "wss://agent.example.com/"
    async with (
        serve_phone(quiet_handler, auth_token=TOKEN, public_url=public) as server,
        SimulatedCaller(server.url, headers=signed_headers(public)),
    ):
        await asyncio.sleep(0.1)
        assert server.active_calls == 1


@pytest.mark.parametrize(
    "headers",
    [{}, signed_headers("wss://agent.example.com/", token="0" * 32), {"X-Twilio-Signature": "x"}],
    ids=["missing", "wrong token", "garbage"],
)
async def test_a_missing_or_wrong_signature_is_refused_with_403_and_no_token_logged(
    caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    caplog.set_level(logging.WARNING, "agent_playout")
    public = "wss://agent.example.com/"
    async with serve_phone(quiet_handler, auth_token=TOKEN, public_url=public) as server:
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, additional_headers=headers)
        assert refused.value.response.status_code == 403
        assert server.active_calls == 0
    logged = [r.getMessage() for r in caplog.records]
    assert any("X-Twilio-Signature" in line for line in logged)
    assert not any(TOKEN in line for line in logged)


async def test_calls_past_max_calls_are_refused_with_1013() -> None:
    async with (
        serve_phone(quiet_handler, max_calls=2) as server,
        SimulatedCaller(server.url),
        SimulatedCaller(server.url),
    ):
        await asyncio.sleep(0.1)
        connection = await connect(server.url)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 2.0)
        assert connection.close_code == 1013
        assert server.active_calls == 2


def tones(count: int, seconds: float) -> Sequence[np.ndarray]:
    length = round(seconds * 24000)
    return [
        (6000 * np.sin(2 * np.pi * (300 + 20 * n) * np.arange(length) / 24000)).astype(np.int16)
        for n in range(count)
    ]


async def test_twenty_calls_at_once_each_play_all_of_their_audio() -> None:
    reports: dict[str, int] = {}

    async def handler(call: PhoneCall) -> None:
        playout = AgentPlayout(audio_source=call.sink)
        handle = playout.play(
            item_id=call.call_sid,
            content_index=0,
            transcription_fwd=None,
            text_stream=stream([]),
            audio_stream=stream(frames_of(tones(1, 0.8)[0], 480)),
        )
        await handle.wait_for_playout()
        reports[call.call_sid] = handle.audio_samples
        await call.hang_up()

    async with serve_phone(handler) as server:
        callers = [SimulatedCaller(server.url, call_sid=f"CA{n:02d}") for n in range(20)]
        for caller in callers:
            await caller.__aenter__()
        try:
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in callers)), 5.0)
        finally:
            for caller in callers:
                await caller.__aexit__(None, None, None)
    assert sorted(reports) == [f"CA{n:02d}" for n in range(20)]
    assert set(reports.values()) == {round(0.8 * 24000)}
    assert [c.played for c in callers] == [round(0.8 * 8000)] * 20
