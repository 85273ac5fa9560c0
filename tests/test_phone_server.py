"""The phone server over real sockets on 127.0.0.1: who may connect, bad input, limits, and
many calls at once. Bad messages come from a raw ``websockets`` client, the calls that
should be unaffected from ``SimulatedCaller``."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_playout import AgentPlayout, PlayoutHandle
from agent_playout.sinks.twilio import PhoneCall, SimulatedCaller, serve_phone

from .conftest import play_tone, until

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


OTHER_TONE_S = 0.8


class BadAndGood:
    """The handler of a server with two calls at once: the raw one (``CA_raw``, where the bad
    input comes from) only takes key presses; every other call plays an ``OTHER_TONE_S`` tone
    to the end and hangs up, so its phone's count says whether it was disturbed."""

    def __init__(self) -> None:
        self.digits: list[str] = []
        self.pressed = asyncio.Event()
        self.listening = asyncio.Event()
        self.handles: dict[str, PlayoutHandle] = {}

    async def handler(self, call: PhoneCall) -> None:
        if call.call_sid == "CA_raw":
            call.on("dtmf", self._pressed)
            self.listening.set()
            await call.wait_ended()
            return
        playout = AgentPlayout(audio_source=call.sink)
        handle = self.handles[call.call_sid] = play_tone(playout, "tone", OTHER_TONE_S)
        await handle.wait_for_playout()
        await call.hang_up()

    def _pressed(self, digit: str) -> None:
        self.digits.append(digit)
        self.pressed.set()

    async def survives(self, connection: ClientConnection) -> None:
        """The raw call still takes a key press after the bad input."""
        await asyncio.wait_for(self.listening.wait(), 2.0)
        dtmf = {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound", "digit": "7"}}
        await connection.send(json.dumps(dtmf))
        await asyncio.wait_for(self.pressed.wait(), 2.0)
        assert self.digits == ["7"]

    async def assert_undisturbed(self, other: SimulatedCaller) -> None:
        """The other call played its whole tone, and the phone played all of it."""
        await asyncio.wait_for(other.wait_closed(), 3.0)
        handle = self.handles[other.call_sid]
        assert handle.error is None
        assert not handle.interrupted
        assert handle.audio_samples == round(OTHER_TONE_S * 24000)
        assert other.played == round(OTHER_TONE_S * 8000)
        assert other.close_code == 1000


def lines_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


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
    calls = BadAndGood()
    caplog.set_level(logging.WARNING, "agent_playout")
    async with (
        serve_phone(calls.handler) as server,
        SimulatedCaller(server.url, call_sid="CA_other") as other,
    ):
        await other.wait_played(800)  # the other call is playing its tone
        connection = await raw_call(server.url)
        await connection.send(message)
        mark = {"event": "mark", "streamSid": SID, "mark": {"name": "ap-not-ours"}}
        await connection.send(json.dumps(mark))  # a mark it did not send: no refusal
        await calls.survives(connection)
        await calls.assert_undisturbed(other)
        await connection.close()
    (line,) = lines_about(caplog, "CA_raw")
    assert "refused a message" in line
    assert named in line


async def test_media_before_start_is_refused_and_the_call_still_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = BadAndGood()
    caplog.set_level(logging.WARNING, "agent_playout")
    async with (
        serve_phone(calls.handler) as server,
        SimulatedCaller(server.url, call_sid="CA_other") as other,
    ):
        await other.wait_played(800)
        connection = await connect(server.url)
        media = {"event": "media", "streamSid": SID, "media": {"payload": "/w=="}}
        await connection.send(json.dumps(media))
        await connection.send(start_message())
        await calls.survives(connection)
        await calls.assert_undisturbed(other)
        await connection.close()
    (line,) = lines_about(caplog, "refused a message")
    assert "before start" in line


async def test_an_oversized_message_closes_that_call_with_1009_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = BadAndGood()
    caplog.set_level(logging.INFO, "agent_playout")
    async with (
        serve_phone(calls.handler, max_message_bytes=4096) as server,
        SimulatedCaller(server.url, call_sid="CA_other") as other,
    ):
        await other.wait_played(800)
        connection = await raw_call(server.url)
        await connection.send("x" * 5000)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 2.0)
        assert connection.close_code == 1009
        await calls.assert_undisturbed(other)
    (line,) = lines_about(caplog, "call CA_raw: ended")
    assert "larger than the limit" in line
    assert lines_about(caplog, "CA_raw") == [f"call CA_raw: answered (stream {SID})", line]


async def test_a_flood_of_messages_closes_that_call_with_1008(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = BadAndGood()
    caplog.set_level(logging.INFO, "agent_playout")
    async with (
        serve_phone(calls.handler) as server,
        SimulatedCaller(server.url, call_sid="CA_other") as other,
    ):
        await other.wait_played(800)
        connection = await raw_call(server.url)
        dtmf = json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "1"}})
        for _ in range(5000):
            await connection.send(dtmf)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 1.0)
        assert connection.close_code == 1008
        await until(lambda: server.active_calls == 1)
        await calls.assert_undisturbed(other)
    (line,) = lines_about(caplog, "call CA_raw: ended")
    assert "messages in a second" in line
    assert lines_about(caplog, "CA_raw") == [f"call CA_raw: answered (stream {SID})", line]


def signed_headers(url: str, token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, {})}


