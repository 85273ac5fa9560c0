"""The two engines behind one small interface, so every workload drives them the same way.

``ours`` is this package (run in the project venv, livekit 1.2.1); ``peer`` is LiveKit
Agents 0.12.21's ``AgentPlayout`` (run in bench/.peer-venv, livekit 1.1.10). Each imports
only its own engine, lazily.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from importlib import metadata
from typing import Any, Protocol

from livekit import rtc

from .common import MinimalForwarder, text_stream


class Engine(Protocol):
    """What a workload needs from an engine."""

    name: str
    import_statement: str
    """What a one-job process imports to run this engine on an rtc source (timed cold)."""

    def versions(self) -> dict[str, str]: ...

    def playout(self, sink: Any) -> Any: ...

    def play(self, playout: Any, item_id: str, audio: AsyncIterable[rtc.AudioFrame]) -> Any: ...

    async def finished(self, handle: Any) -> None: ...

    def rtc_sink(self, source: rtc.AudioSource, queue_size_ms: int) -> Any: ...

    async def ready(self, sink: Any) -> None:
        """Return once ``sink`` can take audio at once, as a session set up at connect is."""

    async def close(self, playout: Any, sink: Any) -> None:
        """Release the playout and the sink as its users do, before the source is closed."""

    def byte_stream(self, samples_per_channel: int) -> Any: ...


def _versions(*packages: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in packages}


def _play(playout: Any, item_id: str, audio: AsyncIterable[rtc.AudioFrame]) -> Any:
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=MinimalForwarder(),
        text_stream=text_stream(),
        audio_stream=audio,
    )


class Ours:
    """agent_playout: exact positions; an ``rtc.AudioSource`` is driven through LiveKitSink."""

    name = "ours"
    import_statement = "import agent_playout, agent_playout.sinks.livekit"

    def __init__(self) -> None:
        import agent_playout
        from agent_playout.sinks.livekit import LiveKitSink

        self._api = agent_playout
        self._livekit_sink = LiveKitSink

    def versions(self) -> dict[str, str]:
        return _versions("agent-playout", "livekit")

    def playout(self, sink: Any) -> Any:
        return self._api.AgentPlayout(audio_source=sink)

    def play(self, playout: Any, item_id: str, audio: AsyncIterable[rtc.AudioFrame]) -> Any:
        return _play(playout, item_id, audio)

    async def finished(self, handle: Any) -> None:
        await handle.wait_for_playout()

    def rtc_sink(self, source: rtc.AudioSource, queue_size_ms: int) -> Any:
        return self._livekit_sink(source, queue_size_ms=queue_size_ms)

    async def ready(self, sink: Any) -> None:
        """The LiveKit sink checks the told queue against the source before its first audio
        (about 0.1 s, more with hundreds at once); a deployment does it at connect."""
        await sink.ready()

    async def close(self, playout: Any, sink: Any) -> None:
        """The sink's cut (its put-off clear and faded tail) finishes before the source goes."""
        await playout.aclose()
        await sink.aclose()

    def byte_stream(self, samples_per_channel: int) -> Any:
        return self._api.AudioByteStream(24000, 1, samples_per_channel)


class Peer:
    """LiveKit Agents 0.12.21's ``multimodal.AgentPlayout``, used as its users use it."""

    name = "peer"
    import_statement = "import livekit.agents.multimodal.agent_playout"

    def __init__(self) -> None:
        from livekit.agents.multimodal import agent_playout
        from livekit.agents.utils.audio import AudioByteStream

        self._module = agent_playout
        self._byte_stream = AudioByteStream

    def versions(self) -> dict[str, str]:
        return _versions("livekit-agents", "livekit")

    def playout(self, sink: Any) -> Any:
        return self._module.AgentPlayout(audio_source=sink)

    def play(self, playout: Any, item_id: str, audio: AsyncIterable[rtc.AudioFrame]) -> Any:
        return _play(playout, item_id, audio)

    async def finished(self, handle: Any) -> None:
        await asyncio.shield(handle._done_fut)

    def rtc_sink(self, source: rtc.AudioSource, queue_size_ms: int) -> Any:
        return source

    async def ready(self, sink: Any) -> None:
        """The source is the peer's sink: it needs no setup."""

    async def close(self, playout: Any, sink: Any) -> None:
        """0.12's ``AgentPlayout`` has no ``aclose()``, and the source is the sink."""

    def byte_stream(self, samples_per_channel: int) -> Any:
        return self._byte_stream(24000, 1, samples_per_channel)


def load(name: str) -> Engine:
    """The engine called ``name`` ("ours" or "peer")."""
    engines: dict[str, type[Ours] | type[Peer]] = {"ours": Ours, "peer": Peer}
    if name not in engines:
        raise ValueError(f"unknown engine {name!r}; choose from {sorted(engines)}")
    return engines[name]()
