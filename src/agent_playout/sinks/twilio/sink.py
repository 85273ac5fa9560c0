"""The phone output: audio to a Twilio Media Stream, at the position the caller's phone reached.

Position source: the phone's confirmed marks plus the measured round trip. A ``mark`` sent
after a chunk comes back once the phone has played that chunk, half a round trip before it
reaches us; ``PhoneScheduler`` extrapolates from the last confirmed mark through the chunks
sent since, never across a gap in sending, and never past what was sent.

On ``clear_queue`` the ``clear`` message is written in the same event-loop turn, and the
position freezes where the phone will be when it arrives: the last confirmed mark's audio
end, plus the time since its echo arrived, plus the round trip. That estimate assumes the
link is symmetric (each way takes half the measured round trip) and is as exact as the round
trip is steady: typically within one 20 ms chunk, off by the jitter of the link otherwise.
On a link that backs up or goes quiet, the position holds at the first mark whose echo is
overdue (``ECHO_SLACK_NS`` past when the model has it back), rather than count audio
stuck on the way as heard.
There is no declick fade: the phone's buffer cannot be faded after the fact, so Twilio stops
it where the ``clear`` lands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from ...clock import Clock, MonotonicClock, TimerHandle
from ...core import mulaw
from ...core.frames import Int16Array
from ...core.positions import samples_in
from ...core.units import NS_PER_SECOND
from ...errors import OutputEndedError
from ..base import NEVER, SinkSurface, Waiters, sink_samples
from .messages import clear_message, mark_message, media_message
from .scheduler import EchoVerdict, PhoneScheduler

__all__ = ["PHONE_RATE", "CallEndedError", "MediaChannel", "PhoneSink"]

logger = logging.getLogger("agent_playout")

PHONE_RATE = 8000
"""Media Streams carry 8 kHz mono mu-law."""

CHUNK_MS = 20
"""Twilio's own packet size: each ``media`` message carries this much audio."""

_CHUNK = samples_in(CHUNK_MS, PHONE_RATE)

CONFIRM_GRACE_S = 1.0
"""How long past the modelled end ``wait_for_playout`` waits for the last mark's echo."""

_CONFIRM_GRACE_NS = round(CONFIRM_GRACE_S * NS_PER_SECOND)


class CallEndedError(OutputEndedError):
    """The call is over (the caller hung up, the socket dropped or the agent hung up)."""


