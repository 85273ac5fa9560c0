"""Client events handed to the application's ``send``, in order, each started at once."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..clock import Clock
from ..core.units import NS_PER_SECOND
from ..engine.eager import start_eagerly
from .heard import ItemHeard

logger = logging.getLogger("agent_playout")

SEND_WAIT_S = 5.0
"""How long a client event waits for the one before it to be sent; past it, it goes anyway
(logged), so a ``send`` that never returns cannot hold back every later one."""

Send = Callable[[dict[str, Any], ItemHeard | None], Awaitable[object] | object]
"""The application's sender: a client event, and what was heard of the item it is about
(None for events about no one item, such as ``response.cancel``)."""


class OrderedSender:
    """Calls ``send`` in the caller's turn; an awaitable result runs eagerly, up to its first
    wait, so a WebSocket write happens in that same turn. A send made while an earlier one
    still waits runs after it (for up to ``SEND_WAIT_S`` on ``clock``), never before. A
    send that fails is logged, not raised."""

    def __init__(self, send: Send, clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._last: asyncio.Future[Any] | None = None
        self._running: set[asyncio.Future[Any]] = set()

    def send(self, event: dict[str, Any], heard: ItemHeard | None) -> None:
        previous = self._last
        if previous is not None and not previous.done():
            self._last = self._track(asyncio.ensure_future(self._after(previous, event, heard)))
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
            self._track(running)
        return running

    def _track(self, future: asyncio.Future[Any]) -> asyncio.Future[Any]:
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    async def _after(
        self, previous: asyncio.Future[Any], event: dict[str, Any], heard: ItemHeard | None
    ) -> None:
        if not await self._within(previous, SEND_WAIT_S):
            logger.error(
                "the client event before %s was still being sent after %s s; sent %s anyway",
                event.get("type"),
                SEND_WAIT_S,
                event.get("type"),
                extra=_item_extra(event),
            )
        running = self._start(event, heard)
        if running is not None:
            await asyncio.wait([running])

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the sends still running, then cancel those
        that did not end (logged), so no send outlives the bridge."""
        last = self._last
        if last is not None:
            await self._within(last, timeout)
        stragglers = list(self._running)
        if stragglers:
            logger.error(
                "%d client event(s) still being sent after %s s; cancelled",
                len(stragglers),
                timeout,
            )
            for future in stragglers:
                future.cancel()
            await asyncio.wait(stragglers)

    async def _within(self, future: asyncio.Future[Any], timeout: float) -> bool:
        """Whether ``future`` is done within ``timeout`` seconds of the clock's time."""
        if future.done():
            return True
        gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(result: bool) -> None:
            if not gate.done():
                gate.set_result(result)

        def done(_: object) -> None:
            settle(True)

        future.add_done_callback(done)
        timer = self._clock.call_at(
            self._clock.now_ns() + round(timeout * NS_PER_SECOND), lambda: settle(False)
        )
        try:
            return await gate
        finally:
            timer.cancel()
            future.remove_done_callback(done)


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
