"""The simulated Twilio caller and the delayed link, against a real WebSocket server on 127.0.0.1.

The server here is a bare ``websockets`` server: each test drives the accepted connection by
hand, sending Twilio's outbound shapes and reading what the caller sends. Exact playback tests
run on a ``VirtualClock`` (the socket is real, the phone's time is virtual); the few real-time
ones are short and tolerant.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError, InvalidMessage

from agent_playout.clock import VirtualClock
from agent_playout.sinks.twilio.simulator import DelayedLink, SimulatedCaller

SID = "MZ00000000000000000000000000000001"
CALL = "CA00000000000000000000000000000002"


@dataclass
class Server:
    url: str
    port: int
    connections: asyncio.Queue[ServerConnection]

    async def accept(self) -> ServerConnection:
        return await asyncio.wait_for(self.connections.get(), 5)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(connection: ServerConnection) -> None:
        await connections.put(connection)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        yield Server(f"ws://127.0.0.1:{port}/media", port, connections)


def media(samples: int, stream_sid: str = SID) -> str:
    payload = base64.b64encode(b"\x7f" * samples).decode()
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}})


UPGRADE_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
CLEAR = json.dumps({"event": "clear", "streamSid": SID})


async def next_event(connection: ServerConnection, kind: str) -> dict[str, Any]:
    """The next message of this kind from the caller, skipping its inbound media."""
    while True:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(connection.recv(), 5))
        if event["event"] == kind:
            return event
        assert event["event"] in {"connected", "start", "media"} - {kind}, event


async def read_to_the_end(connection: ServerConnection) -> None:
    """Read until the connection closes (raises ConnectionClosedError if it was lost)."""
    async for _ in connection:
        pass


async def until(condition: Callable[[], bool]) -> None:
    """Wait (real time, bounded) for the caller to have processed what the server sent."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached within 2 s")


async def test_the_call_opens_with_connected_then_start(server: Server) -> None:
    caller = SimulatedCaller(
        server.url,
        stream_sid=SID,
        call_sid=CALL,
        headers={"X-Twilio-Signature": "sig"},
        custom_parameters={"lang": "en"},
        send_inbound=False,
    )
    async with caller:
        connection = await server.accept()
        assert connection.request is not None
        assert connection.request.headers["X-Twilio-Signature"] == "sig"
        assert connection.request.path == "/media"
        first = json.loads(await connection.recv())
        assert first == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = json.loads(await connection.recv())
        assert start["event"] == "start"
        assert start["sequenceNumber"] == "1"
        assert start["streamSid"] == SID
        assert start["start"]["streamSid"] == SID
        assert start["start"]["callSid"] == CALL
        assert start["start"]["accountSid"].startswith("AC")
        assert start["start"]["tracks"] == ["inbound"]
        assert start["start"]["mediaFormat"] == {
            "encoding": "audio/x-mulaw",
            "sampleRate": 8000,
            "channels": 1,
        }
        assert start["start"]["customParameters"] == {"lang": "en"}


@pytest.mark.realtime
async def test_inbound_media_arrive_every_20_ms_as_twilio_numbers_them(server: Server) -> None:
    async with SimulatedCaller(server.url, stream_sid=SID):
        connection = await server.accept()
        await next_event(connection, "start")
        arrivals: list[float] = []
        events = []
        for _ in range(10):
            events.append(await next_event(connection, "media"))
            arrivals.append(time.monotonic())
    assert [e["media"]["chunk"] for e in events] == [str(n) for n in range(1, 11)]
    assert [e["media"]["timestamp"] for e in events] == [str(20 * n) for n in range(10)]
    assert [e["sequenceNumber"] for e in events] == [str(n) for n in range(2, 12)]
    assert all(e["streamSid"] == SID and e["media"]["track"] == "inbound" for e in events)
    assert all(len(base64.b64decode(e["media"]["payload"])) == 160 for e in events)
    span = arrivals[-1] - arrivals[0]
    assert 0.12 < span < 0.30, f"9 periods took {span:.3f} s, not about 0.18 s"


