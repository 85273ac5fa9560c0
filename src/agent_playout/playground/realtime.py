"""``--realtime URL``: a tab's responses come from a realtime model, played through the
realtime bridge onto the tab's own playout (extra ``[realtime]`` besides ``[playground]``).

Each tab gets its own connection once its peer connection is up. Speak asks the model for a
response, with the page's text as that response's instructions; the bridge plays each item
the model sends, and on Interrupt cancels the response and sends the model the truncation
at what the browser played. The connection ending ends nothing else: the tab is told, and
its session goes on without a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..bridges import ItemHeard, RealtimeBridge
from ..bridges.formats import AudioFormat, Dialect, session_update
from ..engine.handle import PlayoutHandle
from ..engine.playout import AgentPlayout
from ..transcript.forwarder import TranscriptForwarder

if TYPE_CHECKING:
    from ..bridges.connection import RealtimeConnection

logger = logging.getLogger("agent_playout")

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RealtimeTarget:
    """Where each tab's model is: its URL, the handshake's headers, the session's
    instructions, and the event shapes it speaks."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    instructions: str | None = None
    dialect: Dialect = "ga"


class ModelVoice:
    """One tab's realtime model: its connection, and the bridge that plays its items on
    the tab's playout, telling the session as each item starts and ends."""

    def __init__(
        self,
        target: RealtimeTarget,
        playout: AgentPlayout,
        label: str,
        *,
        started: Callable[[PlayoutHandle, TranscriptForwarder | None], None],
        ended: Callable[[ItemHeard], None],
        gone: Callable[[str], None],
    ) -> None:
        self._target = target
        self._label = label
        self._gone = gone
        self._connection: RealtimeConnection | None = None
        self._listening: asyncio.Task[None] | None = None
        self._bridge = RealtimeBridge(
            playout, self._send, transcript=lambda item_id: TranscriptForwarder(record_words=True)
        )
        self._bridge.on("item_started", started)
        self._bridge.on("item_ended", ended)

    @property
    def ready(self) -> bool:
        return self._listening is not None and not self._listening.done()

    async def start(self) -> None:
        """Connect, ask for 24 kHz PCM16 audio, and play what the model sends;
        ``RealtimeConnectionError`` (or ``TimeoutError``) if the model cannot be reached."""
        from ..bridges.connection import connect_realtime

        target = self._target
        self._connection = await asyncio.wait_for(
            connect_realtime(target.url, headers=target.headers), CONNECT_TIMEOUT_S
        )
        await self._connection.send(
            session_update(
                dialect=target.dialect,
                output_format=AudioFormat.PCM16,
                instructions=target.instructions,
            )
        )
        self._listening = asyncio.create_task(self._listen(self._connection))
        logger.info("%s: connected to the realtime model", self._label)

    async def _listen(self, connection: RealtimeConnection) -> None:
        try:
            await self._bridge.run(connection)
        except Exception as error:  # the connection failed: the session goes on without it
            logger.warning("%s: the realtime model's connection failed: %s", self._label, error)
            self._gone(f"the realtime model's connection failed: {error}")
            return
        logger.info("%s: the realtime model closed the connection", self._label)
        self._gone("the realtime model closed the connection")

    async def _send(self, event: dict[str, object], heard: object = None) -> None:
        if self._connection is not None:
            await self._connection.send(event)

    async def respond(self, instructions: str) -> None:
        """Ask for a response, with ``instructions`` for it."""
        if self._connection is None:
            raise RuntimeError(f"{self._label}: not connected to the realtime model")
        await self._connection.send(
            {"type": "response.create", "response": {"instructions": instructions}}
        )

    def interrupt(self) -> None:
        """Cut the item playing: ``response.cancel`` and its truncation go to the model now."""
        self._bridge.interrupt()

    async def aclose(self) -> None:
        """Cut what plays, close the bridge and the connection (each bounded)."""
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._bridge.aclose(), CLOSE_TIMEOUT_S)
        finally:
            if self._connection is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._connection.aclose(), CLOSE_TIMEOUT_S)
            if self._listening is not None:
                self._listening.cancel()
                await asyncio.gather(self._listening, return_exceptions=True)
