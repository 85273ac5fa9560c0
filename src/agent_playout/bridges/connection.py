"""A WebSocket connection to a realtime model that speaks JSON events (extra ``[realtime]``).

``connect_realtime(url, headers=...)`` opens it, or raises ``RealtimeConnectionError`` saying
which URL failed and why (the HTTP status of a refused handshake, a refused port, a timeout).
The ``RealtimeConnection`` yields each server event as a dict and sends client events; its
``send`` fits ``RealtimeBridge``'s, so ``RealtimeBridge(playout, connection.send)`` and
``await bridge.run(connection)`` are the whole wiring.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"agent_playout.bridges.connection needs the websockets package ({_missing}):"
        " pip install 'agent-playout[realtime]'"
    ) from _missing

logger = logging.getLogger("agent_playout")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest server message accepted: an audio delta of a few seconds is over 1 MiB."""

CLOSE_TIMEOUT_S = 2.0
"""How long ``aclose`` waits for the peer's half of the closing handshake before aborting."""

_EXCERPT_CHARS = 80
_BODY_CHARS = 200
_REFUSED_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ENOTCONN})


class RealtimeConnectionError(ConnectionError):
    """The connection could not be opened, or is gone: the message names the URL and the
    cause. ``status`` is the HTTP status of a refused handshake (401 for a bad key), else
    None."""

    def __init__(self, url: str, cause: str, *, status: int | None = None) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.status = status


async def connect_realtime(
    url: str,
    *,
    headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
    open_timeout: float = 10.0,
) -> RealtimeConnection:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``) sending ``headers`` with the
    handshake (``Authorization: Bearer ...`` for OpenAI), within ``open_timeout`` seconds."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    try:
        websocket = await connect(
            url,
            additional_headers=pairs,
            open_timeout=open_timeout,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=MAX_MESSAGE_BYTES,
        )
    except InvalidURI as error:
        raise RealtimeConnectionError(url, f"not a WebSocket URL ({error.msg})") from error
    except InvalidStatus as error:
        response = error.response
        cause = f"the server refused the connection: HTTP {response.status_code}"
        if response.reason_phrase:
            cause += f" {response.reason_phrase}"
        body = response.body.decode("utf-8", "replace").strip() if response.body else ""
        if body:
            cause += f": {body[:_BODY_CHARS]}"
        raise RealtimeConnectionError(url, cause, status=response.status_code) from error
    except (TimeoutError, asyncio.TimeoutError) as error:
        raise RealtimeConnectionError(
            url, f"timed out after {open_timeout:g} s opening the connection"
        ) from error
    except InvalidHandshake as error:
        raise RealtimeConnectionError(url, f"the WebSocket handshake failed ({error})") from error
    except OSError as error:
        raise RealtimeConnectionError(url, f"cannot connect ({_os_cause(error)})") from error
    return RealtimeConnection(url, websocket)


class RealtimeConnection:
    """An open connection: iterate it for server events, ``send`` client events.

    Iteration ends, without raising, when the connection closes for any reason; then
    ``close_code`` and ``close_reason`` say how (1000 normal, 1006 dropped). A message that
    is not a JSON object is logged and skipped.
    """

    def __init__(self, url: str, websocket: ClientConnection) -> None:
        self.url = url
        self._websocket = websocket

    @property
    def close_code(self) -> int | None:
        """The close code once the connection closed (1006 when it dropped), else None."""
        return self._websocket.close_code

    @property
    def close_reason(self) -> str:
        """The peer's close reason, "" when none was given or the connection is open."""
        return self._websocket.close_reason or ""

    async def send(self, event: Mapping[str, Any], heard: object = None) -> None:
        """Send ``event`` as one JSON text message; ``heard`` is ignored (it is there so this
        fits the bridge's ``send``). Raises ``RealtimeConnectionError`` once closed."""
        text = json.dumps(dict(event), separators=(",", ":"), ensure_ascii=False)
        try:
            await self._websocket.send(text)
        except ConnectionClosed as error:
            raise RealtimeConnectionError(
                self.url, f"cannot send {event.get('type', 'the event')!r}: {error}"
            ) from error

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                message = await self._websocket.recv()
            except ConnectionClosed:
                return
            event = _parsed(message)
            if event is not None:
                yield event

    async def aclose(self) -> None:
        """Close the connection: the closing handshake, or after ``CLOSE_TIMEOUT_S`` an abort
        of the TCP connection when the peer does not answer."""
        try:
            await asyncio.wait_for(self._websocket.close(), CLOSE_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError):
            self._websocket.transport.abort()
            await self._websocket.wait_closed()

    async def __aenter__(self) -> RealtimeConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _os_cause(error: OSError) -> str:
    """Why the socket failed, in words: "connection refused" when it (or its cause) was a
    refusal, whose own text only names the address; else the error's text."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno in _REFUSED_ERRNOS
        ):
            return "connection refused"
        cause = cause.__cause__
    return str(error.strerror or error)


def _parsed(message: str | bytes) -> dict[str, Any] | None:
    """The event in ``message``, or None (logged once) when it is not a JSON object."""
    if isinstance(message, bytes):
        logger.warning(
            "realtime: skipped a binary message of %d bytes (events are JSON text): %r",
            len(message),
            message[:_EXCERPT_CHARS],
        )
        return None
    try:
        event = json.loads(message)
    except ValueError as error:
        logger.warning(
            "realtime: skipped a message that is not JSON (%s): %r",
            error,
            message[:_EXCERPT_CHARS],
        )
        return None
    if not isinstance(event, dict):
        logger.warning(
            "realtime: skipped a message that is not a JSON object: %r", message[:_EXCERPT_CHARS]
        )
        return None
    return event
