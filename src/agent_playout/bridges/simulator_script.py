"""What the simulated realtime server says, and the server events that say it.

The scripted answers (``ScriptedResponse`` of ``ScriptedItem`` of ``ScriptedPart``), the
state of a response being sent (its items and parts and how much of each went out), and the
builders of the events the real API sends for them: ids, item and response objects, the
added/delta/done events in the GA or beta names, the session object and how an update merges.
No I/O and no asyncio here: ``simulator_conversation`` sends what these build.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.frames import Int16Array
from ..core.resample import FormatConverter
from ..core.units import REALTIME_SAMPLE_RATE
from .formats import AudioFormat, Dialect, encode_audio

Event = dict[str, Any]

NAMES: dict[Dialect, dict[str, str]] = {
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

OTHER_DIALECT_KEYS: dict[Dialect, tuple[str, ...]] = {
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
class Item:
    """A conversation item (the model's message or the user's turn) and its parts."""

    id: str
    role: str
    parts: list[Part] = field(default_factory=list)
    status: str = "in_progress"


@dataclass
class Part:
    """A content part being (or once) sent: its audio in the output format, and how much
    of it and of its transcript went out."""

    item: Item
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
        item: Item,
        output_index: int,
        content_index: int,
    ) -> Part:
        """``scripted`` in ``audio_format``: G.711 is resampled to 8 kHz (soxr) first."""
        audio = scripted.audio
        if audio_format is AudioFormat.G711_ULAW:
            converter = FormatConverter(REALTIME_SAMPLE_RATE, 1, audio_format.sample_rate, 1)
            audio = converter.process(audio, last=True)
        pieces = transcript_pieces(scripted.text)
        return cls(item, output_index, content_index, audio, audio_format, pieces)

    @property
    def sent_text(self) -> str:
        return "".join(self.pieces[: self.sent_pieces])


@dataclass
class Response:
    """A response being sent: its script and the items it has output so far."""

    id: str
    script: ScriptedResponse
    output: list[Item] = field(default_factory=list)


def new_id(prefix: str) -> str:
    """A fresh id in the API's shape, such as ``item_...`` or ``event_...``."""
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def transcript_pieces(text: str) -> list[str]:
    """``text`` as transcript deltas the way the API sends them: a word with its leading
    space each; they join back to ``text`` exactly."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[len("".join(pieces)) :]
    if rest:
        pieces = [*pieces[:-1], pieces[-1] + rest] if pieces else [rest]
    return pieces


def merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, nested objects key by key, as the API merges a
    ``session.update``; a None, and a whole audio ``format`` object, replace."""
    result = dict(base)
    for key, value in update.items():
        if key != "format" and isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def initial_session(dialect: Dialect, *, server_vad: bool, silence_ms: int) -> dict[str, Any]:
    """The session a new connection starts with, as ``session.created`` shows it."""
    turn_detection = (
        {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 0,
            "silence_duration_ms": silence_ms,
            "create_response": True,
            "interrupt_response": True,
        }
        if server_vad
        else None
    )
    session_id = new_id("sess")
    if dialect == "beta":
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


def truncate_refusal(part: Part, end_ms: object) -> str | None:
    """Why the real API refuses to truncate ``part`` at ``end_ms`` (not a positive integer,
    or past the audio sent), or None."""
    if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms <= 0:
        return f"Invalid 'audio_end_ms': {end_ms!r}; expected a positive integer."
    if end_ms * part.audio_format.sample_rate > part.sent_samples * 1000:
        sent_ms = part.sent_samples * 1000 / part.audio_format.sample_rate
        return f"Audio content of {sent_ms:g}ms is already shorter than {end_ms}ms"
    return None


def error_event(
    client_event: Mapping[str, Any], code: str, message: str, param: str | None
) -> Event:
    """The ``error`` event refusing ``client_event``, naming its ``event_id``."""
    error = {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": client_event.get("event_id"),
    }
    return {"type": "error", "error": error}


