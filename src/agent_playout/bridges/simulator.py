"""A simulated OpenAI Realtime server on 127.0.0.1, to run a realtime client offline.

``SimulatedRealtimeServer`` is a real WebSocket server (``websockets``) that speaks the GA or the
beta event shapes as the real API does, awkward parts included: it streams each scripted
response faster than real time with the transcript interleaved, in the session's output format
(G.711 mu-law at 8 kHz when asked); it refuses what the real one refuses (a truncate at 0 ms or
past the audio sent, an unknown item, a cancel with nothing active, a second response) with an
``error`` event naming the client's ``event_id``; its server VAD hears the appended audio; and
after a cancel, a few audio deltas that were "in flight" still arrive. Tests drive it with
``speech_started()``/``speech_stopped()`` and read ``received`` (every client event) and
``sent``.

This module is the server and its connections; the events it sends are built in
``simulator_script`` (with the scripted responses) and the input audio's turns are heard in
``simulator_vad``.

It also serves as an offline endpoint for trying a client by hand::

    python -m agent_playout.bridges.simulator --port 8765 --text "Hello there." --text "Bye."
    agent-playout realtime --url ws://127.0.0.1:8765/v1/realtime

Each ``--text`` is one response, spoken as a tone of the text's length.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from .formats import AudioFormat, Dialect, UnsupportedFormatError, decode_audio, output_format_of
from .simulator_script import (
    NAMES,
    OTHER_DIALECT_KEYS,
    Event,
    Item,
    Part,
    ScriptedItem,
    ScriptedPart,
    ScriptedResponse,
    ServerEvents,
    error_event,
    initial_session,
    merged,
    new_id,
)
from .simulator_script import Response as ModelResponse
from .simulator_vad import Turn, input_format, turn_detection, turn_setting

__all__ = ["ScriptedItem", "ScriptedPart", "ScriptedResponse", "SimulatedRealtimeServer", "main"]

logger = logging.getLogger("agent_playout")

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class _Connection:
    """One client's session: its settings, its conversation, its response and its turn."""

    def __init__(self, websocket: ServerConnection, session: dict[str, Any]) -> None:
        self.websocket = websocket
        self.session = session
        self.lock = asyncio.Lock()  # each step's events go out together, never interleaved
        self.items: dict[str, Item] = {}
        self.last_item_id: str | None = None
        self.response: ModelResponse | None = None
        self.task: asyncio.Task[None] | None = None  # the stream of the latest response
        self.turn = Turn()


class _Cancelled(Exception):
    """The response a stream was sending is no longer the active one."""


