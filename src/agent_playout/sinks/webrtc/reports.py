"""The receiver-report message, without I/O: parsed and checked, and the sender's request.

A receiver (a browser page, or ``ReceiverReporter`` on an aiortc peer) sends its own
``getStats()`` figures as JSON text over the ``receiver-stats`` data channel, one object per
message. Field names inside ``inbound`` and ``playout`` are the W3C webrtc-stats names,
copied verbatim, so that a page does no maths. Any field may be absent (browsers differ);
anything present must have its W3C type, and ``parse_report`` refuses the message otherwise
with a ``ReportError`` that names the field. Whether counters decrease between messages is
checked by the sink (``scheduler.ReportLedger``), which has the previous one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

REPORT_CHANNEL_LABEL: Final = "receiver-stats"
"""The data channel's label."""

REPORT_TYPE: Final = "receiver-report"
REPORT_NOW: Final = '{"type": "report-now"}'
"""The sender's request: the receiver answers with one report at once."""

MAX_REPORT_CHARS: Final = 16_384
"""The longest message parsed (a full report is about 700 characters)."""

_SHOWN: Final = 40


class ReportError(ValueError):
    """A receiver report that breaks the contract; the text names the field."""


@dataclass(frozen=True, slots=True)
class InboundStats:
    """The ``inbound-rtp`` figures of the audio stream (None where the receiver has none)."""

    total_samples_received: int | None = None
    concealed_samples: int | None = None
    silent_concealed_samples: int | None = None
    concealment_events: int | None = None
    inserted_samples_for_deceleration: int | None = None
    removed_samples_for_acceleration: int | None = None
    jitter_buffer_delay: float | None = None
    jitter_buffer_emitted_count: int | None = None
    jitter_buffer_target_delay: float | None = None
    packets_received: int | None = None
    packets_lost: int | None = None
    """Signed in W3C (duplicates can make it negative), and may go down after a late packet."""
    packets_discarded: int | None = None
    """Packets that arrived too late (or too early) to be played: counted lost until they came."""
    audio_level: float | None = None
    total_audio_energy: float | None = None


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    """The ``media-playout`` figures (device-wide in Chromium, at the device's rate)."""

    total_samples_count: int | None = None
    total_samples_duration: float | None = None
    synthesized_samples_duration: float | None = None
    synthesized_samples_events: int | None = None
    total_playout_delay: float | None = None


@dataclass(frozen=True, slots=True)
class WorkletStats:
    """An AudioWorklet's count of the frames it rendered from the track (the fallback)."""

    frames: int | None = None
    sample_rate: int | None = None
    non_silent_frames: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """One report: its sequence number, the receiver's clock, and the figures it had."""

    seq: int
    at_ms: float
    inbound: InboundStats | None = None
    playout: PlayoutStats | None = None
    worklet: WorkletStats | None = None


# (W3C name, attribute, kind): "count" a non-negative integer, "signed" any integer,
# "seconds" a non-negative number, "level" a number in [0, 1], "rate" a positive integer.
_INBOUND: Final = (
    ("totalSamplesReceived", "total_samples_received", "count"),
    ("concealedSamples", "concealed_samples", "count"),
    ("silentConcealedSamples", "silent_concealed_samples", "count"),
    ("concealmentEvents", "concealment_events", "count"),
    ("insertedSamplesForDeceleration", "inserted_samples_for_deceleration", "count"),
    ("removedSamplesForAcceleration", "removed_samples_for_acceleration", "count"),
    ("jitterBufferDelay", "jitter_buffer_delay", "seconds"),
    ("jitterBufferEmittedCount", "jitter_buffer_emitted_count", "count"),
    ("jitterBufferTargetDelay", "jitter_buffer_target_delay", "seconds"),
    ("packetsReceived", "packets_received", "count"),
    ("packetsLost", "packets_lost", "signed"),
    ("packetsDiscarded", "packets_discarded", "count"),
    ("audioLevel", "audio_level", "level"),
    ("totalAudioEnergy", "total_audio_energy", "seconds"),
)
_PLAYOUT: Final = (
    ("totalSamplesCount", "total_samples_count", "count"),
    ("totalSamplesDuration", "total_samples_duration", "seconds"),
    ("synthesizedSamplesDuration", "synthesized_samples_duration", "seconds"),
    ("synthesizedSamplesEvents", "synthesized_samples_events", "count"),
    ("totalPlayoutDelay", "total_playout_delay", "seconds"),
)
_WORKLET: Final = (
    ("frames", "frames", "count"),
    ("sampleRate", "sample_rate", "rate"),
    ("nonSilentFrames", "non_silent_frames", "count"),
)

