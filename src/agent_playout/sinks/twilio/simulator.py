"""A simulated Twilio caller and a delayed TCP link, to dial a Media Streams server offline.

``SimulatedCaller`` is a WebSocket client that behaves as Twilio's side of a bidirectional
``<Connect><Stream>`` does: it announces the call (``connected``, ``start``), streams the
caller's voice as 20 ms of mu-law every 20 ms, plays the server's ``media`` at real time,
echoes each ``mark`` once the audio before it has played, and on ``clear`` drops its buffer and
echoes every pending mark at once. Its ``played`` count is the ground truth a phone output's
position is measured against. ``DelayedLink`` puts a network's latency between the two.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import uuid
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ...clock import Clock, MonotonicClock, TimerHandle
from ...core.units import NS_PER_SECOND

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000
"""The phone's rate: Media Streams carry 8 kHz mono mu-law, one byte per sample."""

_NS_PER_SAMPLE = NS_PER_SECOND // SAMPLE_RATE
_INBOUND_CHUNK_SAMPLES = 160
_INBOUND_PERIOD_NS = _INBOUND_CHUNK_SAMPLES * _NS_PER_SAMPLE
# The caller's voice: mu-law 0xFF is a zero sample; a constant pattern costs nothing to send.
_INBOUND_PAYLOAD = base64.b64encode(b"\xff" * _INBOUND_CHUNK_SAMPLES).decode("ascii")


class _Speaker:
    """The phone's playback, exact in samples: chunks play back to back, each starting at
    max(its arrival, the previous chunk's end). Contiguous chunks share one span, so the
    history costs three integers per gap, not per chunk."""

    __slots__ = ("_base", "_length", "_start", "frozen")

    def __init__(self) -> None:
        self._start = array("q")  # span start, ns
        self._base = array("q")  # samples played before the span
        self._length = array("q")  # samples in the span
        self.frozen = False

    @property
    def total(self) -> int:
        """Samples queued so far (played or still to play)."""
        return self._base[-1] + self._length[-1] if self._start else 0

    @property
    def end_ns(self) -> int | None:
        """When the last queued sample finishes playing, or None before any audio."""
        return self._start[-1] + self._length[-1] * _NS_PER_SAMPLE if self._start else None

    def queue(self, samples: int, now_ns: int) -> None:
        if self.frozen or samples <= 0:
            return
        end = self.end_ns
        if end is not None and end >= now_ns:
            self._length[-1] += samples
        else:
            self._base.append(self.total)
            self._start.append(now_ns)
            self._length.append(samples)

    def played_at(self, t_ns: int) -> int:
        index = bisect_right(self._start, t_ns) - 1
        if index < 0:
            return 0
        elapsed = (t_ns - self._start[index]) // _NS_PER_SAMPLE
        return self._base[index] + min(self._length[index], elapsed)

    def time_of(self, target: int) -> int | None:
        """When ``target`` samples will have played, or None if not that many are queued."""
        if target <= 0:
            return self._start[0] if self._start else None
        if target > self.total:
            return None
        index = bisect_right(self._base, target - 1) - 1
        return self._start[index] + (target - self._base[index]) * _NS_PER_SAMPLE

    def cut(self, now_ns: int, *, freeze: bool = False) -> int:
        """Drop everything not played by ``now_ns`` (spans never start in the future)."""
        played = self.played_at(now_ns)
        if self._start:
            self._length[-1] = played - self._base[-1]
        self.frozen = self.frozen or freeze
        return played


