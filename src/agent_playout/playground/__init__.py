"""The playground (extra ``[playground]``: aiohttp and aiortc): a page on which to hear a
playout over WebRTC, watch its captions follow what the browser played, interrupt it, and
read what was heard. ``agent-playout playground`` serves it."""

from __future__ import annotations

from .server import PlaygroundServer, create_app, serve_playground

__all__ = ["PlaygroundServer", "create_app", "serve_playground"]
