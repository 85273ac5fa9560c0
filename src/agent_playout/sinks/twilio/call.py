"""One phone call: a Media Streams WebSocket read, measured and written for its ``PhoneSink``.

The call reads every inbound message through ``CallProtocol``: marks go to the sink, the
caller's audio to ``inbound_audio()``, digits to ``dtmf`` listeners. A bad message is logged
in one line (the first few of a call; the rest are counted) and the call goes on; a flood of
messages ends it with close code 1008. Pings measure the round trip the sink's position
needs. However the call ends (``stop``, a dropped socket, ``hang_up()``), the sink freezes at
the phone's position and every wait on it raises ``CallEndedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Literal

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ...clock import Clock, MonotonicClock
from ...core import mulaw
from ...core.frames import AudioFrame
from ...core.units import NS_PER_SECOND
from ...events import EventEmitter
from .messages import CallProtocol, Dtmf, Mark, Media, MediaStreamError, Start, Stop
from .sink import PHONE_RATE, CallEndedError, MediaChannel, PhoneSink

__all__ = ["CallEvents", "PhoneCall"]

logger = logging.getLogger("agent_playout")

CallEvents = Literal["dtmf", "ended"]

LOGGED_BAD_MESSAGES = 5
"""Bad messages logged one line each per call; later ones are counted, and the count logged at
the end, so that a hostile caller cannot flood the log."""

FLOOD_MESSAGES_PER_S = 500
"""Inbound messages a call may send in a second: Twilio sends 50 (one 20 ms chunk each) and a
few events. Past it the call is closed with 1008 (policy violation)."""

INBOUND_AUDIO_BYTES = 10 * 8000
"""How much of the caller's audio waits for a slow reader of ``inbound_audio()`` (10 s of
8 kHz mu-law); the oldest is dropped past it."""

FLOOD_BYTES_PER_S = 256 * 1024
"""Inbound bytes a call may send in a second: Twilio's 50 media messages come to about 15 KB.
Past it the call is closed with 1008, as for too many messages."""

CLOSE_TIMEOUT_S = 2.0
"""How long a closing handshake may take before the socket is dropped."""

_CLOSE_REASON_BYTES = 123
"""The most a close frame's reason may hold (125 bytes, less the code's two)."""

PING_INTERVAL_S = 2.0
"""How often the round trip is measured again, once the first pings are back."""

FIRST_PINGS = 5
"""Pings sent ``FIRST_PING_INTERVAL_S`` apart from answering (or each at its pong, on a slower
link): the round trip is the smallest recent sample, and the first ones are the likeliest to
be late (a call's start is busy)."""

FIRST_PING_INTERVAL_S = 0.2

_PING_INTERVAL_NS = round(PING_INTERVAL_S * NS_PER_SECOND)
_FIRST_PING_INTERVAL_NS = round(FIRST_PING_INTERVAL_S * NS_PER_SECOND)

PONG_TIMEOUT_S = 10.0
"""A ping unanswered this long ends the call: the link is dead."""


class PhoneCall(EventEmitter[CallEvents]):
    """An answered call: its ``start`` metadata, its ``sink``, and the caller's audio.

    Events: ``dtmf`` (the digit, a str) and ``ended`` (the reason). Made by ``serve_phone``
    once Twilio's ``start`` arrived; the handler it calls plays into ``call.sink``.
    """

    def __init__(
        self,
        connection: ServerConnection,
        protocol: CallProtocol,
        start: Start,
        *,
        clock: Clock | None = None,
        mark_every_ms: int = 100,
        queue_size_ms: int = 400,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._protocol = protocol
        self.start = start
        self._clock: Clock = clock or MonotonicClock()
        self.sink = PhoneSink(
            MediaChannel(self._write, self._drain),
            start.stream_sid,
            clock=self._clock,
            mark_every_ms=mark_every_ms,
            queue_size_ms=queue_size_ms,
            label=start.call_sid,
        )
        self._end_reason: str | None = None
        self._ended = asyncio.Event()
        self._bad_messages = 0
        self._window_start = self._clock.now_ns()
        self._window_messages = 0
        self._window_bytes = 0
        self._inbound: deque[bytes] | None = None
        self._inbound_dropped = 0
        self._inbound_bytes = 0
        self._inbound_ready = asyncio.Event()
        self._closing: asyncio.Future[None] | None = None
        self._tasks = [
            asyncio.create_task(self._read(), name=f"phone reader {start.call_sid}"),
            asyncio.create_task(self._measure_round_trip(), name=f"phone pinger {start.call_sid}"),
        ]

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid

    @property
    def call_sid(self) -> str:
        return self.start.call_sid

    @property
    def custom_parameters(self) -> Mapping[str, str]:
        return self.start.custom_parameters

    @property
    def ended(self) -> bool:
        return self._end_reason is not None

    @property
    def end_reason(self) -> str | None:
        """Why the call ended, once it has."""
        return self._end_reason

    @property
    def bad_messages(self) -> int:
        """Inbound messages refused so far (each logged, or counted past the first few)."""
        return self._bad_messages

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def inbound_audio(self) -> AsyncIterator[AudioFrame]:
        """The caller's voice, 20 ms frames of 8 kHz int16, kept from the first time this is
        called until the call ends. One reader at a time; one that falls 10 s behind loses the
        oldest."""
        if self._inbound is None:
            self._inbound = deque()
        queue = self._inbound
        while True:
            while queue:
                payload = queue.popleft()
                self._inbound_bytes -= len(payload)
                yield AudioFrame.from_array(mulaw.decode(payload), PHONE_RATE)
            if self.ended:
                return
            self._inbound_ready.clear()
            await self._inbound_ready.wait()

    async def hang_up(self, reason: str = "the agent hung up", *, code: int = 1000) -> None:
        """End the call: the sink stops where the phone will be when the close reaches it,
        and the socket closes (dropped if the caller does not answer the close in time)."""
        self._end(reason, by_us=True)
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        """The closing handshake, bounded: a caller that stopped reading is dropped."""
        said = reason.encode()[:_CLOSE_REASON_BYTES].decode(errors="ignore")
        try:
            await asyncio.wait_for(self._connection.close(code, said), CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            self._connection.transport.abort()

    async def aclose(self) -> None:
        """Hang up if the call is still live, and wait for the call's own tasks to end."""
        if not self.ended:
            await self.hang_up()
        if self._closing is not None:
            await self._closing
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._bad_messages > LOGGED_BAD_MESSAGES:
            logger.warning("call %s: %d bad messages in all", self.call_sid, self._bad_messages)

    # Writing.

    def _write(self, messages: Sequence[str]) -> None:
        """Write now, in this event-loop turn, through the connection's sans-I/O protocol: the
        frames of one capture (its media and marks) go to the socket in one write."""
        connection = self._connection
        protocol = connection.protocol
        if self.ended or protocol.state is not State.OPEN:
            raise CallEndedError(self._end_reason or "the call's WebSocket is closing")
        for message in messages:
            protocol.send_text(message.encode())
        connection.transport.write(b"".join(protocol.data_to_send()))

    async def _drain(self) -> None:
        """Wait while the transport's buffer is full (a caller slow to read), until the call
        ends: a caller that stopped reading cannot hold the item past its hang-up."""
        connection = self._connection
        if connection.transport.get_write_buffer_size() == 0:
            return
        drained = asyncio.ensure_future(connection.drain())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait([drained, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            drained.cancel()
        if drained.done() and not drained.cancelled() and drained.exception() is None:
            return
        failed = None if not drained.done() or drained.cancelled() else drained.exception()
        raise CallEndedError(self._end_reason or f"the call's socket failed: {failed}")

    # Reading.

    async def _read(self) -> None:
        """Dispatch each inbound message until the socket closes. Once the call has ended the
        rest is read and dropped: a closing handshake waits for the caller's close frame,
        which sits behind whatever the caller sent before it."""
        try:
            async for message in self._connection:
                if self.ended:
                    continue
                size = len(message.encode()) if isinstance(message, str) else len(message)
                if self._flooding(size):
                    self._close_soon(self._flood_reason(), 1008, by_us=True)
                    continue
                try:
                    event = self._protocol.receive(message)
                except MediaStreamError as error:
                    self._refused(error)
                    continue
                if isinstance(event, Mark):
                    self.sink.mark_echoed(event.name)
                elif isinstance(event, Media):
                    self._caller_spoke(event.payload)
                elif isinstance(event, Dtmf):
                    self._tell("dtmf", event.digit)
                elif isinstance(event, Stop):
                    self._close_soon("the caller hung up (stop)", 1000, by_us=False)
        except ConnectionClosed:
            pass
        finally:
            self._end(_closed_reason(self._connection))

    def _close_soon(self, reason: str, code: int, *, by_us: bool) -> None:
        """End the call now and close its socket in the background, the reader reading on."""
        self._end(reason, by_us=by_us)
        self._closing = asyncio.ensure_future(self._close(code, reason))

    def _flooding(self, size: int) -> bool:
        """Count a message of ``size`` in this second's window; True past either limit."""
        now = self._clock.now_ns()
        if now - self._window_start >= NS_PER_SECOND:
            self._window_start, self._window_messages, self._window_bytes = now, 0, 0
        self._window_messages += 1
        self._window_bytes += size
        return (
            self._window_messages > FLOOD_MESSAGES_PER_S or self._window_bytes > FLOOD_BYTES_PER_S
        )

    def _flood_reason(self) -> str:
        if self._window_messages > FLOOD_MESSAGES_PER_S:
            return f"more than {FLOOD_MESSAGES_PER_S} messages in a second"
        return f"more than {FLOOD_BYTES_PER_S} bytes in a second"

    def _refused(self, error: MediaStreamError) -> None:
        self._bad_messages += 1
        if self._bad_messages <= LOGGED_BAD_MESSAGES:
            logger.warning("call %s: refused a message: %s", self.call_sid, error)
        if self._bad_messages == LOGGED_BAD_MESSAGES:
            logger.warning("call %s: further bad messages are counted, not logged", self.call_sid)

    def _caller_spoke(self, payload: bytes) -> None:
        queue = self._inbound
        if queue is None:
            return
        queue.append(payload)
        self._inbound_bytes += len(payload)
        while self._inbound_bytes > INBOUND_AUDIO_BYTES:
            self._inbound_bytes -= len(queue.popleft())
            self._inbound_dropped += 1
        self._inbound_ready.set()

    async def _measure_round_trip(self) -> None:
        """Ping now and then; each pong's delay is a round-trip sample for the sink."""
        clock = self._clock
        pings = 0
        try:
            while not self.ended:
                sent = clock.now_ns()
                try:
                    await asyncio.wait_for(self._ping(), PONG_TIMEOUT_S)
                except asyncio.TimeoutError:
                    await self.hang_up(f"no pong in {PONG_TIMEOUT_S:g} s", code=1011)
                    return
                self.sink.round_trip_measured(clock.now_ns() - sent)
                pings += 1
                interval = _FIRST_PING_INTERVAL_NS if pings < FIRST_PINGS else _PING_INTERVAL_NS
                await clock.sleep_until(sent + interval)
        except ConnectionClosed:
            return

    async def _ping(self) -> None:
        """One ping, until its pong (a full write buffer may hold the ping itself)."""
        pong = await self._connection.ping()
        await pong

    def _end(self, reason: str, *, by_us: bool = False) -> None:
        if self._end_reason is not None:
            return
        self._end_reason = reason
        self.sink.end(reason, by_us=by_us)
        self._inbound_ready.set()
        self._ended.set()
        logger.info("call %s: ended: %s", self.call_sid, reason)
        self._tell("ended", reason)

    def _tell(self, event: CallEvents, value: str) -> None:
        """Emit ``event``; a listener that raises is logged and changes nothing."""
        try:
            self.emit(event, value)
        except Exception:
            logger.exception("call %s: a %r listener failed", self.call_sid, event)


def _closed_reason(connection: ServerConnection) -> str:
    """Why the socket closed, in words, with the close code if there was one."""
    sent, received = connection.protocol.close_sent, connection.protocol.close_rcvd
    if sent is not None and sent.code == 1009:
        return "a message was larger than the limit (close code 1009)"
    if received is not None:
        detail = f": {received.reason}" if received.reason else ""
        return f"the caller closed the connection (code {received.code}{detail})"
    if sent is not None:
        return f"the connection closed (code {sent.code})"
    return "the connection dropped without a close frame"
