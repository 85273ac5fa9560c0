"""The playground's signalling messages (pure): what a page may send over its WebSocket,
checked with the field named, and the offer it posts.

A page sends ``{"type": "speak", "text": ...}`` and ``{"type": "interrupt"}``; the server
answers with ``hello``, ``item-started``, ``caption``, ``report`` and ``error`` objects
(built by the session). Anything else is refused with ``MessageError`` naming the field, and
the session goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_TEXT_CHARS = 2000
"""The longest response a page may ask to hear (about two minutes of speech)."""
MAX_SDP_CHARS = 64_000
"""An audio-only offer is about 1-3 kB; anything far larger is not one."""


class MessageError(ValueError):
    """A page's message is not one the playground takes; the message names the field."""


@dataclass(frozen=True)
class Speak:
    """Synthesize ``text`` and play it (a new one cuts the one playing)."""

    text: str


@dataclass(frozen=True)
class Interrupt:
    """Cut the item playing now (the Interrupt button, the space bar)."""


@dataclass(frozen=True)
class Offer:
    """The page's SDP offer (its audio receiver and its ``receiver-stats`` channel)."""

    sdp: str


PageMessage = Speak | Interrupt


def _object(raw: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MessageError(f"{what} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def parse_page_message(raw: str | bytes) -> PageMessage:
    """One WebSocket message from the page, or ``MessageError`` naming what is wrong."""
    data = _object(raw, "the message")
    kind = data.get("type")
    if kind == "interrupt":
        return Interrupt()
    if kind == "speak":
        text = data.get("text")
        if not isinstance(text, str):
            raise MessageError(f"speak: 'text' must be a string, got {type(text).__name__}")
        if not text.strip():
            raise MessageError("speak: 'text' has nothing to say")
        if len(text) > MAX_TEXT_CHARS:
            raise MessageError(f"speak: 'text' is {len(text)} characters; at most {MAX_TEXT_CHARS}")
        return Speak(text.strip())
    raise MessageError(f"'type' must be 'speak' or 'interrupt', got {kind!r}")


def parse_offer(raw: str | bytes) -> Offer:
    """The body of ``POST /session/{id}/offer``: ``{"type": "offer", "sdp": ...}``."""
    data = _object(raw, "the offer")
    if data.get("type") != "offer":
        raise MessageError(f"offer: 'type' must be 'offer', got {data.get('type')!r}")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise MessageError("offer: 'sdp' must be a non-empty string")
    if len(sdp) > MAX_SDP_CHARS:
        raise MessageError(f"offer: 'sdp' is {len(sdp)} characters; at most {MAX_SDP_CHARS}")
    if not sdp.startswith("v=0"):
        raise MessageError("offer: 'sdp' is not SDP (it must start with 'v=0')")
    if "m=audio" not in sdp:
        raise MessageError("offer: 'sdp' has no audio section ('m=audio') to send the voice in")
    return Offer(sdp)
