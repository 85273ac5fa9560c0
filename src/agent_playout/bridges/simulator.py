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
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
from ..core.resample import FormatConverter
from ..core.units import REALTIME_SAMPLE_RATE
from .formats import (
    AudioFormat,
    Dialect,
    UnsupportedFormatError,
    decode_audio,
    encode_audio,
    output_format_of,
)

logger = logging.getLogger(__name__)

_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_VAD_FRAME_MS = 20
_MIN_COMMIT_MS = 100  # the real API refuses to commit less than this

_NAMES: dict[Dialect, dict[str, str]] = {
    "ga": {
        "audio.delta": "response.output_audio.delta",
        "audio.done": "response.output_audio.done",
        "transcript.delta": "response.output_audio_transcript.delta",
        "transcript.done": "response.output_audio_transcript.done",
        "item.added": "conversation.item.added",
        "content": "output_audio",
    },
    "beta": {
        "audio.delta": "response.audio.delta",
        "audio.done": "response.audio.done",
        "transcript.delta": "response.audio_transcript.delta",
        "transcript.done": "response.audio_transcript.done",
        "item.added": "conversation.item.created",
        "content": "audio",
    },
}
"""The event names that differ between the dialects, and the assistant content's type."""

_OTHER_DIALECT_KEYS: dict[Dialect, tuple[str, ...]] = {
    "ga": ("output_audio_format", "input_audio_format", "turn_detection", "modalities", "voice"),
    "beta": ("audio", "output_modalities"),
}
"""Session keys of the other dialect, which the real servers refuse as unknown parameters."""


@dataclass(frozen=True)
class ScriptedPart:
    """One content part the model says: its transcript and its audio (24 kHz mono int16)."""

    text: str
    audio: Int16Array

    def __post_init__(self) -> None:
        if not isinstance(self.audio, np.ndarray) or self.audio.dtype != np.int16:
            raise TypeError("ScriptedPart.audio must be an int16 numpy array (24 kHz mono)")
        if self.audio.ndim != 1:
            raise ValueError(f"ScriptedPart.audio must be mono (1-D), got {self.audio.shape}")


@dataclass(frozen=True)
class ScriptedItem:
    """One assistant message of a response, with its content parts in order."""

    parts: tuple[ScriptedPart, ...]


@dataclass(frozen=True)
class ScriptedResponse:
    """What the model answers to one ``response.create`` (or one user turn): its items."""

    items: tuple[ScriptedItem, ...]

    @classmethod
    def spoken(cls, text: str, audio: Int16Array) -> ScriptedResponse:
        """One item with one part: ``text`` said as ``audio`` (24 kHz mono)."""
        return cls((ScriptedItem((ScriptedPart(text, audio),)),))


@dataclass
class _Item:
    id: str
    role: str
    parts: list[_Part] = field(default_factory=list)
    status: str = "in_progress"


@dataclass
class _Part:
    """A content part being (or once) sent: its audio in the output format, and how much
    of it and of its transcript went out."""

    item: _Item
    output_index: int
    content_index: int
    audio: Int16Array
    audio_format: AudioFormat
    pieces: list[str]
    sent_samples: int = 0
    sent_pieces: int = 0
    done: bool = False

    @classmethod
    def of(
        cls,
        scripted: ScriptedPart,
        audio_format: AudioFormat,
        item: _Item,
        output_index: int,
        content_index: int,
    ) -> _Part:
        """``scripted`` in ``audio_format``: G.711 is resampled to 8 kHz (soxr) first."""
        audio = scripted.audio
        if audio_format is AudioFormat.G711_ULAW:
            converter = FormatConverter(REALTIME_SAMPLE_RATE, 1, audio_format.sample_rate, 1)
            audio = converter.process(audio, last=True)
        pieces = _pieces(scripted.text)
        return cls(item, output_index, content_index, audio, audio_format, pieces)

    @property
    def sent_text(self) -> str:
        return "".join(self.pieces[: self.sent_pieces])


