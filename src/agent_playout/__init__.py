"""agent-playout: the playout stage of a realtime voice agent, on one exact sample clock."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from .clock import Clock, MonotonicClock, VirtualClock
from .core.frames import AudioByteStream, AudioFrame
from .core.timeline import ItemState
from .core.truncation import DeleteItem, TruncateItem, Truncation, truncation_for
from .engine.handle import PlayoutHandle
from .engine.playout import CLEANUP_TIMEOUT_S, AgentPlayout
from .engine.report import PlayoutReport, ReportWord
from .errors import (
    PlayoutClosedError,
    PlayoutError,
    PlayoutStateError,
    PositionUnconfirmedError,
)
from .events import EventEmitter
from .sinks.base import AudioSink, PositionedSink, SettlingSink
from .sinks.paced import NullSink, PacedSink
from .transcript.forwarder import HeardWord, TranscriptForwarder, TranscriptSegment
from .transcript.timed_text import TimedText
from .transcript.timestamps import from_character_alignment, from_word_timestamps

try:
    __version__ = _distribution_version("agent-playout")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CLEANUP_TIMEOUT_S",
    "AgentPlayout",
    "AudioByteStream",
    "AudioFrame",
    "AudioSink",
    "Clock",
    "DeleteItem",
    "EventEmitter",
    "HeardWord",
    "ItemState",
    "MonotonicClock",
    "NullSink",
    "PacedSink",
    "PlayoutClosedError",
    "PlayoutError",
    "PlayoutHandle",
    "PlayoutReport",
    "PlayoutStateError",
    "PositionUnconfirmedError",
    "PositionedSink",
    "ReportWord",
    "SettlingSink",
    "TimedText",
    "TranscriptForwarder",
    "TranscriptSegment",
    "TruncateItem",
    "Truncation",
    "VirtualClock",
    "from_character_alignment",
    "from_word_timestamps",
    "truncation_for",
]
