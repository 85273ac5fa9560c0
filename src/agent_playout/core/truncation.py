"""Pure truncation rules for a realtime API (OpenAI Realtime's conversation items).

After an item stops, the server's copy of it must be cut to what the listener heard: nothing
to do when it played to the end, ``conversation.item.truncate`` at the last whole heard
millisecond, or ``conversation.item.delete`` when not even a millisecond was heard (the API
rejects ``audio_end_ms`` of 0 and values past the audio the server sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .units import REALTIME_SAMPLE_RATE


@dataclass(frozen=True)
class TruncateItem:
    """Cut the item's audio (and the server's transcript of it) after ``audio_end_ms``."""

    item_id: str
    content_index: int
    audio_end_ms: int

    def to_event(self) -> dict[str, Any]:
        """The client event, ready for ``json.dumps``."""
        return {
            "type": "conversation.item.truncate",
            "item_id": self.item_id,
            "content_index": self.content_index,
            "audio_end_ms": self.audio_end_ms,
        }


@dataclass(frozen=True)
class DeleteItem:
    """Remove the item: the listener heard none of it."""

    item_id: str

    def to_event(self) -> dict[str, Any]:
        """The client event, ready for ``json.dumps``."""
        return {"type": "conversation.item.delete", "item_id": self.item_id}


Truncation = TruncateItem | DeleteItem


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def truncation_for(
    *,
    item_id: str,
    content_index: int,
    heard_samples: int,
    sent_samples: int,
    completed: bool,
    sample_rate: int = REALTIME_SAMPLE_RATE,
) -> Truncation | None:
    """What to send for an item that stopped: None when it ``completed``.

    ``heard_samples`` and ``sent_samples`` are counts at ``sample_rate``: 24 kHz for PCM16,
    8 kHz for a session whose output is G.711. A heard count above the sent one (a fade
    tail, resampling rounding) is taken as all of it. ``audio_end_ms`` is rounded down, so
    it never claims unheard audio and never exceeds what was sent.
    """
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"item_id must be a non-empty str, got {item_id!r}")
    _count("content_index", content_index)
    heard = min(_count("heard_samples", heard_samples), _count("sent_samples", sent_samples))
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be an int > 0, got {sample_rate!r}")
    if completed:
        return None
    audio_end_ms = heard * 1000 // sample_rate
    if audio_end_ms == 0:
        return DeleteItem(item_id)
    return TruncateItem(item_id, content_index, audio_end_ms)
