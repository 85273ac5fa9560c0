"""``RealtimeBridge``: a realtime model's server events in, playouts out, truncations back.

Each audio content part of an assistant item, keyed by ``item_id`` and ``content_index``,
becomes one ``AgentPlayout.play()``; parts play one after another in the order the server
began them. On a barge-in (the server's ``input_audio_buffer.speech_started``, or
``interrupt()``) the playing part is interrupted and its truncation is sent in the same
event-loop turn, from the exact heard position: ``conversation.item.truncate`` floored to
the whole millisecond and never past the audio received, ``conversation.item.delete``
when nothing was heard, nothing when it had played to the end.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, Literal

from ..clock import TimerHandle
from ..core.frames import AudioFrame
from ..core.timeline import ItemState
from ..core.units import NS_PER_SECOND
from ..engine.handle import PlayoutHandle
from ..engine.playout import AgentPlayout
from ..errors import PlayoutStateError
from ..events import EventEmitter
from ..transcript.forwarder import TranscriptForwarder
from . import events as names
from .events import BadEvent, index_field, object_field, optional_text, text_field
from .formats import AudioFormat, UnsupportedFormatError, decode_audio, output_format_of
from .heard import ItemHeard
from .player import Key, Part, PartPlayer, Recent
from .sender import OrderedSender, Send

__all__ = ["BridgeEvents", "RealtimeBridge"]

logger = logging.getLogger("agent_playout")

BridgeEvents = Literal["item_started", "item_ended"]

SEND_FLUSH_TIMEOUT_S = 2.0
"""How long ``aclose()`` waits for client events still being sent."""


class _Suspicion:
    """A barge-in held as a pause until the user's turn proves real or not."""

    def __init__(self, part: Part, user_item: str | None) -> None:
        self.part = part
        self.user_item = user_item
        """The user item ``speech_started`` named: only its transcript decides."""
        self.stopped = False
        """Whether ``speech_stopped`` came: before it, the user may still be speaking."""
        self.timer: TimerHandle | None = None

    def concerns(self, event: Mapping[str, Any]) -> bool:
        """Whether a user-transcript event is about this turn (not a late earlier one)."""
        item_id = event.get("item_id")
        return self.user_item is None or not isinstance(item_id, str) or item_id == self.user_item

    def disarm(self) -> None:
        """Cancel the timer that would resume the output."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _default_forwarder(item_id: str) -> TranscriptForwarder:
    return TranscriptForwarder()


class RealtimeBridge(EventEmitter[BridgeEvents]):
    """Plays a realtime model's responses on ``playout`` and keeps the model's context true
    to what was heard, by handing each truncation to ``send``.

    ``send(event, heard)`` gets every client event the bridge makes: a truncation with the
    ``ItemHeard`` of its item (which has the heard text), ``response.cancel`` with None. It
    is called in the turn of the barge-in, in order; an awaitable it returns is started then.
    ``item_started(handle, forwarder)`` is emitted as a part starts to play,
    ``item_ended(heard)`` once it has ended, for every part received, played or not.

    With ``false_interruption_timeout`` (seconds), ``speech_started`` pauses the output
    instead; if no user transcript comes within that time after ``speech_stopped``, the
    part resumes from the exact sample, otherwise it is interrupted (and truncated) where
    it paused. The output must be able to pause; one that cannot is interrupted at once.
    """

    def __init__(
        self,
        playout: AgentPlayout,
        send: Send,
        *,
        output_format: AudioFormat = AudioFormat.PCM16,
        false_interruption_timeout: float | None = None,
        transcript: Callable[[str], TranscriptForwarder | None] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(playout, AgentPlayout):
            raise TypeError(f"playout must be an AgentPlayout, got {type(playout).__name__}")
        if not callable(send):
            raise TypeError(f"send must be callable, got {type(send).__name__}")
        if not isinstance(output_format, AudioFormat):
            raise TypeError(f"output_format must be an AudioFormat, got {output_format!r}")
        if false_interruption_timeout is not None and not (
            isinstance(false_interruption_timeout, int | float)
            and not isinstance(false_interruption_timeout, bool)
            and math.isfinite(false_interruption_timeout)
            and false_interruption_timeout > 0
        ):
            raise ValueError(
                "false_interruption_timeout must be a number of seconds > 0 or None,"
                f" got {false_interruption_timeout!r}"
            )
        self._playout = playout
        self._sender = OrderedSender(send, playout.clock)
        self._format = output_format
        self._format_error: str | None = None
        self._false_timeout_ns = (
            None
            if false_interruption_timeout is None
            else round(false_interruption_timeout * NS_PER_SECOND)
        )
        self._player = PartPlayer(
            playout, self._sender, transcript or _default_forwarder, self._emit
        )
        self._announced: Recent[str] = Recent()
        """Assistant items the server announced, with their response ("" for none)."""
        self._dropped: Recent[bool] = Recent()
        self._cut: Recent[bool] = Recent()
        """Responses a barge-in cut: their parts still to come are dropped."""
        self._finished: Recent[bool] = Recent()
        """Responses and items whose done event came: ("response", id), ("item", id)."""
        self._deferred: Recent[list[str]] = Recent()
        """Items of a cut response that came after the cut, deleted at its response.done."""
        self._closed: asyncio.Future[None] | None = None
        self._response: str | None = None
        self._suspicion: _Suspicion | None = None
        self._cannot_pause_said = False

    @property
    def output_format(self) -> AudioFormat:
        """The format new parts are decoded in: the last session event's, else the given one."""
        return self._format

    @property
    def current(self) -> PlayoutHandle | None:
        """The handle of the part playing now, if any."""
        playing = self._player.playing
        return None if playing is None else playing.handle

    @property
    def paused(self) -> bool:
        """True while a barge-in is held as a possible false interruption."""
        return self._suspicion is not None

    def handle(self, event: Mapping[str, Any]) -> None:
        """Act on one server event (a parsed JSON object). A malformed one is logged with
        its type and the field at fault, and dropped; this never raises for the server's
        input."""
        if self._player.closing:
            return
        if not isinstance(event, Mapping):
            logger.warning("dropped a server event that is not an object: %.80r", event)
            return
        kind = event.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return
        try:
            handler(self, event)
        except BadEvent as error:
            logger.warning("dropped a server event: %s", error)

    async def run(self, events: AsyncIterable[Mapping[str, Any]]) -> None:
        """Handle every event of ``events`` (a connection's), then, once it ends, let the
        parts already received play out; returns when they have."""
        try:
            async for event in events:
                self.handle(event)
        except asyncio.CancelledError:
            raise  # the caller stopped reading: the connection may still be open
        except BaseException:
            self._end_of_stream()
            raise
        self._end_of_stream()
        await self.wait_idle()

    def interrupt(self) -> ItemHeard | None:
        """The application's barge-in: cancel the response in progress, interrupt the part
        playing and send its truncation, all before this returns. Returns what was heard
        of that part, or None when none was playing."""
        response = self._response
        if response is not None and response not in self._cut and not self._player.silent:
            self._sender.send({"type": "response.cancel"}, None)
        return self._barge_in()

    async def wait_idle(self) -> None:
        """Return once every part received so far has ended."""
        await self._player.idle.wait()

    async def aclose(self) -> None:
        """Interrupt what is playing (truncating it), end every part, and wait for the
        client events still being sent; the playout stays the caller's to close. A
        cancelled ``aclose()`` goes on closing; another call waits for it."""
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closed)

    async def _close(self) -> None:
        try:
            self.interrupt()
        finally:
            await self._player.close()
            await self._sender.flush(SEND_FLUSH_TIMEOUT_S)

    # -- server events -------------------------------------------------------------------

    def _on_session(self, event: Mapping[str, Any]) -> None:
        session = object_field(event, "session")
        try:
            found = output_format_of(session)
        except UnsupportedFormatError as error:
            self._format_error = str(error)
            logger.error("the session's output cannot be played: %s; its audio is dropped", error)
            return
        if found is not None:
            self._format = found
            self._format_error = None

    def _on_response_created(self, event: Mapping[str, Any]) -> None:
        response = object_field(event, "response")
        if self._suspicion is not None:
            self._confirm("the model began a new response")
        self._response = optional_text(response, "id")

    def _on_output_item_added(self, event: Mapping[str, Any]) -> None:
        item = object_field(event, "item")
        if _is_assistant_message(item):
            self._announce(text_field(item, "id"), optional_text(event, "response_id"))

    def _on_item_added(self, event: Mapping[str, Any]) -> None:
        item = object_field(event, "item")
        if _is_assistant_message(item):
            item_id = text_field(item, "id")
            if item_id not in self._announced:
                self._announce(item_id, self._response)

    def _on_content_part_added(self, event: Mapping[str, Any]) -> None:
        part = event.get("part")
        kind = part.get("type") if isinstance(part, Mapping) else None
        if isinstance(kind, str) and kind in names.TEXT_PARTS:
            return
        item_id = text_field(event, "item_id")
        if item_id not in self._announced:
            self._announce(item_id, optional_text(event, "response_id") or self._response)
        self._part_for(event)

    def _on_audio_delta(self, event: Mapping[str, Any]) -> None:
        part = self._part_for(event, audio=True)
        if part is None:
            return
        if part.audio.closed:
            if part.heard is not None and part.heard.interrupted:
                self._drop(part.key, "it was interrupted")
            else:  # the server holds more of it than will play: truncate it at its end
                part.cut_short = True
                self._drop(part.key, "its audio had ended; it is truncated to what played")
            return
        if self._format_error is not None:
            self._cut_short(part, f"the session's output cannot be played ({self._format_error})")
            return
        try:
            samples = decode_audio(event.get("delta"), part.format)
        except ValueError as error:
            self._cut_short(part, f"{event.get('type')} field delta: {error}")
            return
        count = int(samples.size)
        if count:
            part.received += count
            part.audio.put(AudioFrame(samples, part.format.sample_rate, 1, count))

    def _on_audio_done(self, event: Mapping[str, Any]) -> None:
        part = self._player.parts.get(_key_of(event))
        if part is not None:
            part.audio.close()

    def _on_transcript_delta(self, event: Mapping[str, Any]) -> None:
        delta = event.get("delta")
        if not isinstance(delta, str):
            raise BadEvent(f"{event.get('type')} has no delta text")
        part = self._part_for(event)
        if part is not None and delta:
            part.text_chars += len(delta)
            part.text.put(delta)

    def _on_transcript_done(self, event: Mapping[str, Any]) -> None:
        part = self._player.parts.get(_key_of(event))
        if part is None:
            return
        transcript = event.get("transcript")
        if part.text_chars == 0 and isinstance(transcript, str) and transcript:
            part.text.put(transcript)  # a server that sends the transcript whole
        part.text.close()

    def _on_content_part_done(self, event: Mapping[str, Any]) -> None:
        part = self._player.parts.get(_key_of(event))
        if part is not None:
            part.close()

    def _on_output_item_done(self, event: Mapping[str, Any]) -> None:
        item = object_field(event, "item")
        item_id = optional_text(item, "id")
        if item_id is not None:
            self._finished.add(("item", item_id), True)
        for part in list(self._player.parts.values()):
            if part.item_id == item_id:
                part.close()

    def _on_response_done(self, event: Mapping[str, Any]) -> None:
        response = object_field(event, "response")
        response_id = optional_text(response, "id")
        status = response.get("status")
        for part in list(self._player.parts.values()):
            if part.response_id == response_id and part.open:
                if status not in (None, "completed"):
                    logger.info(
                        "item %s: response %s ended %s; the item ends with the %d ms received",
                        part.item_id,
                        response_id,
                        status,
                        part.received * 1000 // part.format.sample_rate,
                        extra={"item_id": part.item_id},
                    )
                part.close()
        if response_id is not None:
            self._finished.add(("response", response_id), True)
        if response_id == self._response:
            self._response = None
        for item_id in self._deferred.pop(response_id) or ():
            self._player.delete(item_id)

    def _on_speech_started(self, event: Mapping[str, Any]) -> None:
        suspicion = self._suspicion
        if suspicion is not None:
            suspicion.disarm()
            return
        playing = self._player.playing
        if (
            self._false_timeout_ns is None
            or playing is None
            or playing.handle is None
            or playing.heard is not None
            or playing.handle.state is not ItemState.PLAYING
        ):
            self._barge_in()
            return
        try:
            self._playout.pause()
        except PlayoutStateError as error:
            if not self._cannot_pause_said:
                self._cannot_pause_said = True
                logger.warning("%s: a barge-in interrupts at once instead of pausing", error)
            self._barge_in()
            return
        self._suspicion = _Suspicion(playing, optional_text(event, "item_id"))
        logger.info(
            "item %s: paused at sample %d: the user may be speaking",
            playing.item_id,
            playing.handle.input_played_samples,
            extra={"item_id": playing.item_id},
        )

    def _on_speech_stopped(self, event: Mapping[str, Any]) -> None:
        suspicion = self._suspicion
        if suspicion is None or self._false_timeout_ns is None:
            return
        suspicion.disarm()
        suspicion.stopped = True
        clock = self._playout.clock
        suspicion.timer = clock.call_at(clock.now_ns() + self._false_timeout_ns, self._false_alarm)

    def _on_user_transcript(self, event: Mapping[str, Any]) -> None:
        suspicion = self._suspicion
        if suspicion is None or not suspicion.concerns(event):
            return
        text = event.get("delta", event.get("transcript"))
        if isinstance(text, str) and text.strip():
            self._confirm("the user's speech was transcribed")
        elif suspicion.stopped and str(event.get("type")).endswith(".completed"):
            self._false_alarm()

    def _on_error(self, event: Mapping[str, Any]) -> None:
        error = event.get("error")
        details = error if isinstance(error, Mapping) else {}
        logger.warning(
            "the realtime server reported an error: %s: %s (in reply to %s)",
            details.get("code") or details.get("type") or "error",
            details.get("message", "no message"),
            details.get("event_id") or "no client event",
        )

    # -- parts ---------------------------------------------------------------------------

    def _announce(self, item_id: str, response_id: str | None) -> None:
        self._announced.add(item_id, response_id or "")

    def _part_for(self, event: Mapping[str, Any], *, audio: bool = False) -> Part | None:
        """The part an event is about, begun if its item was announced; None (and one log
        line for the part) when its deltas must be dropped. Audio for a part that played
        out means the server holds more than was heard: that part is truncated."""
        key = _key_of(event)
        part = self._player.parts.get(key)
        if part is not None:
            return part
        ended = self._player.ended.get(key)
        if ended is not None:
            if audio and key not in self._dropped:
                self._player.truncate_late(ended)
            self._drop(key, "it was interrupted" if ended.interrupted else "it had ended")
            return None
        response_id = self._announced.get(key[0])
        if response_id is None:
            self._drop(key, "no response.output_item.added announced its item")
            return None
        if ("item", key[0]) in self._finished or ("response", response_id) in self._finished:
            self._drop(key, "its item or response was already done")
            return None
        if response_id in self._cut:
            self._drop(key, f"its response {response_id} was cut by a barge-in")
            later = self._deferred.get(response_id)
            if later is None:
                later = []
                self._deferred.add(response_id, later)
            if key[0] not in later:
                later.append(key[0])
            return None
        return self._begin(key, response_id or None)

    def _begin(self, key: Key, response_id: str | None) -> Part:
        """Queue a new part; one still open is ended first (the server sends parts one
        after another, so it will get no more)."""
        for other in list(self._player.parts.values()):
            if other.open:
                logger.warning(
                    "item %s: item %s began before its done events; it ends with what came",
                    other.item_id,
                    key[0],
                    extra={"item_id": other.item_id},
                )
                other.close()
        return self._player.begin(key, response_id, self._format)

    def _drop(self, key: Key, why: str) -> None:
        if key in self._dropped:
            return
        self._dropped.add(key, True)
        logger.warning(
            "item %s: dropped its deltas (content %d), never played: %s",
            key[0],
            key[1],
            why,
            extra={"item_id": key[0]},
        )

    def _cut_short(self, part: Part, why: str) -> None:
        logger.error(
            "item %s: its audio stops here, after %d ms: %s",
            part.item_id,
            part.received * 1000 // part.format.sample_rate,
            why,
            extra={"item_id": part.item_id},
        )
        part.cut_short = True
        part.ended_early = True
        part.audio.close()

    def _emit(self, event: BridgeEvents, part: Part, *args: Any) -> None:
        """Emit to the application's listeners from the player's task, where no caller can
        take an error: any a listener raises is logged with the item (only an interrupt
        of the process or a cancellation goes on), and the parts play on."""
        try:
            self.emit(event, *args)
        except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
            raise
        except BaseException:
            logger.exception(
                "item %s: an %s listener failed",
                part.item_id,
                event,
                extra={"item_id": part.item_id},
            )

    # -- barge-in ------------------------------------------------------------------------

    def _barge_in(self) -> ItemHeard | None:
        """Interrupt the playing part and drop the queued ones, sending what each implies.
        A held pause ends after the interrupt, so not a sample plays in between."""
        suspicion, self._suspicion = self._suspicion, None
        try:
            heard, responses = self._player.interrupt()
        finally:
            if suspicion is not None:
                suspicion.disarm()
                self._playout.resume()
        if self._response is not None:
            responses.add(self._response)
        for response_id in responses:
            self._cut.add(response_id, True)
        return heard

    # -- false interruptions -------------------------------------------------------------

    def _confirm(self, why: str) -> None:
        """The held barge-in was real: interrupt where the output paused."""
        suspicion = self._suspicion
        if suspicion is None:
            return
        logger.info(
            "item %s: the barge-in was real (%s)",
            suspicion.part.item_id,
            why,
            extra={"item_id": suspicion.part.item_id},
        )
        self.interrupt()  # a session that keeps responses on speech needs the cancel

    def _false_alarm(self) -> None:
        """No user turn came: play on from the sample where the output paused."""
        suspicion = self._suspicion
        if suspicion is None:
            return
        handle = suspicion.part.handle
        logger.info(
            "item %s: a false interruption; resumed at sample %d",
            suspicion.part.item_id,
            0 if handle is None else handle.input_played_samples,
            extra={"item_id": suspicion.part.item_id},
        )
        self._end_suspicion()

    def _end_suspicion(self) -> None:
        """Leave the held state: the timer is disarmed and the output resumes (after an
        interrupt, the next part then plays)."""
        suspicion = self._suspicion
        if suspicion is None:
            return
        self._suspicion = None
        suspicion.disarm()
        self._playout.resume()

    def _end_of_stream(self) -> None:
        """The server's events ended (the connection closed): open parts end with what was
        received, and nothing more can be sent."""
        self._player.silent = True
        self._end_suspicion()
        for part in list(self._player.parts.values()):
            if part.open:
                logger.warning(
                    "item %s: the connection closed mid-item; it ends with the %d ms received",
                    part.item_id,
                    part.received * 1000 // part.format.sample_rate,
                    extra={"item_id": part.item_id},
                )
                part.ended_early = True
                part.close()