async def test_a_valid_signature_is_let_in() -> None:
    public = "wss://agent.example.com/"
    async with (
        serve_phone(quiet_handler, auth_token=TOKEN, public_url=public) as server,
        SimulatedCaller(server.url, headers=signed_headers(public)) as caller,
    ):
        await until(lambda: server.active_calls == 1)
        assert not caller.closed


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
        await until(lambda: server.active_calls == 2)
        connection = await connect(server.url)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 2.0)
        assert connection.close_code == 1013
        assert server.active_calls == 2


async def test_twenty_calls_at_once_each_cut_where_its_phone_was_then_play_a_turn_whole() -> None:
    reports: dict[str, tuple[int, int]] = {}

    async def handler(call: PhoneCall) -> None:
        playout = AgentPlayout(audio_source=call.sink)
        await until(lambda: call.sink.round_trip_ns is not None)
        cut = play_tone(playout, "cut", 1.0)
        await asyncio.sleep(0.2 + 0.02 * int(call.call_sid[2:]))  # each call a different time
        cut.interrupt()
        await cut.wait_for_playout()
        whole = play_tone(playout, "whole", 0.3)
        await whole.wait_for_playout()
        assert cut.interrupted
        assert not whole.interrupted
        reports[call.call_sid] = (cut.audio_samples, whole.audio_samples)
        await call.hang_up()

    async with serve_phone(handler) as server:
        callers = [SimulatedCaller(server.url, call_sid=f"CA{n:02d}") for n in range(20)]
        for caller in callers:
            await caller.__aenter__()
        try:
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in callers)), 10.0)
        finally:
            for caller in callers:
                await caller.__aexit__(None, None, None)
    assert sorted(reports) == [c.call_sid for c in callers]
    for caller in callers:
        cut_heard, whole_heard = reports[caller.call_sid]
        ((_, played_at_clear),) = caller.cleared_at
        assert abs(cut_heard - 3 * played_at_clear) <= 24000 * 30 // 1000, caller.call_sid
        assert whole_heard == round(0.3 * 24000)
        assert caller.played - played_at_clear == round(0.3 * 8000), caller.call_sid
    clears = sorted(played for caller in callers for _, played in caller.cleared_at)
    assert len(set(clears)) == 20  # each call cut at its own place


async def test_a_stop_before_start_closes_the_connection_at_once() -> None:
    async with serve_phone(quiet_handler) as server:
        connection = await connect(server.url)
        stop = {"event": "stop", "streamSid": SID, "stop": {"accountSid": "AC1", "callSid": "CA1"}}
        await connection.send(json.dumps(stop))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 1.0)  # not the 10 s start timeout
        assert connection.close_code == 1000


async def test_junk_before_start_is_logged_a_few_times_then_the_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "agent_playout")
    async with serve_phone(quiet_handler) as server:
        connection = await connect(server.url)
        for _ in range(25):
            await connection.send("{not json")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 1.0)
        assert connection.close_code == 1008
    assert len(lines_about(caplog, "before start")) == 5


async def test_a_handler_that_outlives_its_call_frees_the_call_slot() -> None:
    forever = asyncio.Event()

    async def stuck(call: PhoneCall) -> None:
        await forever.wait()  # user code that never notices the hang-up

    async with serve_phone(stuck, max_calls=1) as server:
        async with SimulatedCaller(server.url) as first:
            await until(lambda: server.active_calls == 1)
            await first.hang_up()
        await until(lambda: server.active_calls == 0)
        async with SimulatedCaller(server.url) as second:
            await until(lambda: server.active_calls == 1)  # answered, not refused with 1013
            assert not second.closed


async def test_a_caller_that_stops_reading_ends_the_item_at_the_pong_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agent_playout.sinks.twilio.call.PONG_TIMEOUT_S", 0.5)
    handles: list[PlayoutHandle] = []

    async def answer(call: PhoneCall) -> None:
        handle = play_tone(AgentPlayout(audio_source=call.sink), "it_1", 10.0)
        handles.append(handle)
        await handle.wait_for_playout()

    async with serve_phone(answer) as server:
        connection = await raw_call(server.url)
        await until(lambda: bool(handles))
        connection.transport.pause_reading()  # no pong, no close frame read, a filling window
        await asyncio.wait_for(handles[0].wait_for_playout(), 5.0)
        assert "no pong" in str(handles[0].error)
        assert handles[0].audio_samples < 2 * 24000
        await until(lambda: server.active_calls == 0, timeout=5.0)
        connection.transport.abort()


async def test_shutting_down_hangs_up_unanswering_callers_at_once() -> None:
    server = await serve_phone(quiet_handler)
    connections = [await raw_call(server.url) for _ in range(5)]
    await until(lambda: server.active_calls == 5)
    for connection in connections:
        connection.transport.pause_reading()  # none will answer the close frame
    started = asyncio.get_running_loop().time()
    await server.aclose()
    # each close waits CLOSE_TIMEOUT_S (2 s) for its answer, all of them at the same time
    assert asyncio.get_running_loop().time() - started < 4.0
    for connection in connections:
        connection.transport.abort()


async def test_shutting_down_cancels_a_handler_that_outlived_its_call() -> None:
    cancelled = asyncio.Event()

    async def post_call_work(call: PhoneCall) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    server = await serve_phone(post_call_work)
    async with SimulatedCaller(server.url) as caller:
        await until(lambda: server.active_calls == 1)
        await caller.hang_up()
    await until(lambda: server.active_calls == 0)
    assert not cancelled.is_set()  # it runs on after its call
    await server.aclose()
    assert cancelled.is_set()
