"""A simulated OpenAI Realtime server on 127.0.0.1, to run a realtime client offline.

``SimulatedRealtimeServer`` is a real WebSocket server (``websockets``) that speaks the GA or the
beta event shapes as the real API does, awkward parts included: it streams each scripted
response faster than real time with the transcript interleaved, in the session's output format
(G.711 mu-law at 8 kHz when asked); it refuses what the real one refuses (a truncate at 0 ms or
past the audio sent, an unknown item, a cancel with nothing active, a second response) with an
``error`` event naming the client's ``event_id``; its server VAD hears the appended audio; and
after a cancel, a few audio deltas that were "in flight" still arrive, before the cancelled
response's done events. Tests drive it with ``speech_started()``/``speech_stopped()`` and
read ``received`` (every client event) and ``sent``.

This module is the server: its settings, what the tests read and drive, and the listener.
Each client's conversation is a ``simulator_conversation.Conversation``; the events it sends
are built in ``simulator_script`` (with the scripted responses), and ``simulator_vad`` hears
the input audio's turns.

It also serves as an offline endpoint for trying a client by hand::

    python -m agent_playout.bridges.simulator --port 8765 --text "Hello there." --text "Bye."
    agent-playout realtime --url ws://127.0.0.1:8765/v1/realtime

Each ``--text`` is one response, spoken as a tone of the text's length; every connection
hears the script from its first response. ``--barge-in-after SECONDS`` has the user cut in
that long after each response's audio begins (``speech_started``, then ``speech_stopped``
half a second later, which asks for the next response); ``--close-after`` closes the
connection (1000) once the script is spoken. SIGINT or SIGTERM closes every connection with
1001 and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Coroutine, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any

import numpy as np

try:
    from websockets.asyncio.server import Server, ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
except ImportError as _missing:  # pragma: no cover - as in .connection, tested there
    raise ImportError(
        f"agent_playout.bridges.simulator needs the websockets package ({_missing}):"
        " pip install 'agent-playout[realtime]'"
    ) from _missing

from ..core.frames import Int16Array
from ..core.units import REALTIME_SAMPLE_RATE
from .formats import Dialect
from .simulator_conversation import Conversation, Shared
from .simulator_script import NAMES, ScriptedItem, ScriptedPart, ScriptedResponse, ServerEvents

__all__ = ["ScriptedItem", "ScriptedPart", "ScriptedResponse", "SimulatedRealtimeServer", "main"]

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_USER_TURN_S = 0.5
"""How long the user a barge-in makes up speaks, and the wait before ``close_after`` closes."""


class SimulatedRealtimeServer:
    """A fake OpenAI Realtime endpoint on ``host``: ``async with SimulatedRealtimeServer(
    responses) as server:`` then connect to ``server.url``.

    Each ``response.create`` (and each user turn the VAD ends) streams the next of
    ``responses``; when they run out, a response with no output. Audio goes out ``delta_ms``
    per delta at ``speed`` times real time. Timing is real time (``asyncio.sleep``): this is
    the remote service, not part of the engine under test. With ``script_per_connection``
    each connection starts from the first response instead of taking the ones left.
    ``barge_in_after`` seconds after each response's first audio delta, the user cuts in (as
    ``speech_started()``, then ``speech_stopped()`` half a second later while responses are
    left); ``close_after`` closes a connection (1000) once its script is spent, its response
    done and its barge-ins made.
    """

    def __init__(
        self,
        responses: Sequence[ScriptedResponse],
        *,
        dialect: Dialect = "ga",
        host: str = "127.0.0.1",
        port: int = 0,
        delta_ms: int = 100,
        speed: float = 8.0,
        late_deltas: int = 1,
        server_vad: bool = True,
        vad_threshold: int = 500,
        silence_ms: int = 500,
        user_transcript: str = "hello",
        require_bearer: str | None = None,
        script_per_connection: bool = False,
        barge_in_after: float | None = None,
        close_after: bool = False,
    ) -> None:
        if dialect not in NAMES:
            raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
        if delta_ms <= 0 or speed <= 0:
            raise ValueError("delta_ms and speed must be positive")
        if barge_in_after is not None and barge_in_after < 0:
            raise ValueError(f"barge_in_after must be at least 0, got {barge_in_after!r}")
        self.dialect: Dialect = dialect
        self.host = host
        self.port = port
        self.delta_ms = delta_ms
        self.speed = speed
        self.late_deltas = late_deltas
        self.server_vad = server_vad
        self.vad_threshold = vad_threshold
        self.silence_ms = silence_ms
        self.user_transcript = user_transcript
        self.require_bearer = require_bearer
        self.script_per_connection = script_per_connection
        self.barge_in_after = barge_in_after
        self.close_after = close_after
        self.url = ""
        """``ws://HOST:PORT/v1/realtime`` once started."""
        self._shared = Shared(list(responses), ServerEvents(dialect, delta_ms))
        self.received: list[dict[str, Any]] = self._shared.received
        """Every client event that parsed, in arrival order, over all connections."""
        self.sent: list[dict[str, Any]] = self._shared.sent
        """Every server event sent, in order, over all connections."""
        self._connections: list[Conversation] = []
        self._barging: dict[Conversation, int] = {}
        """The barge-ins each conversation has still to make."""
        self._server: Server | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host``:``port`` (0 picks a free port) and set ``url``."""
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            process_request=self._check_bearer,
            max_size=_MAX_MESSAGE_BYTES,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{port}/v1/realtime"

    async def aclose(self) -> None:
        """Stop every response, close every connection (1001) and stop listening."""
        tasks = self._shared.tasks
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Run until cancelled (the standalone endpoint)."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> SimulatedRealtimeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what the tests read -----------------------------------------------------------

    async def wait_for(self, type: str, *, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        """The ``count``-th client event of ``type``, once it has arrived."""
        return await self._wait(self.received, "client", type, count, timeout)

    async def wait_sent(
        self, type: str, *, count: int = 1, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The ``count``-th server event of ``type``, once it has been sent."""
        return await self._wait(self.sent, "server", type, count, timeout)

    def audio_sent_samples(self, item_id: str, content_index: int = 0) -> int:
        """Samples of the part's audio sent so far, at the item's rate (late deltas too)."""
        item = self._shared.items.get(item_id)
        if item is None or not 0 <= content_index < len(item.parts):
            raise KeyError(f"no audio was sent for item {item_id!r} part {content_index}")
        return item.parts[content_index].sent_samples

    async def _wait(
        self, log: list[dict[str, Any]], side: str, type: str, count: int, timeout: float
    ) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            while True:
                grew = self._shared.grew
                matches = [event for event in log if event.get("type") == type]
                if len(matches) >= count:
                    return matches[count - 1]
                await grew.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            seen = [event.get("type") for event in log]
            raise TimeoutError(
                f"no {side} event {type!r} #{count} within {timeout:g} s; {side} events: {seen}"
            ) from None

    # -- controls ----------------------------------------------------------------------

    async def speech_started(self) -> None:
        """The VAD hears the user start: ``speech_started``, then the active response (if
        any) is cancelled: ``late_deltas`` deltas that were in flight, then its done events."""
        conversation = self._current()
        await conversation.speech_started(conversation.turn.now_ms)

    async def speech_stopped(self, transcript: str | None = None) -> None:
        """The VAD hears the user stop: ``speech_stopped``, the audio committed as a user
        item, its transcription (``transcript``, else ``user_transcript``), then the next
        response. A transcript of "" is noise: it is committed, but no response follows.
        Under 100 ms of input audio is refused as a client's commit is (an ``error``, no item),
        unless the client never sent input audio (the control then stands for the speech)."""
        conversation = self._current()
        await conversation.speech_stopped(conversation.turn.now_ms, transcript)

    async def send_raw(self, event: Mapping[str, Any] | str) -> None:
        """Send ``event`` as it is to the newest client: text verbatim, a mapping as JSON
        with no ``event_id`` added (a mapping is recorded in ``sent``)."""
        await self._current().send_raw(event)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the newest client's connection with ``code`` and ``reason``."""
        await self._current().websocket.close(code, reason)

    async def drop(self) -> None:
        """Abort the newest client's TCP connection, with no closing handshake."""
        websocket = self._current().websocket
        websocket.transport.abort()
        await websocket.wait_closed()

    def _current(self) -> Conversation:
        if not self._connections:
            raise RuntimeError("no client is connected to the simulated realtime server")
        return self._connections[-1]

    # -- what the conversations report --------------------------------------------------

    def audio_began(self, conversation: Conversation) -> None:
        """With ``barge_in_after``, have the user cut in that much later."""
        if self.barge_in_after is not None:
            self._barging[conversation] = self._barging.get(conversation, 0) + 1
            self._run(self._barge_in(conversation, self.barge_in_after))

    def response_ended(self, conversation: Conversation) -> None:
        """With ``close_after``, close a connection whose script is spent and spoken."""
        if self._spoken(conversation):
            self._run(self._close_when_spoken(conversation))

    def _spoken(self, conversation: Conversation) -> bool:
        return (
            self.close_after
            and not conversation.script
            and conversation.response is None
            and conversation not in self._barging
        )

    def _run(self, step: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(step)
        self._shared.tasks.add(task)
        task.add_done_callback(self._shared.tasks.discard)

    async def _barge_in(self, conversation: Conversation, after: float) -> None:
        """The user cuts in as the server VAD hears it, whether the response is still being
        sent or only still playing; the turn's end asks for the next scripted response."""
        try:
            with contextlib.suppress(ConnectionClosed):
                await asyncio.sleep(after)
                await conversation.speech_started(conversation.turn.now_ms)
                if conversation.script:
                    await asyncio.sleep(_USER_TURN_S)
                    await conversation.speech_stopped(conversation.turn.now_ms, None)
        finally:
            self._barging[conversation] -= 1
            if not self._barging[conversation]:
                del self._barging[conversation]
        self.response_ended(conversation)

    async def _close_when_spoken(self, conversation: Conversation) -> None:
        """Close after a short wait (for the client's last events, a truncation perhaps),
        unless the client asked for another response meanwhile."""
        await asyncio.sleep(_USER_TURN_S)
        if self._spoken(conversation):
            await conversation.websocket.close(1000, "the script has been spoken")

    # -- the connection ------------------------------------------------------------------

    def _check_bearer(self, websocket: ServerConnection, request: Request) -> Response | None:
        if self.require_bearer is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.require_bearer}":
            return None
        body = {
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": "Missing or incorrect bearer token in the Authorization header.",
            }
        }
        return websocket.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body))

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        conversation = Conversation(websocket, self, self._shared)
        self._connections.append(conversation)
        try:
            await conversation.serve()
        finally:
            self._connections.remove(conversation)


