"""The sink claim registry: which live ``AgentPlayout`` drives each output.

Two playouts on one output would each count the other's audio as heard, so a second
one is refused until the first is closed.
"""

from __future__ import annotations

import weakref

from ..errors import PlayoutStateError
from ..sinks.base import is_livekit_source

_SINK_OWNERS: weakref.WeakKeyDictionary[object, weakref.ref[object]] = weakref.WeakKeyDictionary()
"""Which live ``AgentPlayout`` drives each sink (and each ``rtc.AudioSource`` under one)."""


def underlying(audio_source: object, sink: object) -> list[object]:
    """The objects a playout drives: what it was given, its wrapper and, under a LiveKit
    wrapper, the ``rtc.AudioSource`` itself (a new wrapper is made for each playout)."""
    objects = [audio_source, sink]
    for wrapper in (audio_source, sink):
        source = getattr(wrapper, "source", None)
        if source is not None and is_livekit_source(source):
            objects.append(source)
    return objects


def claim(playout: object, objects: list[object]) -> list[object]:
    """Record ``playout`` as the one driver of ``objects``; refuse one already driven.

    Objects that cannot be weakly referenced (or hashed) are not tracked.
    """
    for obj in objects:
        try:
            owner_ref = _SINK_OWNERS.get(obj)
        except TypeError:
            continue
        owner = None if owner_ref is None else owner_ref()
        if owner is not None and owner is not playout:
            raise PlayoutStateError(
                f"{type(obj).__name__} is already driven by another AgentPlayout: two"
                " playouts on one output would each count the other's audio as heard;"
                " aclose() the other one first"
            )
    claimed: list[object] = []
    for obj in objects:
        try:
            _SINK_OWNERS[obj] = weakref.ref(playout)
        except TypeError:
            continue
        claimed.append(obj)
    return claimed


def release_claim(playout: object, objects: list[object]) -> None:
    for obj in objects:
        owner_ref = _SINK_OWNERS.get(obj)
        if owner_ref is not None and owner_ref() is playout:
            del _SINK_OWNERS[obj]