def _key_of(event: Mapping[str, Any]) -> Key:
    return (text_field(event, "item_id"), index_field(event))


def _is_assistant_message(item: Mapping[str, Any]) -> bool:
    return bool(
        item.get("type", "message") == "message" and item.get("role") in (None, "assistant")
    )


_Handler = Callable[[RealtimeBridge, Mapping[str, Any]], None]

_HANDLERS: dict[str, _Handler] = {
    **dict.fromkeys(names.SESSION, RealtimeBridge._on_session),
    "response.created": RealtimeBridge._on_response_created,
    "response.output_item.added": RealtimeBridge._on_output_item_added,
    **dict.fromkeys(names.ITEM_ADDED, RealtimeBridge._on_item_added),
    "response.content_part.added": RealtimeBridge._on_content_part_added,
    **dict.fromkeys(names.AUDIO_DELTA, RealtimeBridge._on_audio_delta),
    **dict.fromkeys(names.AUDIO_DONE, RealtimeBridge._on_audio_done),
    **dict.fromkeys(names.TRANSCRIPT_DELTA, RealtimeBridge._on_transcript_delta),
    **dict.fromkeys(names.TRANSCRIPT_DONE, RealtimeBridge._on_transcript_done),
    "response.content_part.done": RealtimeBridge._on_content_part_done,
    "response.output_item.done": RealtimeBridge._on_output_item_done,
    "response.done": RealtimeBridge._on_response_done,
    "input_audio_buffer.speech_started": RealtimeBridge._on_speech_started,
    "input_audio_buffer.speech_stopped": RealtimeBridge._on_speech_stopped,
    **dict.fromkeys(names.USER_TRANSCRIPT, RealtimeBridge._on_user_transcript),
    "error": RealtimeBridge._on_error,
}
