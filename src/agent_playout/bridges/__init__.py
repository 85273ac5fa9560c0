"""The realtime-model bridge: OpenAI Realtime server events in, playouts out, truncations back.

Nothing here needs a model SDK: ``RealtimeBridge`` takes parsed server events from any
WebSocket client and hands its client events to a ``send`` the application gives.
``connect_realtime`` (a client) and ``SimulatedRealtimeServer`` (an offline fake of the
API, for tests and trials) need the ``[realtime]`` extra; they are imported on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .bridge import RealtimeBridge
from .formats import AudioFormat, Dialect, UnsupportedFormatError, session_update
from .heard import ItemHeard
from .sender import Send

if TYPE_CHECKING:
    from .connection import RealtimeConnection, RealtimeConnectionError, connect_realtime
    from .simulator import ScriptedItem, ScriptedPart, ScriptedResponse, SimulatedRealtimeServer

_LAZY = {
    "RealtimeConnection": "connection",
    "RealtimeConnectionError": "connection",
    "connect_realtime": "connection",
    "ScriptedItem": "simulator",
    "ScriptedPart": "simulator",
    "ScriptedResponse": "simulator",
    "SimulatedRealtimeServer": "simulator",
}

__all__ = [
    "AudioFormat",
    "Dialect",
    "ItemHeard",
    "RealtimeBridge",
    "RealtimeConnection",
    "RealtimeConnectionError",
    "ScriptedItem",
    "ScriptedPart",
    "ScriptedResponse",
    "Send",
    "SimulatedRealtimeServer",
    "UnsupportedFormatError",
    "connect_realtime",
    "session_update",
]


def __getattr__(name: str) -> Any:
    """The names that need websockets, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
