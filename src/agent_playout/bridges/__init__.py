"""The realtime-model bridge: OpenAI Realtime server events in, playouts out, truncations back.

Nothing here needs a model SDK; ``connect_realtime`` (extra ``[realtime]``) is one way to get
the events, any WebSocket client is another.
"""

from .formats import AudioFormat, Dialect, UnsupportedFormatError, session_update

__all__ = ["AudioFormat", "Dialect", "UnsupportedFormatError", "session_update"]
