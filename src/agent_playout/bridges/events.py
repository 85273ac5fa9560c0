"""The server events the bridge reads, under both dialects' names, and their fields.

A field that is missing or of the wrong type raises ``BadEvent``, which names the event
and the field; the bridge logs it and drops that event, never the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

AUDIO_DELTA: Final = frozenset({"response.output_audio.delta", "response.audio.delta"})
AUDIO_DONE: Final = frozenset({"response.output_audio.done", "response.audio.done"})
TRANSCRIPT_DELTA: Final = frozenset(
    {"response.output_audio_transcript.delta", "response.audio_transcript.delta"}
)
TRANSCRIPT_DONE: Final = frozenset(
    {"response.output_audio_transcript.done", "response.audio_transcript.done"}
)
ITEM_ADDED: Final = frozenset({"conversation.item.added", "conversation.item.created"})
SESSION: Final = frozenset({"session.created", "session.updated"})
USER_TRANSCRIPT: Final = frozenset(
    {
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    }
)
TEXT_PARTS: Final = frozenset({"text", "output_text", "input_text"})
"""Content part types that carry no audio: the bridge does not play them."""


class BadEvent(ValueError):
    """A server event without a field the bridge needs, or with one of the wrong type."""


def text_field(event: Mapping[str, Any], field: str) -> str:
    """``event[field]`` as a non-empty string."""
    value = event.get(field)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{event.get('type')} has no {field} (got {_shown(value)})")
    return value


def index_field(event: Mapping[str, Any], field: str = "content_index") -> int:
    """``event[field]`` as an int >= 0; 0 when absent (servers that send one part omit it)."""
    value = event.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadEvent(f"{event.get('type')} has {field} {_shown(value)}; it must be an int >= 0")
    return value


def object_field(event: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    """``event[field]`` as a JSON object."""
    value = event.get(field)
    if not isinstance(value, Mapping):
        raise BadEvent(f"{event.get('type')} has no {field} object (got {_shown(value)})")
    return value


def optional_text(event: Mapping[str, Any], field: str) -> str | None:
    """``event[field]`` if it is a non-empty string, else None."""
    value = event.get(field)
    return value if isinstance(value, str) and value else None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
