"""What the listener heard of one realtime item, and the truncation it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.positions import at_rate
from ..core.truncation import Truncation
from ..core.units import REALTIME_SAMPLE_RATE


@dataclass(frozen=True)
class ItemHeard:
    """One item (one content part) once it stopped: exact counts, the heard text, and the
    client event the bridge sent for it."""

    item_id: str
    content_index: int
    response_id: str | None
    sample_rate: int
    """The item's own audio rate: 24000 for PCM16, 8000 for G.711."""
    received_samples: int
    """Samples the server sent for the item, at ``sample_rate``."""
    heard_samples: int
    """Samples the listener heard, at ``sample_rate``; never above ``received_samples``."""
    heard_text: str
    interrupted: bool
    truncation: Truncation | None
    """The event the bridge sent for the item; None when it sent none."""
    ended_early: bool = False
    """The item's audio ended before the server's done events (the connection closed, or a
    delta could not be played): played out, but not all the model said."""

    @property
    def audio_samples(self) -> int:
        """Heard samples at 24 kHz, LiveKit Agents 0.12's unit."""
        return at_rate(self.heard_samples, self.sample_rate, REALTIME_SAMPLE_RATE)

    @property
    def audio_end_ms(self) -> int:
        """The whole milliseconds heard: what a truncation of this item says."""
        return self.heard_samples * 1000 // self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the fields, the two derived counts, and the event sent."""
        return {
            "item_id": self.item_id,
            "content_index": self.content_index,
            "response_id": self.response_id,
            "sample_rate": self.sample_rate,
            "received_samples": self.received_samples,
            "heard_samples": self.heard_samples,
            "audio_samples": self.audio_samples,
            "audio_end_ms": self.audio_end_ms,
            "heard_text": self.heard_text,
            "interrupted": self.interrupted,
            "ended_early": self.ended_early,
            "truncation": None if self.truncation is None else self.truncation.to_event(),
        }