class MediaChannel:
    """How the sink reaches the call: a synchronous write of text messages and a drain.

    ``write`` raises ``CallEndedError`` once the connection is closing; ``drain`` returns
    once the transport's buffer is below its limit (flow control).
    """

    def __init__(
        self,
        write: Callable[[Sequence[str]], None],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self.write = write
        self.drain = drain


class PhoneSink(SinkSurface):
    """Plays 8 kHz mono audio into one call's Media Stream; ``AgentPlayout`` resamples to it.

    ``capture_frame`` sends the audio in 20 ms ``media`` messages, a ``mark`` every
    ``mark_every_ms``, and returns at once while the audio the phone has not played yet is at
    most ``queue_size_ms``, else once it is half that. The queue is what rides out a stalled
    server or link (Twilio buffers what it gets); a ``clear`` throws it away, so its depth
    costs no exactness. ``samples_played`` is where the phone was half a round trip ago, by
    the model of ``PhoneScheduler``: the latest it can have told us, so a ``stop`` that arrives
    ends the item there, never below a count already reported. ``wait_for_playout`` returns
    once the phone confirmed the last mark.

    When the call ends, the position freezes where the phone was when the caller's end left
    it, or, for an end of ours (a hang-up), where our close will find it; never below the last
    confirmed mark or a count already reported. Every call waiting on the sink then raises
    ``CallEndedError``.
    """

    def __init__(
        self,
        channel: MediaChannel,
        stream_sid: str,
        *,
        clock: Clock | None = None,
        mark_every_ms: int = 100,
        queue_size_ms: int = 400,
        label: str | None = None,
    ) -> None:
        if mark_every_ms < CHUNK_MS:
            raise ValueError(
                f"mark_every_ms must be >= {CHUNK_MS} (one chunk), got {mark_every_ms}"
            )
        if queue_size_ms < CHUNK_MS:
            raise ValueError(
                f"queue_size_ms must be >= {CHUNK_MS} (one chunk), got {queue_size_ms}"
            )
        super().__init__(PHONE_RATE, 1)
        self._channel = channel
        self._sid = stream_sid
        self._label = label or stream_sid
        self._clock: Clock = clock or MonotonicClock()
        self._scheduler = PhoneScheduler(
            PHONE_RATE, mark_every=samples_in(mark_every_ms, PHONE_RATE)
        )
        self._queue_limit = samples_in(queue_size_ms, PHONE_RATE)
        self._held = np.zeros(0, dtype=np.int16)
        self._written = 0
        self._marks_sent = 0
        self._media_sent = 0
        self._waiters = Waiters()
        self._timer: TimerHandle | None = None
        self._confirmations: list[asyncio.Future[None]] = []
        self._ended: CallEndedError | None = None
        self._warned_no_round_trip = False
        self._warned_foreign = False

    # What the engine reads.

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def samples_played(self) -> int:
        """What the phone had played half a round trip ago: the latest it can have told us."""
        return self._scheduler.known(self._clock.now_ns())

    @property
    def samples_written(self) -> int:
        return self._written

    def _underrun_totals(self) -> tuple[int, int]:
        return self._scheduler.underruns(self._clock.now_ns())

    # What the call's reader and pinger feed in.

    def mark_echoed(self, name: str) -> None:
        """Twilio echoed the mark ``name``: re-anchor the position and wake who waits."""
        if self._ended is not None:
            return
        verdict = self._scheduler.on_mark(name, self._clock.now_ns())
        if verdict is EchoVerdict.FOREIGN and not self._warned_foreign:
            self._warned_foreign = True
            logger.info("call %s: ignored the echo of a mark this sink did not send", self._label)
        if verdict is EchoVerdict.COUNTED:
            self._wake()

    def round_trip_measured(self, rtt_ns: int) -> None:
        """A ping's pong came back ``rtt_ns`` after it was sent."""
        self._scheduler.on_round_trip(rtt_ns)
        self._wake()

    def end(self, reason: str, *, by_us: bool = False) -> None:
        """The call is over: freeze the position and fail every wait with ``reason``.

        The caller's ``stop`` or a dropped socket left the phone half a round trip ago;
        an end ``by_us`` (a hang-up) reaches it half a round trip from now.
        """
        if self._ended is not None:
            return
        self._ended = CallEndedError(reason)
        self._held = self._held[:0]
        self._written = self._scheduler.end(self._clock.now_ns(), by_us=by_us)
        self._cancel_timer()
        self._waiters.end(self._ended)
        confirmations, self._confirmations = self._confirmations, []
        for confirmed in confirmations:
            if not confirmed.done():
                confirmed.set_exception(self._ended)

    @property
    def ended(self) -> bool:
        return self._ended is not None

    # Figures for reports and benchmarks.

    @property
    def round_trip_ns(self) -> int | None:
        """The round trip to Twilio (the smallest of the last five pings), or None before the
        first pong."""
        return self._scheduler.round_trip_ns

    @property
    def confirmed_samples(self) -> int:
        """Audio confirmed by marks alone (what a sink without the round trip would report)."""
        return self._scheduler.confirmed

    @property
    def stale_echoes(self) -> int:
        """Echoes of a cleared turn's marks, ignored rather than counted for the next turn."""
        return self._scheduler.stale_echoes

    @property
    def marks_sent(self) -> int:
        return self._marks_sent

    @property
    def media_sent(self) -> int:
        return self._media_sent

    # The rtc.AudioSource surface.

    async def capture_frame(self, frame: Any) -> None:
        """Send ``frame`` in 20 ms messages; return once the phone is within the queue limit."""
        self._raise_if_ended()
        samples = sink_samples(frame, PHONE_RATE, 1)
        if samples.size == 0:
            return
        self._written += samples.size
        held = np.concatenate((self._held, samples)) if self._held.size else samples
        whole = held.size - held.size % _CHUNK
        self._held = held[whole:].copy()
        if whole:
            self._send(held[:whole], final=False)
        await self._channel.drain()
        if self._phone_now() < self._written - self._queue_limit:
            # wait until half the queue has played, so that the next captures go straight
            # out: one wake-up per half queue rather than one per capture
            target = self._written - self._queue_limit // 2
            await self._wait_for_played(min(target, self._scheduler.sent_total))

    def clear_queue(self) -> None:
        """Send ``clear`` now and freeze the position where the phone will be when it lands."""
        if self._ended is not None:
            return
        self._held = self._held[:0]
        if self._scheduler.sent_total:
            try:
                self._channel.write([clear_message(self._sid)])
            except CallEndedError as error:
                self.end(str(error))
                return
            if self._scheduler.round_trip_ns is None and not self._warned_no_round_trip:
                self._warned_no_round_trip = True
                logger.warning(
                    "call %s: cleared before any pong came back: the position may under-count"
                    " by up to a round trip",
                    self._label,
                )
        self._written = self._scheduler.clear(self._clock.now_ns())
        self._waiters.end()
        self._settle_confirmation()
        self._reschedule()

    async def wait_for_playout(self) -> None:
        """Send what is held, mark the end, and return once the phone confirmed it.

        If no echo confirms the end by ``CONFIRM_GRACE_S`` (or four round trips, if longer)
        after the model says it played, the model's position stands and a warning says so.
        """
        self._raise_if_ended()
        held, self._held = self._held, self._held[:0]
        self._send(held, final=True)
        if self._scheduler.all_confirmed:
            return
        now = self._clock.now_ns()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.append(future)
        played_by = self._scheduler.time_of(self._scheduler.sent_total, now) or now
        grace = max(_CONFIRM_GRACE_NS, 4 * (self._scheduler.round_trip_ns or 0))
        deadline = self._clock.call_at(played_by + grace, self._confirmation_overdue)
        try:
            await future
        finally:
            deadline.cancel()

    # Inside.

    def _send(self, samples: Int16Array, *, final: bool) -> None:
        """Write ``samples`` as media messages of one chunk each, with the marks due."""
        payload = mulaw.encode(samples)
        messages: list[str] = []
        now = self._clock.now_ns()
        scheduler = self._scheduler
        marks = 0
        for start in range(0, len(payload), _CHUNK):
            piece = payload[start : start + _CHUNK]
            messages.append(media_message(self._sid, piece))
            mark = scheduler.sent(len(piece), now)
            if mark is not None:
                messages.append(mark_message(self._sid, mark))
                marks += 1
        if final:
            mark = scheduler.end_of_audio(now)
            if mark is not None:
                messages.append(mark_message(self._sid, mark))
                marks += 1
        if not messages:
            return
        self._marks_sent += marks
        self._media_sent += len(messages) - marks
        self._write(messages)

    def _confirmation_overdue(self) -> None:
        if not self._confirmations:
            return
        logger.warning(
            "call %s: Twilio did not echo the last mark; taking the modelled position as final",
            self._label,
        )
        self._settle_confirmation()

    def _settle_confirmation(self) -> None:
        confirmations, self._confirmations = self._confirmations, []
        for confirmed in confirmations:
            if not confirmed.done():
                confirmed.set_result(None)

    def _write(self, messages: Sequence[str]) -> None:
        try:
            self._channel.write(messages)
        except CallEndedError as error:
            self.end(str(error))
            raise

    def _phone_now(self) -> int:
        """Where the model has the phone now: what paces the sending."""
        return self._scheduler.position(self._clock.now_ns())

    def _raise_if_ended(self) -> None:
        if self._ended is not None:
            raise self._ended

    async def _wait_for_played(self, target: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(target, future)
        self._reschedule()
        await future

    def _wake(self) -> None:
        """Release what the position now reaches and arm the timer for the rest."""
        if self._scheduler.all_confirmed:
            self._settle_confirmation()
        self._reschedule()

    def _reschedule(self) -> None:
        self._cancel_timer()
        if self._ended is not None:
            return
        target = self._waiters.release(self._phone_now())
        if target == NEVER:
            return
        now = self._clock.now_ns()
        when = self._scheduler.time_of(target, now)
        if when is not None:
            self._timer = self._clock.call_at(max(when, now), self._reschedule)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
