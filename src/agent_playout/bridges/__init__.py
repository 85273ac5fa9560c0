"""The realtime-model bridge: OpenAI Realtime server events in, playouts out, truncations back.

Nothing here needs a model SDK: ``RealtimeBridge`` takes parsed server events from any
WebSocket client and hands its client events to a ``send`` the application gives.
"""

from .bridge import RealtimeBridge
from .formats import AudioFormat, Dialect, UnsupportedFormatError, session_update
from .heard import ItemHeard
from .sender import Send

__all__ = [
    "AudioFormat",
    "Dialect",
    "ItemHeard",
    "RealtimeBridge",
    "Send",
    "UnsupportedFormatError",
    "session_update",
]
