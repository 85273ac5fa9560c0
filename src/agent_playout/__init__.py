"""agent-playout: the playout stage of a realtime voice agent, on one exact sample clock."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from .clock import Clock, MonotonicClock, VirtualClock
from .errors import PlayoutClosedError, PlayoutError, PlayoutStateError
from .events import EventEmitter
from .forwarder import HeardWord, TranscriptForwarder, TranscriptSegment
from .frames import AudioByteStream, AudioFrame
from .playout import AgentPlayout, PlayoutHandle
from .report import PlayoutReport, ReportWord
from .sinks.base import AudioSink, PositionedSink
from .sinks.paced import NullSink, PacedSink
from .timeline import ItemState
from .timestamps import from_character_alignment, from_word_timestamps
from .transcript import TimedText
from .truncation import DeleteItem, TruncateItem, Truncation, truncation_for

try:
    __version__ = _distribution_version("agent-playout")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
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
    "PositionedSink",
    "ReportWord",
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