async def test_the_phone_plays_chunks_back_to_back_from_their_arrival(server: Server) -> None:
    clock = VirtualClock(start_ns=10**9)
    async with SimulatedCaller(server.url, stream_sid=SID, send_inbound=False, clock=clock) as c:
        connection = await server.accept()
        await next_event(connection, "start")
        for _ in range(3):
            await connection.send(media(160))
        await until(lambda: c.samples_received == 480)
        t0 = clock.now_ns()
        assert c.played == 0
        assert c.queued == 480
        await clock.advance(0.0299)  # 239.2 samples of time: 239 whole samples played
        assert c.played == 239
        await clock.advance(0.1)
        assert c.played == 480
        # A chunk arriving after the phone ran dry starts at its own arrival.
        t1 = clock.now_ns()
        await connection.send(media(160))
        await until(lambda: c.samples_received == 640)
        await clock.advance(0.01)
        assert c.played == 560
        assert c.played_at(t0 + 10_000_000) == 80
        assert c.played_at(t1) == 480
        assert c.played_at(t1 + 20_000_000) == 640


async def test_a_mark_is_echoed_when_the_audio_before_it_has_played(server: Server) -> None:
    clock = VirtualClock()
    async with SimulatedCaller(server.url, stream_sid=SID, send_inbound=False, clock=clock) as c:
        connection = await server.accept()
        await next_event(connection, "start")
        await connection.send(mark("empty"))
        echo = await next_event(connection, "mark")
        assert echo["mark"] == {"name": "empty"}
        assert echo["streamSid"] == SID
        assert echo["sequenceNumber"] == "2"
        await connection.send(media(800))
        await connection.send(mark("a"))
        await connection.send(media(400))
        await connection.send(mark("b"))
        await until(lambda: len(c.received) == 3)
        await clock.advance_ns(800 * 125_000 - 1)
        assert c.marks_echoed == ["empty"]
        await clock.advance_ns(1)
        assert c.marks_echoed == ["empty", "a"]
        assert (await next_event(connection, "mark"))["mark"]["name"] == "a"
        await clock.advance(0.05)
        assert (await next_event(connection, "mark"))["mark"]["name"] == "b"
        assert c.played == 1200


async def test_a_clear_drops_the_buffer_and_echoes_every_pending_mark_at_once(
    server: Server,
) -> None:
    clock = VirtualClock()
    async with SimulatedCaller(server.url, stream_sid=SID, send_inbound=False, clock=clock) as c:
        connection = await server.accept()
        await next_event(connection, "start")
        for name in ("a", "b", "c"):
            await connection.send(media(800))
            await connection.send(mark(name))
        await until(lambda: len(c.received) == 3)
        await clock.advance(0.15)  # 1200 played: "a" is echoed, "b" and "c" pending
        assert c.marks_echoed == ["a"]
        await connection.send(CLEAR)
        await until(lambda: len(c.received) == 4)
        assert c.marks_echoed == ["a", "b", "c"]
        assert c.cleared_at == [(clock.now_ns(), 1200)]
        assert [(await next_event(connection, "mark"))["mark"]["name"] for _ in range(3)] == [
            "a",
            "b",
            "c",
        ]
        await clock.advance(1)
        assert c.played == 1200
        # The next turn plays from where the clear stopped it.
        await connection.send(media(160))
        await until(lambda: c.samples_received == 2560)
        await clock.advance(1)
        assert c.played == 1360


async def test_messages_a_phone_cannot_use_are_ignored_and_the_call_goes_on(
    server: Server,
) -> None:
    clock = VirtualClock()
    async with SimulatedCaller(server.url, stream_sid=SID, send_inbound=False, clock=clock) as c:
        connection = await server.accept()
        await next_event(connection, "start")
        await connection.send("{not json")
        await connection.send(json.dumps({"event": "dance", "streamSid": SID}))
        await connection.send(media(160, stream_sid="MZ-someone-else"))
        await connection.send(
            json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "@@@"}})
        )
        await connection.send(media(160))
        await until(lambda: c.samples_received == 160)
        assert c.ignored == 4
        await clock.advance(1)
        assert c.played == 160


@pytest.mark.realtime
async def test_real_time_mark_echo_comes_after_the_audio_duration(server: Server) -> None:
    async with SimulatedCaller(server.url, stream_sid=SID) as caller:
        connection = await server.accept()
        await next_event(connection, "start")
        sent = time.monotonic()
        await connection.send(media(1600))
        await connection.send(mark("end"))
        await next_event(connection, "mark")
        took = time.monotonic() - sent
        assert 0.19 < took < 0.30, f"echo after {took:.3f} s, audio is 0.2 s"
        assert caller.played == 1600