class SimulatedCaller:
    """Dials a Media Streams server the way Twilio does, and plays what it gets at real time.

    Use it as ``async with SimulatedCaller(url) as caller:``. Time (for ``played`` and the
    mark timers) comes from ``clock``; the socket is real. The phone stops playing when the
    stream ends (hang-up, drop, or the server closing), as a call leaving the stream does.
    It sends no keepalive pings of its own (Twilio's docs describe none) and answers the
    server's. ``received`` holds every message but the valid ``media`` (counted instead).
    """

    def __init__(
        self,
        url: str,
        *,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        headers: Mapping[str, str] | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        send_inbound: bool = True,
        announce: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.stream_sid = stream_sid or f"MZ{uuid.uuid4().hex}"
        self.call_sid = call_sid or f"CA{uuid.uuid4().hex}"
        self.account_sid = account_sid or f"AC{uuid.uuid4().hex}"
        self._headers = dict(headers or {})
        self.custom_parameters = dict(custom_parameters or {})
        self._send_inbound = send_inbound
        self._announce = announce
        self._clock: Clock = clock or MonotonicClock()
        self._sid_json = json.dumps(self.stream_sid)
        self._speaker = _Speaker()
        self._pending_marks: deque[tuple[int, str]] = deque()  # (audio end, name)
        self._mark_timer: TimerHandle | None = None
        self._inbound_timer: TimerHandle | None = None
        self._inbound_due_ns = 0
        self._sequence = 0
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.cleared_at: list[tuple[int, int]] = []
        self.marks_echoed: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.media_received = 0
        self.samples_received = 0
        self.inbound_sent = 0
        self.ignored = 0

    # -- what the phone played -------------------------------------------------------------

    @property
    def played(self) -> int:
        """Samples (8 kHz) the phone has played by now: exact, from the clock."""
        return self._speaker.played_at(self._clock.now_ns())

    def played_at(self, t_ns: int) -> int:
        """Samples the phone had played at clock time ``t_ns`` (past or scheduled)."""
        return self._speaker.played_at(t_ns)

    @property
    def queued(self) -> int:
        """Samples received but not yet played (the phone's buffer)."""
        return self._speaker.total - self.played

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code once closed (1006 for a connection lost without one)."""
        return self._ws.close_code if self._ws is not None and self.closed else None

    # -- connection ------------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedCaller:
        self._ws = await connect(
            self.url,
            additional_headers=self._headers,
            user_agent_header="Twilio.TmeWs/1.0",
            proxy=None,
            ping_interval=None,
            compression=None,
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write()), loop.create_task(self._read())]
        if self._announce:
            self.start_stream()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.closed:
                await self.hang_up()
        finally:
            await self._finish_tasks()

    def start_stream(self) -> None:
        """Send ``connected`` and ``start``, then the inbound media every 20 ms."""
        self._outbox.put_nowait('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        start = {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.custom_parameters,
            },
            "streamSid": self.stream_sid,
        }
        self._outbox.put_nowait(json.dumps(start))
        if self._send_inbound:
            self._schedule_inbound(self._clock.now_ns())

    def send_raw(self, message: str | bytes) -> None:
        """Queue any message as is (for tests of what a server does with bad input)."""
        self._outbox.put_nowait(message if isinstance(message, str) else message.decode())

    def send_dtmf(self, digit: str) -> None:
        """A key press on the phone, as Twilio reports it."""
        self._outbox.put_nowait(
            f'{{"event":"dtmf","streamSid":{self._sid_json},"sequenceNumber":'
            f'"{self._next_sequence()}","dtmf":{{"track":"inbound_track","digit":'
            f"{json.dumps(digit)}}}}}"
        )

    async def hang_up(self) -> None:
        """The caller hangs up: send ``stop``, then close the socket with 1000."""
        if self.closed:
            return
        self._end_stream()
        stop = {
            "event": "stop",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }
        self._outbox.put_nowait(json.dumps(stop))
        self._outbox.put_nowait(None)
        await self._finish_tasks()

    async def drop(self) -> None:
        """The network drops: abort the TCP connection without a close frame."""
        self._end_stream()
        if self._ws is not None:
            self._ws.transport.abort()
        await self._finish_tasks()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- test helpers ----------------------------------------------------------------------

    async def wait_played(self, samples: int) -> None:
        """Wait until the phone has played ``samples``; raises if the call ends first."""
        while self.played < samples:
            when = self._speaker.time_of(samples)
            if when is not None:
                await self._clock.sleep_until(when)
                continue
            if self._speaker.frozen:
                raise RuntimeError(
                    f"the call ended at {self.played} samples played, before {samples}"
                )
            await self._wait_changed()

    async def wait_idle(self) -> None:
        """Wait until the phone's buffer is empty and no mark is waiting to be echoed."""
        while not self._speaker.frozen:
            end = self._speaker.end_ns
            if end is not None and end > self._clock.now_ns():
                await self._clock.sleep_until(end)
            elif self._pending_marks:
                await self._wait_changed()
            else:
                return

    async def _wait_changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- inbound: the caller's voice -------------------------------------------------------

    def _schedule_inbound(self, deadline_ns: int) -> None:
        self._inbound_timer = self._clock.call_at(deadline_ns, self._send_due_inbound)
        self._inbound_due_ns = deadline_ns

    def _send_due_inbound(self) -> None:
        # Twilio streams at real time: a late timer sends what fell due, so the rate holds.
        now = self._clock.now_ns()
        due = self._inbound_due_ns
        while due <= now:
            self.inbound_sent += 1
            self._outbox.put_nowait(
                f'{{"event":"media","sequenceNumber":"{self._next_sequence()}","media":'
                f'{{"track":"inbound","chunk":"{self.inbound_sent}","timestamp":'
                f'"{(self.inbound_sent - 1) * 20}","payload":"{_INBOUND_PAYLOAD}"}},'
                f'"streamSid":{self._sid_json}}}'
            )
            due += _INBOUND_PERIOD_NS
        self._schedule_inbound(due)

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    # -- outbound: what the server sends ---------------------------------------------------

    async def _write(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            while (message := await self._outbox.get()) is not None:
                await self._ws.send(message)
            await self._ws.close(1000)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            self._end_stream()
            self._closed.set()
            self._changed.set()
            self._outbox.put_nowait(None)

    def _receive(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            kind = event["event"]
            if event.get("streamSid") != self.stream_sid:
                raise ValueError(f"streamSid {event.get('streamSid')!r} is not this call's")
            if kind == "media":
                self._on_media(base64.b64decode(event["media"]["payload"], validate=True))
                return
            self.received.append(event)
            if kind == "mark":
                self._on_mark(str(event["mark"]["name"]))
            elif kind == "clear":
                self._on_clear()
            else:
                raise ValueError(f"unknown event {kind!r}")
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            self.ignored += 1
            logger.warning("simulated caller %s ignores a message: %s", self.stream_sid, error)

    def _on_media(self, payload: bytes) -> None:
        self.media_received += 1
        self.samples_received += len(payload)
        if self._speaker.frozen:
            return
        self._speaker.queue(len(payload), self._clock.now_ns())
        self._changed.set()

    def _on_mark(self, name: str) -> None:
        if self._speaker.frozen:
            return
        end = self._speaker.end_ns or 0
        self._pending_marks.append((end, name))
        if self._mark_timer is None:
            self._echo_due_marks(self._clock.now_ns())

    def _echo_due_marks(self, due_ns: int) -> None:
        """Echo, in order, the marks whose audio has played by ``due_ns`` (or by now)."""
        self._mark_timer = None
        limit = max(due_ns, self._clock.now_ns())
        while self._pending_marks and self._pending_marks[0][0] <= limit:
            self._echo(self._pending_marks.popleft()[1])
        if self._pending_marks:
            next_due = self._pending_marks[0][0]
            self._mark_timer = self._clock.call_at(
                next_due, functools.partial(self._echo_due_marks, next_due)
            )
        self._changed.set()

    def _echo(self, name: str) -> None:
        self.marks_echoed.append(name)
        self._outbox.put_nowait(
            f'{{"event":"mark","sequenceNumber":"{self._next_sequence()}","streamSid":'
            f'{self._sid_json},"mark":{{"name":{json.dumps(name)}}}}}'
        )

    def _on_clear(self) -> None:
        now = self._clock.now_ns()
        self.cleared_at.append((now, self._speaker.cut(now)))
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        while self._pending_marks:
            self._echo(self._pending_marks.popleft()[1])
        self._changed.set()

    def _end_stream(self) -> None:
        """The stream is over: the phone stops playing and sends nothing more."""
        if self._stopped:
            return
        self._stopped = True
        self._speaker.cut(self._clock.now_ns(), freeze=True)
        for timer in (self._mark_timer, self._inbound_timer):
            if timer is not None:
                timer.cancel()
        self._mark_timer = self._inbound_timer = None
        self._pending_marks.clear()
        self._changed.set()

    async def _finish_tasks(self) -> None:
        """Wait for the reader and writer to end; a failure in either is raised here."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        try:
            await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error


class DelayedLink:
    """A TCP proxy on 127.0.0.1 that delays every byte by ``delay_ms`` each way.

    Each chunk read is stamped on arrival and written at stamp + delay by one writer per
    direction, so order is kept and bandwidth is not limited, as a network's latency is. A
    close travels with the same delay; then both sides are closed (reset if it was a reset).
    """

    def __init__(self, target_host: str, target_port: int, *, delay_ms: float) -> None:
        if not 0 <= delay_ms < float("inf"):
            raise ValueError(f"delay_ms must be finite and >= 0, got {delay_ms!r}")
        self.target_host = target_host
        self.target_port = target_port
        self.delay_ms = delay_ms
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, path: str = "/") -> str:
        """The WebSocket URL that reaches the target through this link."""
        return f"ws://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> DelayedLink:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in self._connections:
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        reset = True
        streams = [client]
        try:
            try:
                target_reader, target = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError as error:
                logger.warning("delayed link: cannot reach the target: %s", error)
                return
            streams.append(target)
            loop = asyncio.get_running_loop()
            pipes = {
                loop.create_task(self._carry(client_reader, target)),
                loop.create_task(self._carry(target_reader, client)),
            }
            try:
                done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                reset = any(pipe.result() for pipe in done)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            for stream in streams:
                if reset:
                    stream.transport.abort()
                else:
                    stream.close()
            try:
                for stream in streams:
                    with contextlib.suppress(OSError):
                        await stream.wait_closed()
            except asyncio.CancelledError:
                for stream in streams:
                    stream.transport.abort()
                raise
            finally:
                self._connections.discard(task)

    async def _carry(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> bool:
        """Carry one direction with the delay until it ends; True if it ended with a reset."""
        loop = asyncio.get_running_loop()
        delay = self.delay_ms / 1000
        in_flight: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def deliver() -> bool:
            while True:
                due, data = await in_flight.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    return data is None
                sink.write(data)
                try:
                    await sink.drain()
                except ConnectionError:
                    return True

        delivery = loop.create_task(deliver())
        try:
            while not delivery.done():
                try:
                    data: bytes | None = await source.read(65536)
                except ConnectionError:
                    data = None
                in_flight.put_nowait((loop.time() + delay, data))
                if not data:
                    break
            return await delivery
        finally:
            delivery.cancel()
