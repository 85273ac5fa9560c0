"""One browser tab's session: its peer connection, its ``WebRtcSink`` and ``AgentPlayout``,
the responses it speaks, their captions and their reports.

The page's audio arrives over WebRTC; everything else (what to say, the interrupt, the
captions, the reports) goes over the tab's WebSocket as JSON (``messages``). Captions follow
the engine's transcript forwarder, which follows ``sink.samples_played``: the position the
browser itself reported playing out. Each caption carries that position, so the page (and
the tests) can check that no caption ran ahead of the browser.

Every wait on the peer is bounded and every path releases what the session holds: the tab
closing, the socket dying and the server stopping all end in ``aclose()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from ..bridges import ItemHeard
from ..cli.model_stream import speak, voice_pieces
from ..cli.plot import timeline_png
from ..engine.handle import PlayoutHandle
from ..engine.playout import AgentPlayout
from ..engine.report import PlayoutReport
from ..sinks.webrtc import ReportError, Settlement, WebRtcSink, parse_report
from ..transcript.forwarder import TranscriptForwarder
from ..transcript.sentences import TranscriptSegment
from ..tts import Voice
from .messages import Interrupt, MessageError, Offer, parse_page_message
from .realtime import ModelVoice, RealtimeTarget
from .reports import caption_message, report_message

logger = logging.getLogger("agent_playout")

STATS_CHANNEL = "receiver-stats"
"""The label of the data channel the page sends its receiver reports on (the contract's)."""
CLOSE_TIMEOUT_S = 5.0
"""The longest a session waits for its items, its playout and its peer connection to end."""
OFFER_TIMEOUT_S = 10.0
"""The longest the answer to an offer may take (aiortc gathers its candidates first)."""
MAX_ITEMS_IN_FLIGHT = 4
"""Items a session may have started and not yet reported (a new one cuts the one playing,
which still settles and reports): a page that floods Speak is refused beyond them."""
PLOTS_KEPT = 20
"""Timeline PNGs kept per session (the page fetches each once, right after its report)."""

Send = Callable[[dict[str, Any]], Awaitable[None]]


class OfferError(ValueError):
    """The page's offer could not be answered: malformed SDP, or a second offer."""


class Session:
    """One tab: one peer connection, one sink, one playout, its items one after another,
    spoken by the offline ``voice`` or, with ``realtime``, by a realtime model."""

    def __init__(
        self,
        session_id: str,
        send: Send,
        *,
        voice: Voice | None = None,
        realtime: RealtimeTarget | None = None,
    ) -> None:
        if (voice is None) == (realtime is None):
            raise ValueError("a session speaks with a voice or a realtime model: give one")
        self.session_id = session_id
        self._voice = voice
        self._send = send
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())
        self.sink = WebRtcSink(num_channels=1, label=f"session {session_id}")
        self.playout = AgentPlayout(audio_source=self.sink)
        self._pc = self._new_peer_connection()
        self._model = (
            None
            if realtime is None
            else ModelVoice(
                realtime,
                self.playout,
                f"session {session_id}",
                started=self._model_started,
                ended=self._model_ended,
                gone=self._model_gone,
            )
        )
        self._model_items: dict[
            tuple[str, int], tuple[PlayoutHandle, TranscriptForwarder | None, Settlement | None]
        ] = {}
        self._answered = False
        self._report_seq: int | None = None
        self._items = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.plots: dict[str, bytes] = {}
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()
        """Set once the session has closed (the tab went away, or the server stopped)."""
        logger.info("session %s: opened", session_id)

    @property
    def closed(self) -> bool:
        return self._closed

    async def answer(self, offer: Offer) -> RTCSessionDescription:
        """Answer the page's offer with the sink's track; ``OfferError`` if it cannot be
        (the session then takes another offer, on a fresh peer connection)."""
        if self._closed:
            raise OfferError("the session is closed")
        if self._answered:
            raise OfferError("this session already has a peer connection; open a new tab")
        self._answered = True
        try:
            await asyncio.wait_for(self._negotiate(offer), OFFER_TIMEOUT_S)
        except Exception as error:
            await self._replace_peer_connection()
            self._answered = False
            if isinstance(error, OfferError):
                raise
            if isinstance(error, asyncio.TimeoutError):
                raise OfferError(f"no answer within {OFFER_TIMEOUT_S:.0f} s") from None
            # aiortc's SDP parser raises several kinds of error on bad input
            raise OfferError(f"malformed SDP: {type(error).__name__}: {error}") from None
        logger.info("session %s: answered the page's offer", self.session_id)
        if self._model is not None:
            self._spawn(self._connect_model(self._model))
        return self._pc.localDescription

    def _new_peer_connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback: no STUN
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)
        return pc

    async def _replace_peer_connection(self) -> None:
        old, self._pc = self._pc, self._new_peer_connection()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(old.close(), CLOSE_TIMEOUT_S)

    async def _negotiate(self, offer: Offer) -> None:
        pc = self._pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        if not any(t.kind == "audio" for t in pc.getTransceivers()):
            raise OfferError("the offer has no audio section to send the voice in")
        pc.addTrack(self.sink.track)
        await pc.setLocalDescription(await pc.createAnswer())

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == STATS_CHANNEL:
            self.sink.attach_channel(channel)
            channel.on("message", self._saw_report)
            return
        logger.warning(
            "session %s: ignored a data channel labelled %r (only %r is used)",
            self.session_id,
            channel.label,
            STATS_CHANNEL,
        )

    def _saw_report(self, message: object) -> None:
        """Note the newest report the sink has had (it took it just before this listener),
        so that each caption can name the report its position came from; the sink logs
        the bad ones."""
        if isinstance(message, str | bytes):
            try:
                seq = parse_report(message).seq
            except ReportError:
                return
            if self._report_seq is None or seq > self._report_seq:
                self._report_seq = seq

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state in ("failed", "closed") and not self._closed:
            self.close_soon(f"peer connection {state}")

    def on_page_message(self, raw: str | bytes) -> None:
        """A WebSocket message from the page; a bad one is logged and answered with an error
        object, and the session goes on."""
        try:
            message = parse_page_message(raw)
        except MessageError as error:
            logger.warning("session %s: bad message from the page: %s", self.session_id, error)
            self._post({"type": "error", "message": str(error)})
            return
        if self._closed:
            return
        if isinstance(message, Interrupt):
            self.interrupt()
            return
        refusal = self._refusal()
        if refusal is not None:
            logger.warning("session %s: did not speak: %s", self.session_id, refusal)
            self._post({"type": "error", "message": refusal})
            return
        self.speak(message.text)

    def _refusal(self) -> str | None:
        """Why a new item cannot start now, or None."""
        if self._pc.connectionState != "connected":
            return "the peer connection is not up yet; wait for the page to say ready"
        if self._model is not None and not self._model.ready:
            return "the realtime model is not connected"
        if len(self._tasks) >= MAX_ITEMS_IN_FLIGHT:
            return f"{len(self._tasks)} items are still ending; wait for their reports"
        return None

    def speak(self, text: str) -> None:
        """Start speaking ``text``, cutting what plays; with a realtime model, ask it for a
        response with ``text`` as its instructions."""
        if self._closed:
            raise RuntimeError(f"session {self.session_id} is closed")
        if self._model is not None:
            self._spawn(self._ask_model(self._model, text))
            return
        self._items += 1
        self._spawn(self._run_item(f"item_{self._items}", text))

    def interrupt(self) -> None:
        """Cut the item playing now, if one is (the sink stops feeding at once)."""
        if self._model is not None:
            self._model.interrupt()
            return
        current = self.playout.current
        if current is not None and not current.done():
            current.interrupt()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _watch_captions(self, handle: PlayoutHandle, forwarder: TranscriptForwarder) -> None:
        def caption(segment: TranscriptSegment) -> None:
            self._post(
                caption_message(
                    self.sink, handle, forwarder, final=segment.final, report_seq=self._report_seq
                )
            )

        forwarder.on("segment", caption)

    async def _run_item(self, item_id: str, text: str) -> None:
        """One response in the offline voice, streamed as a model streams it."""
        assert self._voice is not None
        voice = self._voice
        handles: list[PlayoutHandle] = []
        settled_before = self.sink.settlement

        def watch(forwarder: TranscriptForwarder) -> None:
            handle = self.playout.current
            assert handle is not None
            assert handle.item_id == item_id
            handles.append(handle)
            self._post({"type": "item-started", "item_id": item_id, "text": text})
            self._watch_captions(handle, forwarder)

        try:
            spoken = await speak(
                self.playout,
                voice_pieces(voice, text, in_thread=True),
                item_id=item_id,
                sample_rate=voice.sample_rate,
                watch=watch,
            )
        except Exception:
            logger.exception("session %s: %s failed", self.session_id, item_id)
            self._post({"type": "error", "message": f"{item_id} failed; see the server's log"})
            return
        plot = None
        try:
            png = await asyncio.to_thread(timeline_png, [(spoken.report, spoken.audio)])
        except Exception:
            logger.exception("session %s: could not draw %s's timeline", self.session_id, item_id)
        else:
            self.plots[item_id] = png
            while len(self.plots) > PLOTS_KEPT:
                del self.plots[next(iter(self.plots))]
            plot = f"/session/{self.session_id}/plot/{item_id}.png"
        report = spoken.report
        self._post(
            report_message(
                self.sink,
                handles[0],
                report,
                text=text,
                settlement=self._fresh(settled_before),
                truncation=report.truncation,
                plot=plot,
            )
        )

    def _fresh(self, before: Settlement | None) -> Settlement | None:
        """The sink's last settle if it is not ``before``: the item's own, if it had one."""
        settlement = self.sink.settlement
        return settlement if settlement is not before else None

    async def _connect_model(self, model: ModelVoice) -> None:
        from ..bridges.connection import RealtimeConnectionError

        try:
            await model.start()
        except (RealtimeConnectionError, OSError, asyncio.TimeoutError) as error:
            said = str(error) or type(error).__name__
            logger.warning("session %s: cannot reach the realtime model: %s", self.session_id, said)
            self._post({"type": "error", "message": f"the realtime model is unreachable: {said}"})
            return
        self._post({"type": "model", "state": "connected"})

    async def _ask_model(self, model: ModelVoice, text: str) -> None:
        from ..bridges.connection import RealtimeConnectionError

        try:
            await model.respond(text)
        except (RealtimeConnectionError, RuntimeError) as error:
            logger.warning("session %s: could not ask for a response: %s", self.session_id, error)
            self._post({"type": "error", "message": f"could not ask for a response: {error}"})

    def _model_started(self, handle: PlayoutHandle, forwarder: TranscriptForwarder | None) -> None:
        """The bridge's ``item_started``: the page shows the item's captions."""
        key = (handle.item_id, handle.content_index)
        self._items += 1
        self._model_items[key] = (handle, forwarder, self.sink.settlement)
        self._post({"type": "item-started", "item_id": handle.item_id, "text": ""})
        if forwarder is not None:
            self._watch_captions(handle, forwarder)

    def _model_ended(self, heard: ItemHeard) -> None:
        """The bridge's ``item_ended``: the item's report, with the truncation it sent."""
        entry = self._model_items.pop((heard.item_id, heard.content_index), None)
        if entry is None:
            return
        handle, forwarder, before = entry
        if forwarder is None or not handle.done() or not forwarder.closed:
            logger.warning("session %s: %s ended unfinished", self.session_id, heard.item_id)
            return
        report = PlayoutReport.from_playout(handle, forwarder)
        self._post(
            report_message(
                self.sink,
                handle,
                report,
                text=forwarder.text,
                settlement=self._fresh(before),
                truncation=heard.truncation,
                plot=None,
            )
        )

    def _model_gone(self, why: str) -> None:
        self._post({"type": "error", "message": why})

    def _post(self, message: dict[str, Any]) -> None:
        if not self._closed:
            self._outbox.put_nowait(message)

    async def _write(self) -> None:
        """Send the outbox in order; a socket that fails ends the session."""
        while True:
            message = await self._outbox.get()
            try:
                await self._send(message)
            except (ConnectionError, RuntimeError) as error:
                self.close_soon(f"the page's socket failed: {error}")
                return

    def close_soon(self, reason: str) -> None:
        """Close from a callback that cannot wait (the peer's state, a failed send)."""
        if self._closing is None:
            self._closing = asyncio.create_task(self.aclose(reason))

    async def aclose(self, reason: str = "closed") -> None:
        """End the session: cut the item playing, let it settle (bounded), close the
        playout, the sink and the peer connection. Logged once; later calls wait for it."""
        if self._closed:
            await self.ended.wait()
            return
        self._closed = True
        try:
            self.interrupt()
            if self._model is not None:
                await self._model.aclose()
            pending = set(self._tasks)
            if pending:
                _, late = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=CLOSE_TIMEOUT_S)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.playout.aclose(), CLOSE_TIMEOUT_S)
        finally:
            try:
                self.sink.close()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._pc.close(), CLOSE_TIMEOUT_S)
            finally:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
                logger.info(
                    "session %s: closed (%s) after %d item(s)", self.session_id, reason, self._items
                )
                self.ended.set()