class ServerEvents:
    """The builders of one dialect's response and conversation events; an audio delta
    carries ``delta_ms`` of audio. Building a delta or a done event counts it as sent."""

    def __init__(self, dialect: Dialect, delta_ms: int) -> None:
        self.names = NAMES[dialect]
        self.delta_ms = delta_ms

    def response_object(
        self, response: Response, status: str = "in_progress", reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": None if reason is None else {"type": status, "reason": reason},
            "output": [self.item_object(item) for item in response.output],
        }

    def item_object(self, item: Item) -> dict[str, Any]:
        content = [
            {"type": self.names["content"], "transcript": part.sent_text} for part in item.parts
        ]
        return {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "status": item.status,
            "role": item.role,
            "content": content,
        }

    def part_event(self, kind: str, response: Response, part: Part) -> Event:
        return {
            "type": self.names.get(kind, kind),
            "response_id": response.id,
            "item_id": part.item.id,
            "output_index": part.output_index,
            "content_index": part.content_index,
        }

    def audio_delta(self, response: Response, part: Part) -> Event:
        """The part's next ``delta_ms`` of audio, counted as sent."""
        step = part.audio_format.sample_rate * self.delta_ms // 1000
        chunk = part.audio[part.sent_samples : part.sent_samples + step]
        part.sent_samples += chunk.size
        return {
            **self.part_event("audio.delta", response, part),
            "delta": encode_audio(chunk, part.audio_format),
        }

    def transcript_deltas(self, response: Response, part: Part, due: int) -> list[Event]:
        """The part's transcript deltas up to the ``due``-th, counted as sent."""
        events = []
        while part.sent_pieces < due:
            delta = part.pieces[part.sent_pieces]
            part.sent_pieces += 1
            events.append({**self.part_event("transcript.delta", response, part), "delta": delta})
        return events

    def chunk(self, response: Response, part: Part, due: int) -> list[Event]:
        """The transcript due by the end of the next audio delta, then that delta (the
        text runs ahead of the audio, as the real API's does)."""
        return [*self.transcript_deltas(response, part, due), self.audio_delta(response, part)]

    def part_added(self, response: Response, part: Part) -> list[Event]:
        part.item.parts.append(part)
        return [
            {
                **self.part_event("response.content_part.added", response, part),
                "part": {"type": "audio", "transcript": ""},
            }
        ]

    def part_done(self, response: Response, part: Part) -> list[Event]:
        """The done events of a part, with the transcript sent so far."""
        part.done = True
        transcript = part.sent_text
        return [
            self.part_event("audio.done", response, part),
            {**self.part_event("transcript.done", response, part), "transcript": transcript},
            {
                **self.part_event("response.content_part.done", response, part),
                "part": {"type": "audio", "transcript": transcript},
            },
        ]

    def end_part(self, response: Response, part: Part) -> list[Event]:
        """The rest of the part's transcript, then its done events."""
        return [
            *self.transcript_deltas(response, part, len(part.pieces)),
            *self.part_done(response, part),
        ]

    def item_added(self, response: Response, item: Item, previous: str | None) -> list[Event]:
        return [
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": response.output.index(item),
                "item": self.item_object(item),
            },
            {
                "type": self.names["item.added"],
                "previous_item_id": previous,
                "item": self.item_object(item),
            },
        ]

    def item_done(self, response: Response, item: Item, status: str) -> Event:
        item.status = status
        return {
            "type": "response.output_item.done",
            "response_id": response.id,
            "output_index": response.output.index(item),
            "item": self.item_object(item),
        }

    def response_done(self, response: Response, status: str, reason: str | None = None) -> Event:
        return {"type": "response.done", "response": self.response_object(response, status, reason)}

    def user_turn(self, item_id: str, previous: str | None, transcript: str) -> list[Event]:
        """The input audio committed as user item ``item_id``, then its transcription
        (no delta for an empty ``transcript``)."""
        user_item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        events: list[Event] = [
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            },
            {"type": self.names["item.added"], "previous_item_id": previous, "item": user_item},
        ]
        if transcript:
            events.append(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": transcript,
                }
            )
        events.append(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
            }
        )
        return events
