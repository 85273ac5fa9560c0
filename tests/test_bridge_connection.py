"""connect_realtime over real sockets on 127.0.0.1: the handshake, JSON both ways, and every
way a connection can fail or end."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from agent_playout.bridges.connection import (
    RealtimeConnection,
    RealtimeConnectionError,
    connect_realtime,
)

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(
    handler: Handler,
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> AsyncIterator[str]:
    """A websockets server on a free port of 127.0.0.1; yields its URL."""
    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as running:
        port = running.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def events_of(connection: RealtimeConnection) -> list[dict[str, Any]]:
    return [event async for event in connection]


async def test_headers_arrive_and_json_goes_both_ways() -> None:
    seen: dict[str, Any] = {}

    async def echo(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen["authorization"] = ws.request.headers.get("Authorization")
        seen["beta"] = ws.request.headers.get("OpenAI-Beta")
        seen["received"] = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "session.created", "event_id": "event_1"}))
        await ws.send(json.dumps({"type": "echo", "of": seen["received"]}))
        await ws.close(1000, "done here")

    async with server(echo) as url:
        connection = await connect_realtime(
            url, headers=[("Authorization", "Bearer sk-test"), ("OpenAI-Beta", "realtime=v1")]
        )
        await connection.send({"type": "response.create", "text": "héllo"})
        events = await events_of(connection)
    assert seen["authorization"] == "Bearer sk-test"
    assert seen["beta"] == "realtime=v1"
    assert seen["received"] == {"type": "response.create", "text": "héllo"}
    assert events == [
        {"type": "session.created", "event_id": "event_1"},
        {"type": "echo", "of": {"type": "response.create", "text": "héllo"}},
    ]
    assert connection.close_code == 1000
    assert connection.close_reason == "done here"


async def test_headers_may_be_a_mapping_and_send_fits_the_bridges_send() -> None:
    received: list[Any] = []

    async def record(ws: ServerConnection) -> None:
        assert ws.request is not None
        received.append(ws.request.headers.get("X-Key"))
        received.append(json.loads(await ws.recv()))

    async with server(record) as url, await connect_realtime(url, headers={"X-Key": "k"}) as conn:
        # The bridge calls send(event, heard); the heard value is the application's business.
        await conn.send({"type": "conversation.item.delete", "item_id": "item_1"}, object())
        assert await events_of(conn) == []
    assert received == ["k", {"type": "conversation.item.delete", "item_id": "item_1"}]


async def test_a_401_names_the_url_and_the_status() -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return ws.respond(HTTPStatus.UNAUTHORIZED, "Missing bearer token\n")

    async def never(ws: ServerConnection) -> None:
        raise AssertionError("the handshake was refused; no connection should open")

    async with server(never, refuse) as url:
        with pytest.raises(RealtimeConnectionError) as raised:
            await connect_realtime(url)
    error = raised.value
    assert isinstance(error, ConnectionError)
    assert error.status == 401
    assert url in str(error)
    assert "HTTP 401 Unauthorized" in str(error)
    assert "Missing bearer token" in str(error)


async def test_a_refused_port_names_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    with pytest.raises(RealtimeConnectionError) as raised:
        await connect_realtime(url)
    assert str(raised.value) == f"{url}: cannot connect (connection refused)"
    assert raised.value.status is None


@pytest.mark.parametrize("url", ["http://127.0.0.1/v1/realtime", "not a url"])
async def test_a_url_that_is_not_a_websocket_one_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(RealtimeConnectionError, match="not a WebSocket URL") as raised:
        await connect_realtime(url)
    assert str(raised.value).startswith(url)


@pytest.mark.realtime
async def test_a_server_that_never_answers_the_handshake_times_out() -> None:
    silent: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/"
    try:
        with pytest.raises(RealtimeConnectionError, match=r"timed out after 0\.2 s") as raised:
            await connect_realtime(url, open_timeout=0.2)
        assert url in str(raised.value)
    finally:
        for writer in silent:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def test_a_message_that_is_not_a_json_object_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk: list[str | bytes] = ["not json " + "x" * 200, "[1, 2]", '"text"', b"\x00\x01binary"]

    async def send_junk(ws: ServerConnection) -> None:
        for message in junk:
            await ws.send(message)
        await ws.send(json.dumps({"type": "response.done"}))

    caplog.set_level(logging.WARNING, logger="agent_playout")
    async with server(send_junk) as url, await connect_realtime(url) as connection:
        assert await events_of(connection) == [{"type": "response.done"}]
    lines = [r.getMessage() for r in caplog.records if r.name == "agent_playout"]
    assert len(lines) == len(junk)
    assert "not JSON" in lines[0]
    assert "x" * (80 - len("not json ")) in lines[0]
    assert "x" * (81 - len("not json ")) not in lines[0]
    assert "not a JSON object" in lines[1]
    assert "[1, 2]" in lines[1]
    assert "binary message of 8 bytes" in lines[3]


async def test_a_dropped_connection_ends_the_iteration_without_raising() -> None:
    async def drop(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "response.created"}))
        ws.transport.abort()

    async with server(drop) as url, await connect_realtime(url) as connection:
        assert await events_of(connection) == [{"type": "response.created"}]
        assert connection.close_code == 1006
        with pytest.raises(RealtimeConnectionError, match=r"cannot send 'response\.cancel'"):
            await connection.send({"type": "response.cancel"})


async def test_leaving_the_context_closes_normally() -> None:
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def wait_for_close(ws: ServerConnection) -> None:
        await ws.wait_closed()
        closed.set_result(ws.close_code)

    async with server(wait_for_close) as url:
        async with await connect_realtime(url) as connection:
            assert connection.close_code is None
        assert connection.close_code == 1000
        assert await asyncio.wait_for(closed, 5) == 1000


_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.mark.realtime
async def test_aclose_is_bounded_against_a_peer_that_never_answers_the_close() -> None:
    """A peer that completes the handshake, then reads and ignores everything."""

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _WEBSOCKET_GUID.encode()).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        while await reader.read(4096):
            pass
        writer.close()

    listener = await asyncio.start_server(deaf, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        connection = await connect_realtime(f"ws://127.0.0.1:{port}/")
        # The bound (2 s, then abort) is the subject; 10 s only keeps a regression from hanging.
        await asyncio.wait_for(connection.aclose(), 10)
        assert connection.close_code == 1006
        assert await asyncio.wait_for(events_of(connection), 1) == []
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize("module", ["connection", "simulator"])
def test_without_websockets_the_import_error_says_what_to_install(module: str) -> None:
    script = (
        "import sys; sys.modules['websockets'] = None\n"
        "try:\n"
        f"    import agent_playout.bridges.{module}\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'agent-playout[realtime]'" in result.stdout
