"""Start a coroutine now, up to its first real wait, instead of a loop turn later."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def start_eagerly(awaitable: Awaitable[Any]) -> asyncio.Future[Any] | None:
    """Run a coroutine up to its first real wait now: None if it finished (its error is
    raised), else a task that goes on from there. Most ``aclose()`` calls never wait, and
    this spares them the loop turn a new task costs (asyncio's eager tasks, 3.12+)."""
    if not asyncio.iscoroutine(awaitable):
        return asyncio.ensure_future(awaitable)
    try:
        yielded = awaitable.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_go_on(awaitable, yielded))


async def _go_on(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _resume(coroutine, yielded)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drive a started ``coroutine`` from the value it last yielded, as a task would."""
    while True:
        try:
            sent = yield yielded
        except BaseException as error:
            try:
                yielded = coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value
