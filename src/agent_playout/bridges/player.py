"""The parts a bridge plays, one after another, and what each one's end sends.

``PartPlayer`` owns the queue of parts and the one playing; it fixes what was heard of a
part once (``settle``) and hands its truncation to the sender, and it ends every part,
played or not, in the order the parts began.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..core.frames import AudioFrame
from ..core.truncation import DeleteItem, Truncation, truncation_for
from ..core.units import NS_PER_SECOND
from ..engine.handle import PlayoutHandle
from ..engine.playout import CLEANUP_TIMEOUT_S, AgentPlayout
from ..transcript.forwarder import TranscriptForwarder
from .formats import AudioFormat
from .heard import ItemHeard
from .sender import OrderedSender
from .stream import ItemStream

logger = logging.getLogger("agent_playout")

_REMEMBERED = 1024
"""How many ended items and responses are remembered, to name why a late delta is dropped;
older ones are dropped as unknown instead, so a long session stays bounded."""

Key = tuple[str, int]
"""A part's ``(item_id, content_index)``."""

Emit = Callable[..., None]
"""``emit(event, part, *args)``: the bridge's listeners, guarded."""


V = TypeVar("V")


class Recent(Generic[V]):
    """A bounded map of recent keys to a value each: the oldest is forgotten first."""

    def __init__(self) -> None:
        self._notes: OrderedDict[Any, V] = OrderedDict()

    def add(self, key: Any, value: V) -> None:
        """Remember ``key`` (again, as the newest) with ``value``."""
        self._notes[key] = value
        self._notes.move_to_end(key)
        if len(self._notes) > _REMEMBERED:
            self._notes.popitem(last=False)

    def get(self, key: Any) -> V | None:
        """The value of ``key``, or None once forgotten or never seen."""
        return self._notes.get(key)

    def pop(self, key: Any) -> V | None:
        """Forget ``key``; its value, if it was remembered."""
        return self._notes.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._notes


class Part:
    """One audio content part: its streams, its count of samples received, its handle."""

    def __init__(
        self, item_id: str, content_index: int, response_id: str | None, fmt: AudioFormat
    ) -> None:
        self.item_id = item_id
        self.content_index = content_index
        self.response_id = response_id
        self.format = fmt
        self.audio: ItemStream[AudioFrame] = ItemStream()
        self.text: ItemStream[str] = ItemStream()
        self.received = 0
        self.text_chars = 0
        self.handle: PlayoutHandle | None = None
        self.heard: ItemHeard | None = None
        self.ended_early = False
        """Its audio ended before the server said it was done: the connection closed, or a
        delta could not be played."""
        self.cut_short = False
        """Its audio ended early on our side (a bad delta, audio after its end): the server
        holds more of it than was played, so it is truncated even when it plays out."""

    @property
    def key(self) -> Key:
        """Its ``(item_id, content_index)``."""
        return (self.item_id, self.content_index)

    @property
    def open(self) -> bool:
        """Whether more audio or text may still come."""
        return not (self.audio.closed and self.text.closed)

    def close(self) -> None:
        """End both streams after what they hold: nothing more is taken."""
        self.audio.close()
        self.text.close()


