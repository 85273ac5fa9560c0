"""Client events handed to the application's ``send``, each started in the caller's turn."""

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

Send = Callable[[dict[str, Any], ItemHeard | None], Awaitable[object] | object]
"""The application's sender: a client event, and what was heard of the item it is about
(None for events about no one item, such as ``response.cancel``)."""


class OrderedSender:
    """Calls ``send`` in the caller's turn, in call order; an awaitable result runs eagerly,
    up to its first wait, so a WebSocket write happens in that same turn even while an
    earlier send still waits on the socket (websockets writes a message before it waits).
    A send that fails is logged, never raised; ``flush`` bounds the wait for the rest."""

    def __init__(self, send: Send, clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._running: set[asyncio.Future[Any]] = set()
        self._abandoned: set[asyncio.Future[Any]] = set()

    def send(self, event: dict[str, Any], heard: ItemHeard | None) -> None:
        try:
            result = self._send(event, heard)
            if not inspect.isawaitable(result):
                return
            running = start_eagerly(result)
        except Exception:
            logger.exception("sending %s failed", event.get("type"), extra=_item_extra(event))
            return
        if running is not None:
            running.add_done_callback(lambda done: _log_if_failed(done, event))
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds on the clock for the sends still running, then
        cancel those that did not end (logged). One that ignores its cancellation is kept
        referenced until it ends, never waited for, so no close can hang on it."""
        pending = list(self._running)
        if not pending or await _all_within(self._clock, pending, timeout):
            return
        late = [future for future in pending if not future.done()]
        logger.error(
            "%d client event(s) still being sent after %s s; cancelled", len(late), timeout
        )
        for future in late:
            future.cancel()
        await asyncio.sleep(0)  # a send that takes its cancellation ends in this turn
        for future in late:
            if not future.done():
                self._abandoned.add(future)
                future.add_done_callback(self._abandoned.discard)


async def _all_within(clock: Clock, futures: list[asyncio.Future[Any]], timeout: float) -> bool:
    """Whether every one of ``futures`` is done within ``timeout`` seconds of ``clock``."""
    gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(result: bool) -> None:
        if not gate.done():
            gate.set_result(result)

    def one_done(_: object) -> None:
        if all(future.done() for future in futures):
            settle(True)

    for future in futures:
        future.add_done_callback(one_done)
    one_done(None)
    timer = clock.call_at(clock.now_ns() + round(timeout * NS_PER_SECOND), lambda: settle(False))
    try:
        return await gate
    finally:
        timer.cancel()
        for future in futures:
            future.remove_done_callback(one_done)


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


def _item_extra(event: dict[str, Any]) -> dict[str, Any]:
    item_id = event.get("item_id")
    return {"item_id": item_id} if isinstance(item_id, str) else {}