def _tone(text: str) -> Int16Array:
    """A soft 220 Hz tone about as long as ``text`` takes to say (65 ms a character)."""
    samples = max(1, len(text)) * 65 * REALTIME_SAMPLE_RATE // 1000
    t = np.arange(samples) / REALTIME_SAMPLE_RATE
    return (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def _plan(args: argparse.Namespace, texts: Sequence[str]) -> list[str]:
    """What the standalone server will do, one line each, for the user to read on start."""
    plural = "" if len(texts) == 1 else "s"
    lines = [f"{len(texts)} scripted response{plural}; each connection hears them from the first:"]
    lines += [f"  {number}. {text!r}" for number, text in enumerate(texts, 1)]
    if args.barge_in_after is None:
        lines.append("no barge-in (--barge-in-after SECONDS to cut in on each response)")
    else:
        lines.append(
            f"barge-in: speech_started {args.barge_in_after:g} s after each response's first"
            f" audio delta, speech_stopped {_USER_TURN_S:g} s later"
        )
    if args.close_after and len(texts) > 1 and args.barge_in_after is None:
        lines.append(
            "closes each connection (1000) once its script is spoken; each response after"
            " the first needs a response.create or a user turn from the client"
        )
    elif args.close_after:
        lines.append("closes each connection (1000) once its script is spoken")
    else:
        lines.append("keeps each connection open (--close-after to close once spoken)")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulated endpoint until SIGINT or SIGTERM (``python -m`` of this module);
    print its URL, then what it will do."""
    parser = argparse.ArgumentParser(description="A simulated OpenAI Realtime server, offline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dialect", choices=["ga", "beta"], default="ga")
    parser.add_argument("--speed", type=float, default=8.0, help="times real time (8)")
    parser.add_argument("--text", action="append", help="one response's words (repeatable)")
    parser.add_argument(
        "--barge-in-after",
        type=float,
        metavar="SECONDS",
        help="the user cuts in this long after each response's audio begins (default: never)",
    )
    parser.add_argument(
        "--close-after",
        action="store_true",
        help="close each connection (1000) once the script is spoken (default: stay open)",
    )
    args = parser.parse_args(argv)
    if args.barge_in_after is not None and args.barge_in_after < 0:
        parser.error("--barge-in-after must be at least 0 seconds")
    texts = args.text or ["Hello, this is a simulated realtime model.", "Goodbye."]
    responses = [ScriptedResponse.spoken(text, _tone(text)) for text in texts]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        server = SimulatedRealtimeServer(
            responses,
            dialect=args.dialect,
            host=args.host,
            port=args.port,
            speed=args.speed,
            script_per_connection=True,
            barge_in_after=args.barge_in_after,
            close_after=args.close_after,
        )
        await server.start()
        print(server.url, *_plan(args, texts), sep="\n", flush=True)
        try:
            await stop.wait()
        finally:
            await server.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
