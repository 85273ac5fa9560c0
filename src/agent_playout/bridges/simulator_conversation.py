"""One client's conversation with the simulated realtime server, over its WebSocket.

A ``Conversation`` holds the client's session, its items, its active response and its input
audio's turn; it answers each client event as the real API does (or refuses it with an
``error`` naming the client's ``event_id``), streams the scripted responses and cancels them.
The events are built by ``simulator_script``; the VAD is ``simulator_vad``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..core.frames import Int16Array
from .formats import AudioFormat, Dialect, UnsupportedFormatError, decode_audio, output_format_of
from .simulator_script import (
    OTHER_DIALECT_KEYS,
    Event,
    Item,
    Part,
    ScriptedResponse,
    ServerEvents,
    error_event,
    initial_session,
    merged,
    new_id,
    truncate_refusal,
)
from .simulator_script import Response as ModelResponse
from .simulator_vad import Turn, input_format, turn_detection, turn_setting

logger = logging.getLogger("agent_playout")


class Settings(Protocol):
    """The server's settings a conversation follows (``SimulatedRealtimeServer`` has them)."""

    dialect: Dialect
    delta_ms: int
    speed: float
    late_deltas: int
    server_vad: bool
    vad_threshold: int
    silence_ms: int
    user_transcript: str
    script_per_connection: bool

    def audio_began(self, conversation: Conversation) -> None:
        """The first audio delta of a response went out."""

    def response_ended(self, conversation: Conversation) -> None:
        """A response of ``conversation`` is done (completed or cancelled)."""


