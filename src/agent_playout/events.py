"""A small synchronous event emitter, call-compatible with livekit's ``EventEmitter``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

EventName = TypeVar("EventName")
Callback = Callable[..., Any]


def _positional_capacity(callback: Callback) -> int | None:
    """How many positional arguments ``callback`` takes; None when it takes any number."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


class EventEmitter(Generic[EventName]):
    """Calls listeners in registration order; a listener may take fewer arguments than emitted.

    Unlike livekit's emitter, a listener's exception is not swallowed: every listener still
    runs, then the first exception is raised to the emitter's caller, which decides.
    """

    def __init__(self) -> None:
        self._listeners: dict[EventName, dict[Callback, int | None]] = {}

    def on(self, event: EventName, callback: Callback | None = None) -> Callback:
        """Register ``callback`` for ``event``; without a callback, return a decorator."""
        if callback is None:

            def decorator(function: Callback) -> Callback:
                self.on(event, function)
                return function

            return decorator
        if not callable(callback):
            raise TypeError(f"callback for {event!r} must be callable, got {callback!r}")
        self._listeners.setdefault(event, {})[callback] = _positional_capacity(callback)
        return callback

    def once(self, event: EventName, callback: Callback | None = None) -> Callback:
        """Register ``callback`` to run on the next ``event`` only."""
        if callback is None:

            def decorator(function: Callback) -> Callback:
                self.once(event, function)
                return function

            return decorator
        capacity = _positional_capacity(callback)

        def run_once(*args: Any) -> Any:
            self.off(event, run_once)
            return callback(*(args if capacity is None else args[:capacity]))

        self.on(event, run_once)
        return callback

    def off(self, event: EventName, callback: Callback) -> None:
        """Remove ``callback`` from ``event``; unknown callbacks are ignored."""
        listeners = self._listeners.get(event)
        if listeners is not None:
            listeners.pop(callback, None)

    def emit(self, event: EventName, *args: Any) -> None:
        """Call every listener of ``event``; raise the first listener error after all ran."""
        listeners = self._listeners.get(event)
        if not listeners:
            return
        first_error: BaseException | None = None
        for callback, capacity in list(listeners.items()):
            try:
                callback(*(args if capacity is None else args[:capacity]))
            except Exception as error:
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error
