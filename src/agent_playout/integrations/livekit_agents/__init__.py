"""LiveKit Agents 1.x: an ``AudioOutput`` that plays through this package's LiveKit sink and
reports exactly what was heard (extra ``[livekit-agents]``)."""

from .output import ExactAudioOutput

__all__ = ["ExactAudioOutput"]
