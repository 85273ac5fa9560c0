"""How the driver meets user code that misbehaves: stray cancellations, task errors, logs."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from ..errors import PlayoutError

logger = logging.getLogger("agent_playout")


def log_failure(item_id: str, what: str) -> None:
    """Log the exception being handled, raised by ``what``, with the item id."""
    logger.exception("%s failed for item %s", what, item_id, extra={"item_id": item_id})


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve the future a task of the item waits on, if it waits."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def task_error(task: asyncio.Task[None], what: str) -> BaseException:
    """Why ``task`` (done) ended: its error, or a ``PlayoutError`` naming it if cancelled."""
    if task.cancelled():
        return PlayoutError(f"{what} was cancelled while the item was not stopped")
    return task.exception() or PlayoutError(f"{what} ended without stopping the item")


def cancel_requests(task: asyncio.Task[Any] | None) -> int:
    """Cancellations requested of ``task`` and not yet taken back (0 before Python 3.11,
    which cannot tell: a listener's cancel then ends the item with an error)."""
    if task is None:
        return 0
    if sys.version_info >= (3, 11):
        return task.cancelling()
    return 0


def uncancel(task: asyncio.Task[Any]) -> int:
    """Take back one cancellation request of ``task`` (3.11+); the requests left."""
    if sys.version_info >= (3, 11):
        return task.uncancel()
    return 0


def stray_cancel(error: asyncio.CancelledError, what: str, stopped: bool) -> PlayoutError:
    """A ``CancelledError`` from user code while the item was not stopped and this task not
    cancelled (an upstream task was): returned as an error of the stream. One meant for
    this task is re-raised: the engine cancels an item's tasks only once it is stopped."""
    if stopped or cancel_requests(asyncio.current_task()):
        raise error
    return PlayoutError(
        f"{what} raised CancelledError while the item was not cancelled"
        " (was the task producing it cancelled?)"
    )