async def test_hang_up_sends_stop_and_closes_with_1000(server: Server) -> None:
    clock = VirtualClock()
    caller = SimulatedCaller(server.url, stream_sid=SID, call_sid=CALL, clock=clock)
    async with caller:
        connection = await server.accept()
        await connection.send(media(800))
        await until(lambda: caller.samples_received == 800)
        await clock.advance(0.05)
        await caller.hang_up()
        stop = await next_event(connection, "stop")
        assert stop["streamSid"] == SID
        assert stop["stop"]["callSid"] == CALL
        await connection.wait_closed()
        assert connection.close_code == 1000
        assert caller.close_code == 1000
        await clock.advance(1)
        assert caller.played == 400


async def test_drop_closes_without_a_close_frame(server: Server) -> None:
    async with SimulatedCaller(server.url, stream_sid=SID, send_inbound=False) as caller:
        connection = await server.accept()
        await next_event(connection, "start")
        await caller.drop()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(connection.recv(), 5)
        assert connection.close_code == 1006
        assert caller.closed


async def test_the_server_closing_ends_the_call_on_the_phone(server: Server) -> None:
    clock = VirtualClock()
    async with SimulatedCaller(server.url, stream_sid=SID, clock=clock) as caller:
        connection = await server.accept()
        await connection.send(media(800))
        await until(lambda: caller.samples_received == 800)
        await clock.advance(0.025)
        await connection.close(1000)
        await asyncio.wait_for(caller.wait_closed(), 5)
        assert caller.close_code == 1000
        await clock.advance(1)
        assert caller.played == 200
        with pytest.raises(RuntimeError, match="call ended at 200"):
            await caller.wait_played(800)


async def mark_echo_delay(url: str, server: Server) -> float:
    """Seconds from sending 100 ms of audio and a mark to the echo's arrival at the server."""
    async with SimulatedCaller(url, stream_sid=SID, send_inbound=False):
        connection = await server.accept()
        await next_event(connection, "start")
        sent = time.monotonic()
        await connection.send(media(800))
        await connection.send(mark("m"))
        await next_event(connection, "mark")
        return time.monotonic() - sent


@pytest.mark.realtime
async def test_a_delayed_link_delays_pings_and_marks_both_ways(server: Server) -> None:
    direct = await mark_echo_delay(server.url, server)
    async with DelayedLink("127.0.0.1", server.port, delay_ms=80) as link:
        slow = await mark_echo_delay(link.url("/media"), server)
        async with SimulatedCaller(link.url(), send_inbound=False) as caller:
            connection = await server.accept()
            round_trip = await asyncio.wait_for(await connection.ping(), 5)
            assert 0.16 <= round_trip < 0.26, f"ping round trip {round_trip:.3f} s"
            await caller.hang_up()
            await connection.wait_closed()
            assert connection.close_code == 1000
    assert 0.13 < slow - direct < 0.23, f"direct {direct:.3f} s, over the link {slow:.3f} s"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", link.port)


async def test_a_delayed_link_carries_a_drop_as_a_lost_connection(server: Server) -> None:
    async with (
        DelayedLink("127.0.0.1", server.port, delay_ms=5) as link,
        SimulatedCaller(link.url(), send_inbound=False) as caller,
    ):
        connection = await server.accept()
        await caller.drop()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(read_to_the_end(connection), 5)
        assert connection.close_code == 1006


async def test_a_cancelled_delayed_link_closes_its_port_and_its_connections(
    server: Server,
) -> None:
    ready = asyncio.Event()
    ports: list[int] = []

    async def hold_a_link() -> None:
        async with DelayedLink("127.0.0.1", server.port, delay_ms=5) as link:
            ports.append(link.port)
            ready.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold_a_link())
    await ready.wait()
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
    writer.write(UPGRADE_REQUEST)
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 101")
    await server.accept()
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert holder.cancelled()
    # The link closed the client's side: reading ends (a TimeoutError here if it did not).
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 5)
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", ports[0])


async def test_a_delayed_link_to_nowhere_refuses_the_call() -> None:
    async with serve(lambda _: asyncio.sleep(0), "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
    async with DelayedLink("127.0.0.1", port, delay_ms=5) as link:
        with pytest.raises(InvalidMessage):
            async with SimulatedCaller(link.url()):
                pass


def test_a_delay_must_be_a_duration() -> None:
    with pytest.raises(ValueError, match="delay_ms"):
        DelayedLink("127.0.0.1", 1, delay_ms=-1)