COUNTERS: Final = tuple(
    (section, name, attribute)
    for section, fields in (("inbound", _INBOUND), ("playout", _PLAYOUT), ("worklet", _WORKLET))
    for name, attribute, kind in fields
    if kind == "count"
)
"""Every field that only ever grows: (section, W3C name, attribute)."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _number(field: str, value: object, kind: str) -> int | float:
    """``value`` checked as ``kind``; ReportError naming ``field`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{field} is {_shown(value)}, not a number")
    if not math.isfinite(value):
        raise ReportError(f"{field} is {_shown(value)}, not a finite number")
    if kind in ("count", "signed", "rate"):
        if isinstance(value, float):
            if not value.is_integer():
                raise ReportError(f"{field} is {_shown(value)}, not an integer")
            value = int(value)
        if kind == "count" and value < 0:
            raise ReportError(f"{field} is {value}, a counter cannot be negative")
        if kind == "rate" and value <= 0:
            raise ReportError(f"{field} is {value}, not a positive rate")
        return value
    if value < 0:
        raise ReportError(f"{field} is {_shown(value)}, cannot be negative")
    if kind == "level" and value > 1:
        raise ReportError(f"{field} is {_shown(value)}, not in [0, 1]")
    return float(value)


def _section(
    message: dict[str, Any], section: str, fields: tuple[tuple[str, str, str], ...]
) -> dict[str, int | float] | None:
    value = message.get(section)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReportError(f"{section} is {_shown(value)}, not an object or null")
    found: dict[str, int | float] = {}
    for name, attribute, kind in fields:
        if name in value and value[name] is not None:
            found[attribute] = _number(f"{section}.{name}", value[name], kind)
    return found


def parse_report(text: str | bytes) -> ReceiverReport:
    """One receiver report from its JSON text; ``ReportError`` naming the field otherwise."""
    if len(text) > MAX_REPORT_CHARS:
        raise ReportError(f"message is {len(text)} characters, more than {MAX_REPORT_CHARS}")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"message is not JSON: {error.msg} at character {error.pos}") from None
    except (UnicodeDecodeError, RecursionError, ValueError):
        raise ReportError("message is not JSON text this parser takes") from None
    if not isinstance(message, dict):
        raise ReportError(f"message is {_shown(message)}, not a JSON object")
    kind = message.get("type")
    if kind != REPORT_TYPE:
        raise ReportError(f"type is {_shown(kind)}, not {REPORT_TYPE!r}")
    seq = message.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ReportError(f"seq is {_shown(seq)}, not an integer >= 0")
    at_ms = _number("at_ms", message.get("at_ms"), "seconds")
    inbound = _section(message, "inbound", _INBOUND)
    playout = _section(message, "playout", _PLAYOUT)
    worklet = _section(message, "worklet", _WORKLET)
    return ReceiverReport(
        seq=seq,
        at_ms=float(at_ms),
        inbound=None if inbound is None else InboundStats(**inbound),  # type: ignore[arg-type]
        playout=None if playout is None else PlayoutStats(**playout),  # type: ignore[arg-type]
        worklet=None if worklet is None else WorkletStats(**worklet),  # type: ignore[arg-type]
    )


def is_report_request(text: str | bytes) -> bool:
    """Whether a message on the channel is the sender's ``report-now``."""
    if len(text) > MAX_REPORT_CHARS:
        return False
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(message, dict) and message.get("type") == "report-now"


def report_text(
    seq: int,
    at_ms: float,
    inbound: dict[str, int | float] | None,
    playout: dict[str, int | float] | None = None,
    worklet: dict[str, int | float] | None = None,
) -> str:
    """A report's JSON text, its sections given with their W3C names."""
    return json.dumps(
        {
            "type": REPORT_TYPE,
            "seq": seq,
            "at_ms": at_ms,
            "inbound": inbound,
            "playout": playout,
            "worklet": worklet,
        }
    )
