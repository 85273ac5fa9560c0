"""Client events handed to the application's ``send``, in order, each started at once."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..engine.eager import start_eagerly
from .heard import ItemHeard

logger = logging.getLogger("agent_playout")

Send = Callable[[dict[str, Any], ItemHeard | None], Awaitable[object] | object]
"""The application's sender: a client event, and what was heard of the item it is about
(None for events about no one item, such as ``response.cancel``)."""


class OrderedSender:
    """Calls ``send`` in the caller's turn; an awaitable result runs eagerly, up to its first
    wait, so a WebSocket write happens in that same turn. A send made while an earlier one
    still waits runs after it, never before. A send that fails is logged, not raised."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._last: asyncio.Future[Any] | None = None

    def send(self, event: dict[str, Any], heard: ItemHeard | None) -> None:
        previous = self._last
        if previous is not None and not previous.done():
            self._last = asyncio.ensure_future(self._after(previous, event, heard))
            return
        self._last = self._start(event, heard)

    def _start(self, event: dict[str, Any], heard: ItemHeard | None) -> asyncio.Future[Any] | None:
        try:
            result = self._send(event, heard)
            if not inspect.isawaitable(result):
                return None
            running = start_eagerly(result)
        except Exception:
            _log_failure(event)
            return None
        if running is not None:
            running.add_done_callback(lambda done: _log_if_failed(done, event))
        return running

    async def _after(
        self, previous: asyncio.Future[Any], event: dict[str, Any], heard: ItemHeard | None
    ) -> None:
        await asyncio.wait([previous])
        running = self._start(event, heard)
        if running is not None:
            await asyncio.wait([running])

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the sends still running; log if they did not end."""
        last = self._last
        if last is None or last.done():
            return
        done, _ = await asyncio.wait([last], timeout=timeout)
        if not done:
            logger.error("a client event was still being sent after %s s; went on", timeout)


def _log_if_failed(done: asyncio.Future[Any], event: dict[str, Any]) -> None:
    if done.cancelled():
        return
    error = done.exception()
    if error is not None:
        logger.error(
            "sending %s failed: %s: %s",
            event.get("type"),
            type(error).__name__,
            error,
            extra=_item_extra(event),
        )


def _log_failure(event: dict[str, Any]) -> None:
    logger.exception("sending %s failed", event.get("type"), extra=_item_extra(event))


def _item_extra(event: dict[str, Any]) -> dict[str, Any]:
    item_id = event.get("item_id")
    return {"item_id": item_id} if isinstance(item_id, str) else {}
