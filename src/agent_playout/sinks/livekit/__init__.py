"""The LiveKit output: audio to an `rtc.AudioSource` at exact positions, captions to a room."""

from .captions import TranscriptionTarget, TranscriptPublisher, to_transcription
from .sink import LiveKitSink, SourceQueueError

__all__ = [
    "LiveKitSink",
    "SourceQueueError",
    "TranscriptPublisher",
    "TranscriptionTarget",
    "to_transcription",
]
