"""The playground (extra ``[playground]``: aiohttp and aiortc): a page on which to hear a
playout over WebRTC, watch its captions follow what the browser played, interrupt it, and
read what was heard. ``agent-playout playground`` serves it.

The page's messages (``messages``) need nothing beyond the core; the server and its
sessions need aiohttp and aiortc, and are imported on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .realtime import RealtimeTarget
    from .server import PlaygroundServer, create_app, serve_playground
    from .session import OfferError, Session

_LAZY = {
    "PlaygroundServer": "server",
    "RealtimeTarget": "realtime",
    "create_app": "server",
    "serve_playground": "server",
    "OfferError": "session",
    "Session": "session",
}

__all__ = [
    "OfferError",
    "PlaygroundServer",
    "RealtimeTarget",
    "Session",
    "create_app",
    "serve_playground",
]


def __getattr__(name: str) -> Any:
    """The names that need aiohttp and aiortc, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
