"""agent-playout: the playout stage of a realtime voice agent, on one exact sample clock."""

from .clock import Clock, MonotonicClock, VirtualClock
from .errors import PlayoutClosedError, PlayoutError, PlayoutStateError
from .events import EventEmitter
from .forwarder import HeardWord, TranscriptForwarder, TranscriptSegment
from .frames import AudioByteStream, AudioFrame
from .playout import AgentPlayout, PlayoutHandle
from .sinks.base import AudioSink, PositionedSink
from .sinks.paced import NullSink, PacedSink
from .timeline import ItemState
from .timestamps import from_character_alignment, from_word_timestamps
from .transcript import TimedText

__all__ = [
    "AgentPlayout",
    "AudioByteStream",
    "AudioFrame",
    "AudioSink",
    "Clock",
    "EventEmitter",
    "HeardWord",
    "ItemState",
    "MonotonicClock",
    "NullSink",
    "PacedSink",
    "PlayoutClosedError",
    "PlayoutError",
    "PlayoutHandle",
    "PlayoutStateError",
    "PositionedSink",
    "TimedText",
    "TranscriptForwarder",
    "TranscriptSegment",
    "VirtualClock",
    "from_character_alignment",
    "from_word_timestamps",
]