@dataclass
class _Response:
    id: str
    script: ScriptedResponse
    output: list[_Item] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class _Turn:
    """The user's input audio: where it is, and what the VAD has heard of it."""

    rate: int = REALTIME_SAMPLE_RATE
    total_samples: int = 0
    uncommitted_samples: int = 0
    pending: Int16Array = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    speaking: bool = False
    quiet_ms: int = 0
    loud_end_ms: int = 0
    item_id: str | None = None

    @property
    def now_ms(self) -> int:
        return self.total_samples * 1000 // self.rate


class _Connection:
    """One client's session: its settings, its conversation, its response and its turn."""

    def __init__(self, websocket: ServerConnection, session: dict[str, Any]) -> None:
        self.websocket = websocket
        self.session = session
        self.lock = asyncio.Lock()  # each step's events go out together, never interleaved
        self.items: dict[str, _Item] = {}
        self.last_item_id: str | None = None
        self.response: _Response | None = None
        self.turn = _Turn()


Event = dict[str, Any]


class _Cancelled(Exception):
    """The response a stream was sending is no longer the active one."""


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def _pieces(text: str) -> list[str]:
    """``text`` as transcript deltas the way the API sends them: a word with its leading
    space each; they join back to ``text`` exactly."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[len("".join(pieces)) :]
    if rest:
        pieces = [*pieces[:-1], pieces[-1] + rest] if pieces else [rest]
    return pieces


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, nested objects key by key, as the API merges a
    ``session.update``; a None, and a whole audio ``format`` object, replace."""
    merged = dict(base)
    for key, value in update.items():
        if key != "format" and isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


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
        if dialect not in _NAMES:
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
        self._names = _NAMES[dialect]
        self._connections: list[_Connection] = []
        self._items: dict[str, _Item] = {}
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
        connection = _Connection(websocket, self._initial_session())
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
            if connection.response is not None and connection.response.task is not None:
                connection.response.task.cancel()

    def _initial_session(self) -> dict[str, Any]:
        turn_detection = (
            {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 0,
                "silence_duration_ms": self.silence_ms,
                "create_response": True,
                "interrupt_response": True,
            }
            if self.server_vad
            else None
        )
        session_id = _new_id("sess")
        if self.dialect == "beta":
            return {
                "id": session_id,
                "object": "realtime.session",
                "model": "gpt-4o-realtime-preview",
                "modalities": ["audio", "text"],
                "instructions": "",
                "voice": "alloy",
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": None,
                "turn_detection": turn_detection,
            }
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": AudioFormat.PCM16.ga_format(),
                    "transcription": None,
                    "turn_detection": turn_detection,
                },
                "output": {"format": AudioFormat.PCM16.ga_format(), "voice": "alloy"},
            },
        }

    async def _emit(self, connection: _Connection, event: dict[str, Any]) -> None:
        """Send one server event (the caller holds ``connection.lock``)."""
        event = {"type": event["type"], "event_id": _new_id("event"), **event}
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
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event.get("event_id"),
        }
        await self._emit_all(connection, {"type": "error", "error": error})

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
        for key in _OTHER_DIALECT_KEYS[self.dialect]:
            if key in update:
                await self._refuse(
                    connection,
                    event,
                    "unknown_parameter",
                    f"Unknown parameter: 'session.{key}'.",
                    f"session.{key}",
                )
                return
        session = _merged(connection.session, update)
        try:
            output_format_of(session)
            rate = self._input_format(session).sample_rate
        except UnsupportedFormatError as error:
            await self._refuse(connection, event, "invalid_value", str(error), "session")
            return
        connection.session = session
        if rate != connection.turn.rate:
            connection.turn = _Turn(rate=rate)
        await self._emit_all(connection, {"type": "session.updated", "session": session})

    def _input_format(self, session: Mapping[str, Any]) -> AudioFormat:
        """The session's input format; it is named as the output one is, under ``input``."""
        if self.dialect == "beta":
            named = {"output_audio_format": session.get("input_audio_format", "pcm16")}
        else:
            audio = session.get("audio")
            form = audio.get("input", {}).get("format") if isinstance(audio, Mapping) else None
            named = {"audio": {"output": {"format": form}}}
        return output_format_of(named) or AudioFormat.PCM16

    def _turn_detection(self, connection: _Connection) -> Any:
        if self.dialect == "beta":
            return connection.session.get("turn_detection")
        return connection.session.get("audio", {}).get("input", {}).get("turn_detection")

    def _turn_setting(self, connection: _Connection, name: str) -> bool:
        """``create_response`` or ``interrupt_response`` of the session's turn detection
        (true when unset, or with no turn detection, for the explicit controls)."""
        detection = self._turn_detection(connection)
        return not isinstance(detection, Mapping) or detection.get(name) is not False

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
            samples = decode_audio(event.get("audio"), self._input_format(connection.session))
        except ValueError as error:
            await self._refuse(
                connection, event, "invalid_value", f"Invalid 'audio': {error}.", "audio"
            )
            return
        turn = connection.turn
        if self._turn_detection(connection) is None:
            turn.total_samples += samples.size
            turn.uncommitted_samples += samples.size
            return
        await self._listen(connection, samples)

    async def _on_commit(self, connection: _Connection, event: dict[str, Any]) -> None:
        turn = connection.turn
        if turn.uncommitted_samples * 1000 < _MIN_COMMIT_MS * turn.rate:
            have = turn.uncommitted_samples * 1000 / turn.rate
            await self._refuse(
                connection,
                event,
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected"
                f" at least {_MIN_COMMIT_MS}ms of audio, but buffer only has"
                f" {have:g}ms of audio.",
            )
            return
        await self._commit(connection, self.user_transcript)

    async def _on_clear(self, connection: _Connection, event: dict[str, Any]) -> None:
        connection.turn.uncommitted_samples = 0
        await self._emit_all(connection, {"type": "input_audio_buffer.cleared"})

    # -- the user's turn -----------------------------------------------------------------

    async def _listen(self, connection: _Connection, samples: Int16Array) -> None:
        """Server VAD over 20 ms frames: one over ``vad_threshold`` (RMS) starts speech,
        ``silence_ms`` under it ends the turn."""
        turn = connection.turn
        frame = turn.rate * _VAD_FRAME_MS // 1000
        audio = np.concatenate([turn.pending, samples])
        whole = audio.size - audio.size % frame
        turn.pending = audio[whole:]
        for start in range(0, whole, frame):
            chunk = audio[start : start + frame].astype(np.float64)
            loud = math.sqrt(float(np.mean(chunk * chunk))) > self.vad_threshold
            start_ms = turn.now_ms
            turn.total_samples += frame
            turn.uncommitted_samples += frame
            if loud:
                turn.quiet_ms = 0
                turn.loud_end_ms = turn.now_ms
                if not turn.speaking:
                    await self._speech_started(connection, start_ms)
            elif turn.speaking:
                turn.quiet_ms += _VAD_FRAME_MS
                if turn.quiet_ms >= self.silence_ms:
                    await self._speech_stopped(connection, turn.loud_end_ms, None)

    async def _speech_started(self, connection: _Connection, start_ms: int) -> None:
        turn = connection.turn
        turn.speaking = True
        turn.quiet_ms = 0
        turn.item_id = turn.item_id or _new_id("item")
        await self._emit_all(
            connection,
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start_ms,
                "item_id": turn.item_id,
            },
        )
        if self._turn_setting(connection, "interrupt_response"):
            await self._cancel(connection, "turn_detected")

    async def _speech_stopped(
        self, connection: _Connection, end_ms: int, transcript: str | None
    ) -> None:
        turn = connection.turn
        turn.speaking = False
        turn.quiet_ms = 0
        turn.item_id = turn.item_id or _new_id("item")
        await self._emit_all(
            connection,
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": end_ms,
                "item_id": turn.item_id,
            },
        )
        heard = self.user_transcript if transcript is None else transcript
        await self._commit(connection, heard)
        if (
            heard
            and connection.response is None
            and self._turn_setting(connection, "create_response")
        ):
            await self._start_response(connection)

    async def _commit(self, connection: _Connection, transcript: str) -> None:
        """Commit the input audio as a user item and transcribe it as ``transcript``."""
        turn = connection.turn
        item = _Item(turn.item_id or _new_id("item"), "user", status="completed")
        turn.item_id = None
        turn.uncommitted_samples = 0
        previous, connection.last_item_id = connection.last_item_id, item.id
        connection.items[item.id] = item
        user_item = {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        events: list[dict[str, Any]] = [
            {
                "type": "input_audio_buffer.committed",
                "item_id": item.id,
                "previous_item_id": previous,
            },
            {"type": self._names["item.added"], "previous_item_id": previous, "item": user_item},
        ]
        if transcript:
            events.append(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item.id,
                    "content_index": 0,
                    "delta": transcript,
                }
            )
        events.append(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.id,
                "content_index": 0,
                "transcript": transcript,
            }
        )
        await self._emit_all(connection, *events)

    # -- the model's response ------------------------------------------------------------

    async def _start_response(self, connection: _Connection) -> None:
        if self._script:
            script = self._script.pop(0)
        else:
            logger.info("simulated realtime server: no scripted response left; answering none")
            script = ScriptedResponse(())
        response = _Response(_new_id("resp"), script)
        connection.response = response
        created = {"type": "response.created", "response": self._response_object(response)}
        await self._emit_all(connection, created)
        response.task = asyncio.create_task(self._stream(connection, response))
        self._tasks.add(response.task)
        response.task.add_done_callback(self._tasks.discard)

    def _response_object(
        self, response: _Response, status: str = "in_progress", reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": None if reason is None else {"type": status, "reason": reason},
            "output": [self._item_object(item) for item in response.output],
        }

    def _item_object(self, item: _Item) -> dict[str, Any]:
        content = [
            {"type": self._names["content"], "transcript": part.sent_text} for part in item.parts
        ]
        return {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "status": item.status,
            "role": item.role,
            "content": content,
        }

    def _part_event(self, kind: str, response: _Response, part: _Part) -> dict[str, Any]:
        return {
            "type": self._names.get(kind, kind),
            "response_id": response.id,
            "item_id": part.item.id,
            "output_index": part.output_index,
            "content_index": part.content_index,
        }

    def _audio_delta(self, response: _Response, part: _Part) -> dict[str, Any]:
        """The part's next ``delta_ms`` of audio, counted as sent."""
        step = part.audio_format.sample_rate * self.delta_ms // 1000
        chunk = part.audio[part.sent_samples : part.sent_samples + step]
        part.sent_samples += chunk.size
        return {
            **self._part_event("audio.delta", response, part),
            "delta": encode_audio(chunk, part.audio_format),
        }

    def _transcript_deltas(self, response: _Response, part: _Part, due: int) -> list[Event]:
        events = []
        while part.sent_pieces < due:
            delta = part.pieces[part.sent_pieces]
            part.sent_pieces += 1
            events.append({**self._part_event("transcript.delta", response, part), "delta": delta})
        return events

    def _part_done(self, response: _Response, part: _Part) -> list[Event]:
        part.done = True
        transcript = part.sent_text
        return [
            self._part_event("audio.done", response, part),
            {**self._part_event("transcript.done", response, part), "transcript": transcript},
            {
                **self._part_event("response.content_part.done", response, part),
                "part": {"type": "audio", "transcript": transcript},
            },
        ]

    def _item_done(self, response: _Response, item: _Item, status: str) -> Event:
        item.status = status
        return {
            "type": "response.output_item.done",
            "response_id": response.id,
            "output_index": response.output.index(item),
            "item": self._item_object(item),
        }

    async def _step(
        self,
        connection: _Connection,
        response: _Response,
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

    async def _stream(self, connection: _Connection, response: _Response) -> None:
        """Send the response's items, parts and deltas, up to ``response.done``."""
        pause = self.delta_ms / 1000 / self.speed
        audio_format = output_format_of(connection.session) or AudioFormat.PCM16
        step = audio_format.sample_rate * self.delta_ms // 1000
        with contextlib.suppress(_Cancelled, ConnectionClosed):
            for output_index, scripted_item in enumerate(response.script.items):
                item = _Item(_new_id("item"), "assistant")
                await self._step(connection, response, self._add_item, connection, item)
                for content_index, scripted in enumerate(scripted_item.parts):
                    part = _Part.of(scripted, audio_format, item, output_index, content_index)
                    await self._step(connection, response, self._add_part, part)
                    chunks = -(-part.audio.size // step)
                    for chunk in range(chunks):
                        due = -(-(chunk + 1) * len(part.pieces) // chunks)
                        await self._step(connection, response, self._chunk, part, due)
                        await asyncio.sleep(pause)
                    await self._step(connection, response, self._end_part, part)
                await self._step(connection, response, self._end_item, item)
            await self._step(connection, response, self._finish, connection)

    def _chunk(self, response: _Response, part: _Part, due: int) -> list[Event]:
        """The transcript due by the end of the next audio delta, then that delta (the
        text runs ahead of the audio, as the real API's does)."""
        return [*self._transcript_deltas(response, part, due), self._audio_delta(response, part)]

    def _end_part(self, response: _Response, part: _Part) -> list[Event]:
        return [
            *self._transcript_deltas(response, part, len(part.pieces)),
            *self._part_done(response, part),
        ]

    def _end_item(self, response: _Response, item: _Item) -> list[Event]:
        return [self._item_done(response, item, "completed")]

    def _add_item(self, response: _Response, connection: _Connection, item: _Item) -> list[Event]:
        response.output.append(item)
        previous, connection.last_item_id = connection.last_item_id, item.id
        connection.items[item.id] = item
        self._items[item.id] = item
        return [
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": len(response.output) - 1,
                "item": self._item_object(item),
            },
            {
                "type": self._names["item.added"],
                "previous_item_id": previous,
                "item": self._item_object(item),
            },
        ]

    def _add_part(self, response: _Response, part: _Part) -> list[Event]:
        part.item.parts.append(part)
        return [
            {
                **self._part_event("response.content_part.added", response, part),
                "part": {"type": "audio", "transcript": ""},
            }
        ]

    def _finish(self, response: _Response, connection: _Connection) -> list[Event]:
        connection.response = None
        return [{"type": "response.done", "response": self._response_object(response, "completed")}]

    async def _cancel(self, connection: _Connection, reason: str) -> bool:
        """Cancel the active response as the real server does: the open part and item end,
        ``response.done`` says cancelled, and then up to ``late_deltas`` audio deltas of the
        open part, already in flight, arrive anyway. False when none was active."""
        async with connection.lock:
            response = connection.response
            if response is None:
                return False
            connection.response = None
            if response.task is not None:
                response.task.cancel()
            events: list[Event] = []
            late: list[Event] = []
            item = response.output[-1] if response.output else None
            if item is not None and item.status == "in_progress":
                part = item.parts[-1] if item.parts else None
                if part is not None and not part.done:
                    events += self._part_done(response, part)
                    while len(late) < self.late_deltas and part.sent_samples < part.audio.size:
                        late.append(self._audio_delta(response, part))
                events.append(self._item_done(response, item, "incomplete"))
            response_done = self._response_object(response, "cancelled", reason)
            events.append({"type": "response.done", "response": response_done})
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