class SimulatedRealtimeServer:
    """A fake OpenAI Realtime endpoint on ``host``: ``async with SimulatedRealtimeServer(
    responses) as server:`` then connect to ``server.url``.

    Each ``response.create`` (and each user turn the VAD ends) streams the next of
    ``responses``; when they run out, a response with no output. Audio goes out ``delta_ms``
    per delta at ``speed`` times real time. Timing is real time (``asyncio.sleep``): this is
    the remote service, not part of the engine under test.
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
    ) -> None:
        if dialect not in NAMES:
            raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
        if delta_ms <= 0 or speed <= 0:
            raise ValueError("delta_ms and speed must be positive")
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
        self.url = ""
        """``ws://HOST:PORT/v1/realtime`` once started."""
        self.received: list[dict[str, Any]] = []
        """Every client event that parsed, in arrival order, over all connections."""
        self.sent: list[dict[str, Any]] = []
        """Every server event sent, in order, over all connections."""
        self._script = list(responses)
        self._events = ServerEvents(dialect, delta_ms)
        self._connections: list[_Connection] = []
        self._items: dict[str, Item] = {}
        self._server: Server | None = None
        self._grew = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[_Connection, Event], Awaitable[None]]] = {
            "session.update": self._on_session_update,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "conversation.item.truncate": self._on_truncate,
            "conversation.item.delete": self._on_delete,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
        }

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
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
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
        item = self._items.get(item_id)
        if item is None or not 0 <= content_index < len(item.parts):
            raise KeyError(f"no audio was sent for item {item_id!r} part {content_index}")
        return item.parts[content_index].sent_samples

    async def _wait(
        self, log: list[dict[str, Any]], side: str, type: str, count: int, timeout: float
    ) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            while True:
                grew = self._grew
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

    def _record(self, log: list[dict[str, Any]], event: dict[str, Any]) -> None:
        log.append(event)
        self._grew.set()
        self._grew = asyncio.Event()

    # -- controls ----------------------------------------------------------------------

    async def speech_started(self) -> None:
        """The VAD hears the user start: ``speech_started``, then the active response (if
        any) is cancelled, then ``late_deltas`` deltas that were in flight."""
        connection = self._current()
        await self._speech_started(connection, connection.turn.now_ms)

    async def speech_stopped(self, transcript: str | None = None) -> None:
        """The VAD hears the user stop: ``speech_stopped``, the audio committed as a user
        item, its transcription (``transcript``, else ``user_transcript``), then the next
        response. A transcript of "" is noise: it is committed, but no response follows."""
        connection = self._current()
        await self._speech_stopped(connection, connection.turn.now_ms, transcript)

    async def send_raw(self, event: Mapping[str, Any] | str) -> None:
        """Send ``event`` as it is to the newest client: text verbatim, a mapping as JSON
        with no ``event_id`` added (a mapping is recorded in ``sent``)."""
        connection = self._current()
        async with connection.lock:
            if isinstance(event, str):
                await connection.websocket.send(event)
            else:
                self._record(self.sent, dict(event))
                await connection.websocket.send(json.dumps(dict(event)))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the newest client's connection with ``code`` and ``reason``."""
        await self._current().websocket.close(code, reason)

    async def drop(self) -> None:
        """Abort the newest client's TCP connection, with no closing handshake."""
        connection = self._current()
        connection.websocket.transport.abort()
        await connection.websocket.wait_closed()

    def _current(self) -> _Connection:
        if not self._connections:
            raise RuntimeError("no client is connected to the simulated realtime server")
        return self._connections[-1]

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
        session = initial_session(
            self.dialect, server_vad=self.server_vad, silence_ms=self.silence_ms
        )
        connection = _Connection(websocket, session)
        self._connections.append(connection)
        try:
            async with connection.lock:
                await self._emit(
                    connection, {"type": "session.created", "session": connection.session}
                )
            async for message in websocket:
                await self._handle_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            self._connections.remove(connection)
            if connection.response is not None and connection.task is not None:
                connection.task.cancel()

    async def _emit(self, connection: _Connection, event: dict[str, Any]) -> None:
        """Send one server event (the caller holds ``connection.lock``)."""
        event = {"type": event["type"], "event_id": new_id("event"), **event}
        self._record(self.sent, event)
        await connection.websocket.send(json.dumps(event))

    async def _emit_all(self, connection: _Connection, *events: dict[str, Any]) -> None:
        async with connection.lock:
            for event in events:
                await self._emit(connection, event)

    async def _refuse(
        self,
        connection: _Connection,
        client_event: Mapping[str, Any],
        code: str,
        message: str,
        param: str | None = None,
    ) -> None:
        await self._emit_all(connection, error_event(client_event, code, message, param))

    async def _handle_message(self, connection: _Connection, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            await self._refuse(connection, {}, "invalid_json", "The message is not a JSON object.")
            return
        self._record(self.received, event)
        kind = event.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._refuse(
                connection,
                event,
                "invalid_value",
                f"Invalid value: {kind!r}. Supported values are: "
                + ", ".join(f"'{name}'" for name in self._handlers),
                "type",
            )
            return
        await handler(connection, event)

    # -- client events -------------------------------------------------------------------

    async def _on_session_update(self, connection: _Connection, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, Mapping):
            await self._refuse(
                connection,
                event,
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                "session",
            )
            return
        for key in OTHER_DIALECT_KEYS[self.dialect]:
            if key in update:
                await self._refuse(
                    connection,
                    event,
                    "unknown_parameter",
                    f"Unknown parameter: 'session.{key}'.",
                    f"session.{key}",
                )
                return
        session = merged(connection.session, update)
        try:
            output_format_of(session)
            rate = input_format(self.dialect, session).sample_rate
        except UnsupportedFormatError as error:
            await self._refuse(connection, event, "invalid_value", str(error), "session")
            return
        connection.session = session
        if rate != connection.turn.rate:
            connection.turn = Turn(rate=rate)
        await self._emit_all(connection, {"type": "session.updated", "session": session})

    async def _on_response_create(self, connection: _Connection, event: dict[str, Any]) -> None:
        if connection.response is not None:
            await self._refuse(
                connection,
                event,
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: "
                f"{connection.response.id}. Wait until the response is finished before creating"
                " a new one.",
            )
            return
        await self._start_response(connection)

    async def _on_response_cancel(self, connection: _Connection, event: dict[str, Any]) -> None:
        if not await self._cancel(connection, "client_cancelled"):
            await self._refuse(
                connection,
                event,
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
            )

    async def _on_truncate(self, connection: _Connection, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        item = connection.items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            await self._refuse(
                connection,
                event,
                "item_not_found",
                f"Item with item_id not found: {item_id!r}.",
                "item_id",
            )
            return
        index = event.get("content_index", 0)
        if not isinstance(index, int) or not 0 <= index < len(item.parts):
            await self._refuse(
                connection,
                event,
                "invalid_value",
                f"Item {item.id} has no audio content at index {index!r}.",
                "content_index",
            )
            return
        part = item.parts[index]
        end_ms = event.get("audio_end_ms")
        sent_ms = part.sent_samples * 1000 / part.audio_format.sample_rate
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms <= 0:
            await self._refuse(
                connection,
                event,
                "invalid_value",
                f"Invalid 'audio_end_ms': {end_ms!r}; expected a positive integer.",
                "audio_end_ms",
            )
            return
        if end_ms * part.audio_format.sample_rate > part.sent_samples * 1000:
            await self._refuse(
                connection,
                event,
                "invalid_value",
                f"Audio content of {sent_ms:g}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
            )
            return
        await self._emit_all(
            connection,
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": index,
                "audio_end_ms": end_ms,
            },
        )

    async def _on_delete(self, connection: _Connection, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or connection.items.pop(item_id, None) is None:
            await self._refuse(
                connection,
                event,
                "item_not_found",
                f"Item with item_id not found: {item_id!r}.",
                "item_id",
            )
            return
        await self._emit_all(connection, {"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_append(self, connection: _Connection, event: dict[str, Any]) -> None:
        try:
            samples = decode_audio(
                event.get("audio"), input_format(self.dialect, connection.session)
            )
        except ValueError as error:
            await self._refuse(
                connection, event, "invalid_value", f"Invalid 'audio': {error}.", "audio"
            )
            return
        if turn_detection(self.dialect, connection.session) is None:
            connection.turn.skip(samples)
            return
        await self._listen(connection, samples)

    async def _on_commit(self, connection: _Connection, event: dict[str, Any]) -> None:
        refusal = connection.turn.commit_refusal()
        if refusal is not None:
            await self._refuse(connection, event, "input_audio_buffer_commit_empty", refusal)
            return
        await self._commit(connection, self.user_transcript)

    async def _on_clear(self, connection: _Connection, event: dict[str, Any]) -> None:
        connection.turn.uncommitted_samples = 0
        await self._emit_all(connection, {"type": "input_audio_buffer.cleared"})

    # -- the user's turn -----------------------------------------------------------------

    async def _listen(self, connection: _Connection, samples: Int16Array) -> None:
        """Run the server VAD over appended audio, sending what each change calls for."""
        turn = connection.turn
        for change, ms in turn.hear(samples, self.vad_threshold, self.silence_ms):
            if change == "started":
                await self._speech_started(connection, ms)
            else:
                await self._speech_stopped(connection, ms, None)

    async def _speech_started(self, connection: _Connection, start_ms: int) -> None:
        item_id = connection.turn.start_speaking()
        await self._emit_all(
            connection,
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start_ms,
                "item_id": item_id,
            },
        )
        if turn_setting(self.dialect, connection.session, "interrupt_response"):
            await self._cancel(connection, "turn_detected")

    async def _speech_stopped(
        self, connection: _Connection, end_ms: int, transcript: str | None
    ) -> None:
        item_id = connection.turn.stop_speaking()
        await self._emit_all(
            connection,
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": end_ms,
                "item_id": item_id,
            },
        )
        heard = self.user_transcript if transcript is None else transcript
        await self._commit(connection, heard)
        if (
            heard
            and connection.response is None
            and turn_setting(self.dialect, connection.session, "create_response")
        ):
            await self._start_response(connection)

    async def _commit(self, connection: _Connection, transcript: str) -> None:
        """Commit the input audio as a user item and transcribe it as ``transcript``."""
        item = Item(connection.turn.commit(), "user", status="completed")
        previous, connection.last_item_id = connection.last_item_id, item.id
        connection.items[item.id] = item
        await self._emit_all(connection, *self._events.user_turn(item.id, previous, transcript))

    # -- the model's response ------------------------------------------------------------

    async def _start_response(self, connection: _Connection) -> None:
        if self._script:
            script = self._script.pop(0)
        else:
            logger.info("simulated realtime server: no scripted response left; answering none")
            script = ScriptedResponse(())
        response = ModelResponse(new_id("resp"), script)
        connection.response = response
        created = {"type": "response.created", "response": self._events.response_object(response)}
        await self._emit_all(connection, created)
        connection.task = asyncio.create_task(self._stream(connection, response))
        self._tasks.add(connection.task)
        connection.task.add_done_callback(self._tasks.discard)

    async def _step(
        self,
        connection: _Connection,
        response: ModelResponse,
        build: Callable[..., list[Event]],
        *args: Any,
    ) -> None:
        """Build (``build(response, *args)``) and send one step's events while the response
        is still the active one; after a cancel, end the stream (``_Cancelled``)."""
        async with connection.lock:
            if connection.response is not response:
                raise _Cancelled
            for event in build(response, *args):
                await self._emit(connection, event)

    async def _stream(self, connection: _Connection, response: ModelResponse) -> None:
        """Send the response's items, parts and deltas, up to ``response.done``."""
        pause = self.delta_ms / 1000 / self.speed
        audio_format = output_format_of(connection.session) or AudioFormat.PCM16
        step = audio_format.sample_rate * self.delta_ms // 1000
        events = self._events
        with contextlib.suppress(_Cancelled, ConnectionClosed):
            for output_index, scripted_item in enumerate(response.script.items):
                item = Item(new_id("item"), "assistant")
                await self._step(connection, response, self._add_item, connection, item)
                for content_index, scripted in enumerate(scripted_item.parts):
                    part = Part.of(scripted, audio_format, item, output_index, content_index)
                    await self._step(connection, response, events.part_added, part)
                    chunks = -(-part.audio.size // step)
                    for chunk in range(chunks):
                        due = -(-(chunk + 1) * len(part.pieces) // chunks)
                        await self._step(connection, response, events.chunk, part, due)
                        await asyncio.sleep(pause)
                    await self._step(connection, response, events.end_part, part)
                await self._step(connection, response, self._end_item, item)
            await self._step(connection, response, self._finish, connection)

    def _add_item(
        self, response: ModelResponse, connection: _Connection, item: Item
    ) -> list[Event]:
        response.output.append(item)
        previous, connection.last_item_id = connection.last_item_id, item.id
        connection.items[item.id] = item
        self._items[item.id] = item
        return self._events.item_added(response, item, previous)

    def _end_item(self, response: ModelResponse, item: Item) -> list[Event]:
        return [self._events.item_done(response, item, "completed")]

    def _finish(self, response: ModelResponse, connection: _Connection) -> list[Event]:
        connection.response = None
        return [self._events.response_done(response, "completed")]

    async def _cancel(self, connection: _Connection, reason: str) -> bool:
        """Cancel the active response as the real server does: the open part and item end,
        ``response.done`` says cancelled, and then up to ``late_deltas`` audio deltas of the
        open part, already in flight, arrive anyway. False when none was active."""
        async with connection.lock:
            response = connection.response
            if response is None:
                return False
            connection.response = None
            if connection.task is not None:
                connection.task.cancel()
            events: list[Event] = []
            late: list[Event] = []
            item = response.output[-1] if response.output else None
            if item is not None and item.status == "in_progress":
                part = item.parts[-1] if item.parts else None
                if part is not None and not part.done:
                    events += self._events.part_done(response, part)
                    while len(late) < self.late_deltas and part.sent_samples < part.audio.size:
                        late.append(self._events.audio_delta(response, part))
                events.append(self._events.item_done(response, item, "incomplete"))
            events.append(self._events.response_done(response, "cancelled", reason))
            for event in [*events, *late]:
                await self._emit(connection, event)
        return True


def _tone(text: str) -> Int16Array:
    """A soft 220 Hz tone about as long as ``text`` takes to say (65 ms a character)."""
    samples = max(1, len(text)) * 65 * REALTIME_SAMPLE_RATE // 1000
    t = np.arange(samples) / REALTIME_SAMPLE_RATE
    return (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulated endpoint until interrupted (``python -m`` of this module)."""
    parser = argparse.ArgumentParser(description="A simulated OpenAI Realtime server, offline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dialect", choices=["ga", "beta"], default="ga")
    parser.add_argument("--speed", type=float, default=8.0, help="times real time (8)")
    parser.add_argument("--text", action="append", help="one response's words (repeatable)")
    args = parser.parse_args(argv)
    texts = args.text or ["Hello, this is a simulated realtime model.", "Goodbye."]
    responses = [ScriptedResponse.spoken(text, _tone(text)) for text in texts]

    async def run() -> None:
        server = SimulatedRealtimeServer(
            responses, dialect=args.dialect, host=args.host, port=args.port, speed=args.speed
        )
        await server.start()
        print(server.url, flush=True)
        try:
            await server.serve_forever()
        finally:
            await server.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
