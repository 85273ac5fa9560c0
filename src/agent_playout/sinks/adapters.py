"""Adapters that make other outputs into sinks the engine can drive, found by type name.

An adapter is registered under the qualified name of the type it adapts (``module.Class``),
so finding one never imports the output's library: a plain ``rtc.AudioSource`` gets the
LiveKit adapter, and nobody else's process imports livekit. An adapter may be named as
``"module:attribute"``, imported when an object of its type first comes. A third-party
output registers its own the same way, with ``register_adapter``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

Adapter = Callable[[Any], object]
"""Makes, from the output it adapts, a sink that reports its position (a ``PositionedSink``)."""

LIVEKIT_SOURCE = "livekit.rtc.audio_source.AudioSource"
"""The qualified name of ``livekit.rtc.AudioSource``, which the ``[livekit]`` extra adapts."""

_adapters: dict[str, Adapter | str] = {LIVEKIT_SOURCE: "agent_playout.sinks.livekit:LiveKitSink"}


def register_adapter(type_name: str, adapter: Adapter | str) -> None:
    """Adapt objects of the type named ``type_name`` (or of its subclasses) with ``adapter``.

    ``type_name`` is ``f"{cls.__module__}.{cls.__qualname__}"``; ``adapter`` is a callable, or
    its ``"module:attribute"`` path. A later registration for the same name replaces it.
    """
    if isinstance(adapter, str) and adapter.count(":") != 1:
        raise ValueError(f"an adapter path is 'module:attribute', got {adapter!r}")
    _adapters[type_name] = adapter


def type_names(obj: object) -> Iterator[str]:
    """The qualified names of ``obj``'s type and its bases, nearest first."""
    for cls in type(obj).__mro__:
        yield f"{cls.__module__}.{cls.__qualname__}"


def adapter_for(obj: object) -> Adapter | None:
    """The adapter registered for ``obj``'s type or its nearest base, or None."""
    for name in type_names(obj):
        adapter = _adapters.get(name)
        if adapter is None:
            continue
        if isinstance(adapter, str):
            module, _, attribute = adapter.partition(":")
            adapter = _adapters[name] = getattr(importlib.import_module(module), attribute)
        return adapter
    return None