@dataclass
class Shared:
    """What all of one server's conversations share: the scripted responses, the logs
    of client and server events, every assistant item, and the running streams."""

    script: list[ScriptedResponse]
    events: ServerEvents
    received: list[Event] = field(default_factory=list)
    sent: list[Event] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    grew: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (and replaced) each time a log grows, for the waits on it."""

    def record(self, log: list[Event], event: Event) -> None:
        log.append(event)
        self.grew.set()
        self.grew = asyncio.Event()


class _Cancelled(Exception):
    """The response a stream was sending is no longer the active one."""


class Conversation:
    """One client's session: its settings, its conversation, its response and its turn."""

    def __init__(self, websocket: ServerConnection, settings: Settings, shared: Shared) -> None:
        self.websocket = websocket
        self.settings = settings
        self.shared = shared
        self.session = initial_session(
            settings.dialect, server_vad=settings.server_vad, silence_ms=settings.silence_ms
        )
        self.lock = asyncio.Lock()  # each step's events go out together, never interleaved
        self.items: dict[str, Item] = {}
        self.script = list(shared.script) if settings.script_per_connection else shared.script
        """The responses left to give: the server's list, or this connection's own copy."""
        self.last_item_id: str | None = None
        self.response: ModelResponse | None = None
        self.task: asyncio.Task[None] | None = None  # the stream of the latest response
        self.turn = Turn()
        self._handlers: dict[str, Callable[[Event], Awaitable[None]]] = {
            "session.update": self._on_session_update,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "conversation.item.truncate": self._on_truncate,
            "conversation.item.delete": self._on_delete,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
        }

    async def serve(self) -> None:
        """Greet the client with ``session.created``, then answer its events until it
        leaves; a response still streaming then stops."""
        try:
            async with self.lock:
                await self._emit({"type": "session.created", "session": self.session})
            async for message in self.websocket:
                await self._handle_message(message)
        except ConnectionClosed:
            pass
        finally:
            if self.response is not None and self.task is not None:
                self.task.cancel()

    async def send_raw(self, event: Mapping[str, Any] | str) -> None:
        """Send ``event`` as it is: text verbatim, a mapping as JSON with no ``event_id``
        added (a mapping is recorded in ``sent``)."""
        async with self.lock:
            if isinstance(event, str):
                await self.websocket.send(event)
            else:
                self.shared.record(self.shared.sent, dict(event))
                await self.websocket.send(json.dumps(dict(event)))

    async def _emit(self, event: dict[str, Any]) -> None:
        """Send one server event (the caller holds ``self.lock``)."""
        event = {"type": event["type"], "event_id": new_id("event"), **event}
        self.shared.record(self.shared.sent, event)
        await self.websocket.send(json.dumps(event))

    async def _emit_all(self, *events: dict[str, Any]) -> None:
        async with self.lock:
            for event in events:
                await self._emit(event)

    async def _refuse(
        self,
        client_event: Mapping[str, Any],
        code: str,
        message: str,
        param: str | None = None,
    ) -> None:
        await self._emit_all(error_event(client_event, code, message, param))

    async def _handle_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            await self._refuse({}, "invalid_json", "The message is not a JSON object.")
            return
        self.shared.record(self.shared.received, event)
        kind = event.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._refuse(
                event,
                "invalid_value",
                f"Invalid value: {kind!r}. Supported values are: "
                + ", ".join(f"'{name}'" for name in self._handlers),
                "type",
            )
            return
        await handler(event)

    # -- client events -------------------------------------------------------------------

    async def _on_session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, Mapping):
            await self._refuse(
                event,
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                "session",
            )
            return
        for key in OTHER_DIALECT_KEYS[self.settings.dialect]:
            if key in update:
                await self._refuse(
                    event,
                    "unknown_parameter",
                    f"Unknown parameter: 'session.{key}'.",
                    f"session.{key}",
                )
                return
        session = merged(self.session, update)
        try:
            output_format_of(session)
            rate = input_format(self.settings.dialect, session).sample_rate
        except UnsupportedFormatError as error:
            await self._refuse(event, "invalid_value", str(error), "session")
            return
        self.session = session
        if rate != self.turn.rate:
            self.turn = Turn(rate=rate)
        await self._emit_all({"type": "session.updated", "session": session})

    async def _on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            await self._refuse(
                event,
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: "
                f"{self.response.id}. Wait until the response is finished before creating"
                " a new one.",
            )
            return
        await self._start_response()

    async def _on_response_cancel(self, event: dict[str, Any]) -> None:
        if not await self._cancel("client_cancelled"):
            await self._refuse(
                event,
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
            )

    async def _on_truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        item = self.items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            await self._refuse(
                event, "item_not_found", f"Item with item_id not found: {item_id!r}.", "item_id"
            )
            return
        index = event.get("content_index", 0)
        if not isinstance(index, int) or not 0 <= index < len(item.parts):
            await self._refuse(
                event,
                "invalid_value",
                f"Item {item.id} has no audio content at index {index!r}.",
                "content_index",
            )
            return
        part = item.parts[index]
        end_ms = event.get("audio_end_ms")
        refusal = truncate_refusal(part, end_ms)
        if refusal is not None:
            await self._refuse(event, "invalid_value", refusal, "audio_end_ms")
            return
        await self._emit_all(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": index,
                "audio_end_ms": end_ms,
            }
        )

    async def _on_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or self.items.pop(item_id, None) is None:
            await self._refuse(
                event, "item_not_found", f"Item with item_id not found: {item_id!r}.", "item_id"
            )
            return
        await self._emit_all({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_append(self, event: dict[str, Any]) -> None:
        try:
            samples = decode_audio(
                event.get("audio"), input_format(self.settings.dialect, self.session)
            )
        except ValueError as error:
            await self._refuse(event, "invalid_value", f"Invalid 'audio': {error}.", "audio")
            return
        if turn_detection(self.settings.dialect, self.session) is None:
            self.turn.skip(samples)
            return
        await self._listen(samples)

    async def _on_commit(self, event: dict[str, Any]) -> None:
        refusal = self.turn.commit_refusal()
        if refusal is not None:
            await self._refuse(event, "input_audio_buffer_commit_empty", refusal)
            return
        await self._commit(self.settings.user_transcript)

    async def _on_clear(self, event: dict[str, Any]) -> None:
        self.turn.clear()
        await self._emit_all({"type": "input_audio_buffer.cleared"})

    # -- the user's turn -----------------------------------------------------------------

    async def _listen(self, samples: Int16Array) -> None:
        """Run the server VAD over appended audio, sending what each change calls for."""
        turn = self.turn
        for change, ms in turn.hear(samples, self.settings.vad_threshold, self.settings.silence_ms):
            if change == "started":
                await self.speech_started(ms)
            else:
                await self.speech_stopped(ms, None)

    async def speech_started(self, start_ms: int) -> None:
        item_id = self.turn.start_speaking()
        await self._emit_all(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start_ms,
                "item_id": item_id,
            }
        )
        if turn_setting(self.settings.dialect, self.session, "interrupt_response"):
            await self._cancel("turn_detected")

    async def speech_stopped(self, end_ms: int, transcript: str | None) -> None:
        item_id = self.turn.stop_speaking()
        await self._emit_all(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": end_ms,
                "item_id": item_id,
            }
        )
        refusal = self.turn.stop_refusal()
        if refusal is not None:
            await self._refuse({}, "input_audio_buffer_commit_empty", refusal)
            return
        heard = self.settings.user_transcript if transcript is None else transcript
        await self._commit(heard)
        if (
            heard
            and self.response is None
            and turn_setting(self.settings.dialect, self.session, "create_response")
        ):
            await self._start_response()

    async def _commit(self, transcript: str) -> None:
        """Commit the input audio as a user item and transcribe it as ``transcript``."""
        item = Item(self.turn.commit(), "user", status="completed")
        previous, self.last_item_id = self.last_item_id, item.id
        self.items[item.id] = item
        await self._emit_all(*self.shared.events.user_turn(item.id, previous, transcript))

    # -- the model's response ------------------------------------------------------------

    async def _start_response(self) -> None:
        if self.script:
            script = self.script.pop(0)
        else:
            logger.info("simulated realtime server: no scripted response left; answering none")
            script = ScriptedResponse(())
        response = ModelResponse(new_id("resp"), script)
        self.response = response
        created = {
            "type": "response.created",
            "response": self.shared.events.response_object(response),
        }
        await self._emit_all(created)
        self.task = asyncio.create_task(self._stream(response))
        self.shared.tasks.add(self.task)
        self.task.add_done_callback(self.shared.tasks.discard)

    async def _step(
        self,
        response: ModelResponse,
        build: Callable[..., list[Event]],
        *args: Any,
    ) -> None:
        """Build (``build(response, *args)``) and send one step's events while the response
        is still the active one; after a cancel, end the stream (``_Cancelled``)."""
        async with self.lock:
            if self.response is not response:
                raise _Cancelled
            for event in build(response, *args):
                await self._emit(event)

    async def _stream(self, response: ModelResponse) -> None:
        """Send the response's items, parts and deltas, up to ``response.done``."""
        pause = self.settings.delta_ms / 1000 / self.settings.speed
        audio_format = output_format_of(self.session) or AudioFormat.PCM16
        step = audio_format.sample_rate * self.settings.delta_ms // 1000
        events = self.shared.events
        began = False
        with contextlib.suppress(_Cancelled, ConnectionClosed):
            for output_index, scripted_item in enumerate(response.script.items):
                item = Item(new_id("item"), "assistant")
                await self._step(response, self._add_item, item)
                for content_index, scripted in enumerate(scripted_item.parts):
                    part = Part.of(scripted, audio_format, item, output_index, content_index)
                    await self._step(response, events.part_added, part)
                    chunks = -(-part.audio.size // step)
                    for chunk in range(chunks):
                        due = -(-(chunk + 1) * len(part.pieces) // chunks)
                        await self._step(response, events.chunk, part, due)
                        if not began:
                            began = True
                            self.settings.audio_began(self)
                        await asyncio.sleep(pause)
                    await self._step(response, events.end_part, part)
                await self._step(response, self._end_item, item)
            await self._step(response, self._finish)
            self.settings.response_ended(self)

    def _add_item(self, response: ModelResponse, item: Item) -> list[Event]:
        response.output.append(item)
        previous, self.last_item_id = self.last_item_id, item.id
        self.items[item.id] = item
        self.shared.items[item.id] = item
        return self.shared.events.item_added(response, item, previous)

    def _end_item(self, response: ModelResponse, item: Item) -> list[Event]:
        return [self.shared.events.item_done(response, item, "completed")]

    def _finish(self, response: ModelResponse) -> list[Event]:
        self.response = None
        return [self.shared.events.response_done(response, "completed")]

    async def _cancel(self, reason: str) -> bool:
        """Cancel the active response as the real server does: up to ``late_deltas`` audio
        deltas of the open part, already in flight, still arrive; then the open part and item
        end, and ``response.done`` says cancelled. False when none was active."""
        async with self.lock:
            response = self.response
            if response is None:
                return False
            self.response = None
            if self.task is not None:
                self.task.cancel()
            events: list[Event] = []
            late: list[Event] = []
            item = response.output[-1] if response.output else None
            if item is not None and item.status == "in_progress":
                part = item.parts[-1] if item.parts else None
                if part is not None and not part.done:
                    events += self.shared.events.part_done(response, part)
                    while (
                        len(late) < self.settings.late_deltas
                        and part.sent_samples < part.audio.size
                    ):
                        late.append(self.shared.events.audio_delta(response, part))
                events.append(self.shared.events.item_done(response, item, "incomplete"))
            events.append(self.shared.events.response_done(response, "cancelled", reason))
            for event in [*late, *events]:
                await self._emit(event)
        self.settings.response_ended(self)
        return True