class PartPlayer:
    """Plays queued parts on ``playout`` one at a time and ends each with its truncation."""

    def __init__(
        self,
        playout: AgentPlayout,
        sender: OrderedSender,
        forwarder_for: Callable[[str], TranscriptForwarder | None],
        emit: Emit,
    ) -> None:
        self._playout = playout
        self._sender = sender
        self._forwarder_for = forwarder_for
        self._emit = emit
        self.parts: dict[Key, Part] = {}
        """The parts begun and not yet ended: queued, playing or winding down."""
        self.queue: deque[Part] = deque()
        self.playing: Part | None = None
        self.ended: Recent[ItemHeard] = Recent()
        """What was heard of the parts that ended, by key."""
        self.silent = False
        """True once nothing more can be sent (the server's events ended)."""
        self.closing = False
        self._heard_items: Recent[bool] = Recent()
        self._deleted: Recent[bool] = Recent()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def begin(self, key: Key, response_id: str | None, fmt: AudioFormat) -> Part:
        """A new part, queued to play after those before it."""
        part = Part(key[0], key[1], response_id, fmt)
        self.parts[key] = part
        self.queue.append(part)
        self.idle.clear()
        self._start()
        self.wake()
        return part

    def interrupt(self) -> tuple[ItemHeard | None, set[str]]:
        """Interrupt the playing part and settle the queued ones (each is sent what it
        implies, in order); returns what was heard of the playing one and the responses of
        every part touched."""
        responses: set[str] = set()
        heard: ItemHeard | None = None
        playing = self.playing
        if playing is not None and playing.handle is not None:
            if playing.response_id is not None:
                responses.add(playing.response_id)
            if playing.heard is None:
                playing.handle.interrupt()
                completed = not playing.handle.interrupted and not playing.cut_short
                heard = self.settle(playing, completed=completed)
            playing.close()
        for part in self.queue:  # ended by the player in order, after the playing one
            part.close()
            if part.response_id is not None:
                responses.add(part.response_id)
            self.settle(part, completed=False)
        return heard, responses

    async def close(self) -> None:
        """End every part and wait for the player, for at most the engine's own bound (and
        a second) on the playout's clock; a player still waiting then is cancelled."""
        self.closing = True
        for part in list(self.parts.values()):
            part.close()
        self.wake()
        task = self._task
        if task is None or task.done():
            return
        clock = self._playout.clock
        deadline = clock.now_ns() + round((CLEANUP_TIMEOUT_S + 1.0) * NS_PER_SECOND)

        def give_up() -> None:
            logger.error("the bridge's player did not end after its parts were closed")
            task.cancel()

        timer = clock.call_at(deadline, give_up)
        try:
            await asyncio.wait([task])
        finally:
            timer.cancel()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._play_parts())
            self._task.add_done_callback(_log_player_failure)

    def wake(self) -> None:
        """Let the player look at the queue again (a part was queued, or it should stop)."""
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _play_parts(self) -> None:
        try:
            while True:
                while not self.queue:
                    self.idle.set()
                    if self.closing:
                        return
                    self._wake = asyncio.get_running_loop().create_future()
                    await self._wake
                part = self.queue.popleft()
                if part.heard is None:
                    await self._play(part)
                else:
                    self.end(part, completed=False)
        finally:
            self._finish_all()

    async def _play(self, part: Part) -> None:
        try:
            forwarder = self._forwarder_for(part.item_id)
            handle = self._playout.play(
                item_id=part.item_id,
                content_index=part.content_index,
                transcription_fwd=forwarder,
                text_stream=part.text,
                audio_stream=part.audio,
            )
        except Exception:
            logger.exception(
                "item %s: its forwarder or play() failed; the item is not played",
                part.item_id,
                extra={"item_id": part.item_id},
            )
            part.close()
            self.end(part, completed=False)
            return
        part.handle = handle
        self.playing = part
        try:
            self._emit("item_started", part, handle, forwarder)
            await handle.wait_for_playout()
        finally:
            self.playing = None
            try:
                if not handle.done():  # a listener's BaseException left it playing
                    handle.interrupt()
            finally:
                self.end(part, completed=not handle.interrupted and not part.cut_short)

    def settle(self, part: Part, *, completed: bool) -> ItemHeard:
        """Fix what was heard of ``part`` and send its truncation; once per part."""
        if part.heard is not None:
            return part.heard
        handle = part.handle
        heard_samples = 0 if handle is None else min(handle.input_played_samples, part.received)
        truncation: Truncation | None = None
        if not completed:
            truncation = truncation_for(
                item_id=part.item_id,
                content_index=part.content_index,
                heard_samples=heard_samples,
                sent_samples=part.received,
                completed=False,
                sample_rate=part.format.sample_rate,
            )
        if isinstance(truncation, DeleteItem):
            if not self._may_delete(part):
                truncation = None
        elif heard_samples:
            self._heard_items.add(part.item_id, True)
        if self.silent:
            truncation = None  # nothing can be sent: ItemHeard says what was
        part.heard = ItemHeard(
            item_id=part.item_id,
            content_index=part.content_index,
            response_id=part.response_id,
            sample_rate=part.format.sample_rate,
            received_samples=part.received,
            heard_samples=heard_samples,
            heard_text="" if handle is None else handle.played_text,
            interrupted=not completed if handle is None else handle.interrupted,
            truncation=truncation,
            ended_early=part.ended_early,
        )
        self.ended.add(part.key, part.heard)
        if truncation is not None:
            if isinstance(truncation, DeleteItem):
                self._deleted.add(part.item_id, True)
            self._sender.send(truncation.to_event(), part.heard)
        return part.heard

    def truncate_late(self, heard: ItemHeard) -> None:
        """Audio came for a part that had already played out: the server holds more than
        was heard, so cut it to what was (once per part)."""
        if heard.interrupted or heard.truncation is not None or self.silent:
            return
        truncation = truncation_for(
            item_id=heard.item_id,
            content_index=heard.content_index,
            heard_samples=heard.heard_samples,
            sent_samples=heard.received_samples,
            completed=False,
            sample_rate=heard.sample_rate,
        )
        if truncation is None or (
            isinstance(truncation, DeleteItem) and heard.item_id in self._deleted
        ):
            return
        late = dataclasses.replace(heard, truncation=truncation)
        self.ended.add((heard.item_id, heard.content_index), late)
        self._sender.send(truncation.to_event(), late)

    def _may_delete(self, part: Part) -> bool:
        """Whether deleting ``part``'s item is true to what was heard: not when it is
        already deleted, nor when another of its parts was heard (a truncate to 0 ms would
        be refused, so that part stays; it is logged)."""
        if part.item_id in self._deleted:
            return False
        if part.item_id in self._heard_items:
            logger.warning(
                "item %s: content %d was never heard, but an earlier part was; it stays",
                part.item_id,
                part.content_index,
                extra={"item_id": part.item_id},
            )
            return False
        return True

    def delete(self, item_id: str) -> None:
        """Delete an item none of whose parts played (one that came after a barge-in)."""
        if item_id in self._deleted or item_id in self._heard_items or self.silent:
            return
        self._deleted.add(item_id, True)
        self._sender.send(DeleteItem(item_id).to_event(), None)

    def end(self, part: Part, *, completed: bool) -> None:
        """Settle ``part``, forget it and tell the listeners it ended."""
        heard = self.settle(part, completed=completed)
        self.parts.pop(part.key, None)
        self._emit("item_ended", part, heard)

    def _finish_all(self) -> None:
        """The player's last act, however it ended: no part is left waiting, even when a
        listener raises a ``BaseException`` (raised once all have ended)."""
        self.playing = None
        escaped: BaseException | None = None
        try:
            while self.queue:
                part = self.queue.popleft()
                part.close()
                try:
                    self.end(part, completed=False)
                except BaseException as error:
                    escaped = escaped or error
        finally:
            self.idle.set()
        if escaped is not None:
            raise escaped


def _log_player_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the bridge's player failed", exc_info=task.exception())
