"""The phone server: accepts Twilio Media Streams calls and hands each one to a handler.

Who may connect: with an auth token, the WebSocket upgrade must carry a valid
``X-Twilio-Signature`` (checked with twilio's ``RequestValidator``), else HTTP 403. Without
one, anybody who reaches the port may connect, so the default host is loopback. Inbound
messages are bounded in size (``max_message_bytes``, close code 1009 past it) and calls in
number (``max_calls``, close code 1013, "try again later", past it). A handler's failure,
a bad message or a dropped call is logged with its call sid and touches no other call.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Generator
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...clock import Clock, MonotonicClock
from .auth import SignatureCheck
from .call import CLOSE_TIMEOUT_S, LOGGED_BAD_MESSAGES, PhoneCall
from .messages import CallProtocol, MediaStreamError, Start

__all__ = ["CallHandler", "PhoneServer", "serve_phone"]

logger = logging.getLogger("agent_playout")

CallHandler = Callable[[PhoneCall], Awaitable[None]]
"""Plays a call: called once its ``start`` arrived; the call ends when it returns."""

START_TIMEOUT_S = 10.0
"""How long a new connection may take to send ``connected`` and ``start``."""

HANDLER_EXIT_TIMEOUT_S = 3.0
"""How long a cancelled call handler may take to end when the server closes."""

MESSAGES_BEFORE_START = 20
"""Messages a connection may send before Twilio's ``start`` (Twilio sends one, ``connected``);
past them, or at a ``stop``, it is closed."""

_LOGGED_TEXT = 200
"""Characters of a client-chosen text (a URL, a Host header) a log line shows."""


class PhoneServer:
    """A running phone server; ``async with`` (or ``await aclose()``) ends it.

    Ending it stops accepting calls, hangs up each live one (close code 1001, going away: its
    item stops at the phone's position), then cancels the handlers.
    """

    def __init__(
        self,
        handler: CallHandler,
        *,
        host: str,
        port: int,
        auth_token: str | None,
        public_url: str | None,
        max_calls: int,
        max_message_bytes: int,
        mark_every_ms: int,
        queue_size_ms: int,
        clock: Clock | None,
    ) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be >= 1, got {max_calls}")
        if max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {max_message_bytes}")
        self._handler = handler
        self._host = host
        self._port = port
        self._check = None if auth_token is None else SignatureCheck(auth_token, public_url)
        self._max_calls = max_calls
        self._max_message_bytes = max_message_bytes
        self._mark_every_ms = mark_every_ms
        self._queue_size_ms = queue_size_ms
        self._clock: Clock = clock or MonotonicClock()
        self._server: Server | None = None
        self._connections = 0
        self._calls: dict[PhoneCall, asyncio.Future[None]] = {}
        self._lingering: dict[asyncio.Future[None], str] = {}
        """Handlers still running after their call ended (post-call work): no call slot."""
        self._closing = False

    async def start(self) -> PhoneServer:
        """Bind and start accepting calls."""
        if self._check is None and not _is_loopback(self._host):
            logger.warning(
                "accepting calls on %s without TWILIO_AUTH_TOKEN: anybody who reaches the"
                " port may connect",
                self._host,
            )
        self._server = await serve(
            self._serve,
            self._host,
            self._port,
            process_request=self._process_request,
            max_size=self._max_message_bytes,
            compression=None,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT_S,
        )
        return self

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the one chosen by the system for ``port=0``)."""
        assert self._server is not None, "the server has not started"
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}/"

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def aclose(self) -> None:
        """Stop accepting, hang up every live call, and wait until all are done.

        Every call is hung up at once (its item stops at the phone's position, with
        ``CallEndedError``), then every handler is cancelled, those still running after their
        call included; one that does not end within ``HANDLER_EXIT_TIMEOUT_S`` is logged and
        left behind, so shutting down never wedges.
        """
        if self._closing:
            return
        self._closing = True
        server = self._server
        if server is not None:
            server.close(close_connections=False)
        calls = list(self._calls.items())
        await asyncio.gather(
            *(call.hang_up("the server is shutting down", code=1001) for call, _ in calls),
            return_exceptions=True,
        )
        handlers = {task: call.call_sid for call, task in calls}
        handlers.update(self._lingering)
        for task in handlers:
            task.cancel()
        if handlers:
            _, stuck = await asyncio.wait(list(handlers), timeout=HANDLER_EXIT_TIMEOUT_S)
            for task in stuck:
                logger.error(
                    "call %s: the call handler did not end within %g s of being cancelled",
                    handlers[task],
                    HANDLER_EXIT_TIMEOUT_S,
                )
        if server is not None:
            server.close()
            await server.wait_closed()

    def __await__(self) -> Generator[Any, None, PhoneServer]:
        return self.start().__await__()

    async def __aenter__(self) -> PhoneServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # Each connection.

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse an upgrade without a valid signature (HTTP 403), before any call state."""
        if self._check is None or self._check.allows(request.path, request.headers):
            return None
        logger.warning(
            "refused a connection from %s to %s: no valid X-Twilio-Signature",
            _peer(connection),
            _shortened(self._check.url_for(request.path, request.headers)),
        )
        return connection.respond(HTTPStatus.FORBIDDEN, "invalid X-Twilio-Signature\n")

    async def _serve(self, connection: ServerConnection) -> None:
        if self._closing:
            await _refuse(connection, 1001, "the server is shutting down")
            return
        if self._connections >= self._max_calls:
            logger.warning(
                "refused a call from %s: %d calls at once is the limit",
                _peer(connection),
                self._max_calls,
            )
            await _refuse(connection, 1013, f"too many calls: this server takes {self._max_calls}")
            return
        self._connections += 1
        try:
            answered = await self._answer(connection)
            if answered is not None and self._closing:
                await _refuse(connection, 1001, "the server is shutting down")
            elif answered is not None:
                await self._play(
                    PhoneCall(
                        connection,
                        *answered,
                        clock=self._clock,
                        mark_every_ms=self._mark_every_ms,
                        queue_size_ms=self._queue_size_ms,
                    )
                )
        finally:
            self._connections -= 1

    async def _answer(self, connection: ServerConnection) -> tuple[CallProtocol, Start] | None:
        """Read until Twilio's ``start``; None (the socket closed) if it does not come."""
        protocol = CallProtocol()
        try:
            start = await asyncio.wait_for(_read_start(connection, protocol), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            start, why = None, f"no start event in {START_TIMEOUT_S:g} s"
        except ConnectionClosed:
            return None
        else:
            why = "a stop before start" if protocol.stopped else "no start event"
        if start is None:
            logger.warning("closed a connection from %s: %s", _peer(connection), why)
            await _refuse(connection, 1000 if protocol.stopped else 1008, why)
            return None
        return protocol, start

    async def _play(self, call: PhoneCall) -> None:
        """Run the handler for ``call``, until it returns or the call ends; hang up then.

        A handler that runs on after its call ended (post-call work, or code that does not
        notice) keeps running but no longer holds a call slot; ``aclose()`` cancels it.
        """
        logger.info("call %s: answered (stream %s)", call.call_sid, call.stream_sid)
        task: asyncio.Future[None] = asyncio.ensure_future(self._handler(call))
        task.add_done_callback(functools.partial(_log_handler_failure, call.call_sid))
        self._calls[call] = task
        ended = asyncio.ensure_future(call.wait_ended())
        try:
            await asyncio.wait([task, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            del self._calls[call]
            if not task.done():
                if self._closing:
                    task.cancel()
                else:
                    self._lingering[task] = call.call_sid
                    task.add_done_callback(self._lingering.pop)
            await call.aclose()


def serve_phone(
    handler: CallHandler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    auth_token: str | None = None,
    public_url: str | None = None,
    max_calls: int = 100,
    max_message_bytes: int = 64 * 1024,
    mark_every_ms: int = 100,
    queue_size_ms: int = 400,
    clock: Clock | None = None,
) -> PhoneServer:
    """Start a phone server at ``ws://host:port/`` that runs ``handler`` for each call.

    ``public_url`` is the address Twilio dials (``wss://example.com/``; the TwiML
    ``<Stream url=...>``): signatures are checked against it, else against the request's
    ``Host`` header. Use it as ``async with serve_phone(...) as server:``, or
    ``server = await serve_phone(...)`` and later ``await server.aclose()``.
    """
    return PhoneServer(
        handler,
        host=host,
        port=port,
        auth_token=auth_token,
        public_url=public_url,
        max_calls=max_calls,
        max_message_bytes=max_message_bytes,
        mark_every_ms=mark_every_ms,
        queue_size_ms=queue_size_ms,
        clock=clock,
    )


async def _read_start(connection: ServerConnection, protocol: CallProtocol) -> Start | None:
    """Read messages until ``start``; bad ones are logged (the first few) and skipped, as in
    a call. None once ``MESSAGES_BEFORE_START`` came without it, or a ``stop``."""
    refused = 0
    for _ in range(MESSAGES_BEFORE_START):
        message = await connection.recv()
        try:
            protocol.receive(message)
        except MediaStreamError as error:
            refused += 1
            if refused <= LOGGED_BAD_MESSAGES:
                logger.warning(
                    "refused a message before start from %s: %s", _peer(connection), error
                )
        if protocol.start is not None:
            return protocol.start
        if protocol.stopped:
            return None
    return None


async def _refuse(connection: ServerConnection, code: int, reason: str) -> None:
    """Close a connection that is not (or no longer) a call, dropping it if it does not answer."""
    try:
        await asyncio.wait_for(connection.close(code, reason), CLOSE_TIMEOUT_S)
    except asyncio.TimeoutError:
        connection.transport.abort()


def _log_handler_failure(call_sid: str, task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("call %s: the call handler failed", call_sid, exc_info=task.exception())


def _shortened(text: str) -> str:
    return text if len(text) <= _LOGGED_TEXT else text[:_LOGGED_TEXT] + "…"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return "an unknown address" if address is None else f"{address[0]}:{address[1]}"
