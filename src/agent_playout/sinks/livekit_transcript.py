"""The caption publisher's import path in earlier READMEs; it now lives in `sinks.livekit`."""

from .livekit.captions import TranscriptionTarget, TranscriptPublisher, to_transcription

__all__ = ["TranscriptPublisher", "TranscriptionTarget", "to_transcription"]
