"""``PlayoutHandle``: a read-only view of one item's ``ItemRecord``, and its interrupt."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable

from ..core.positions import realtime_samples
from ..core.timeline import ItemState
from ..core.units import NS_PER_SECOND
from ..sinks.base import PositionedSink
from ..transcript.forwarder import SegmentsForwarder
from .record import ItemRecord


class PlayoutHandle:
    """One item's playout: its exact heard position, its text, and its interrupt.

    Not thread-safe, like asyncio: use it on its event loop's thread, except for
    ``interrupt()`` and ``interrupt_threadsafe()``, which may be called from any thread.
    """

    def __init__(
        self,
        record: ItemRecord,
        sink: PositionedSink,
        forwarder: SegmentsForwarder | None,
        interrupt: Callable[[], None],
    ) -> None:
        self._record = record
        self._sink = sink
        self._tr_fwd = forwarder  # the name LiveKit 0.12's MultimodalAgent reads it by
        self._interrupt = interrupt
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    @property
    def item_id(self) -> str:
        return self._record.item_id

    @property
    def content_index(self) -> int:
        return self._record.content_index

    @property
    def sample_rate(self) -> int:
        """The rate of ``played_samples``: the sink's."""
        return self._sink.sample_rate

    @property
    def played_samples(self) -> int:
        """Samples per channel the listener has heard, at the sink's rate; exact."""
        return self._record.played_on(self._sink)

    @property
    def input_played_samples(self) -> int:
        """Heard samples at the rate of the item's own audio (the transcript's clock).

        Never above what was received (a resampler may round the item's length up), so it
        only grows, and on completion it is exactly the samples received.
        """
        return self._record.input_played_on(self._sink)

    @property
    def audio_samples(self) -> int:
        """Heard samples at 24 kHz, LiveKit Agents 0.12's unit: ``played_samples`` at that rate.

        On completion that is every sample the sink played for the item: with a 24 kHz sink,
        exactly the samples the resampler made of the item's audio, whatever its own rate.
        """
        return realtime_samples(self.played_samples, self._sink.sample_rate)

    @property
    def position_confirmed(self) -> bool | None:
        """For an item cut short on an output that confirms its stops: True once it did
        (WebRTC: the receiver's reports, less the packets it dropped; LiveKit: the native
        clear ran in time), False if it could not, and the count stays as it was (WebRTC:
        what was sent; LiveKit: maybe short, by the ticks the clear was late). None when no
        confirmation applies."""
        return self._record.position_confirmed

    @property
    def pushed_samples(self) -> int:
        """Samples per channel handed to the sink, at the sink's rate."""
        return self._record.timeline.pushed

    @property
    def received_samples(self) -> int:
        """Samples per channel received from the audio stream, at its own rate."""
        return self._record.timeline.received

    @property
    def underruns(self) -> int | None:
        """Times the audio ran dry mid-item (silence played, not counted); None if the sink
        cannot tell."""
        counts = self._underrun_counts()
        return None if counts is None else counts[0]

    @property
    def underrun_seconds(self) -> float | None:
        """Total silence played mid-item because the audio arrived late."""
        counts = self._underrun_counts()
        return None if counts is None else counts[1] / NS_PER_SECOND

    def _underrun_counts(self) -> tuple[int, int] | None:
        record = self._record
        return record.underruns(sink_underruns(self._sink) if record.underruns_live else None)

    @property
    def input_sample_rate(self) -> int:
        """The rate of the item's audio stream (the sink's until the first frame)."""
        return self._record.input_rate

    @property
    def state(self) -> ItemState:
        return self._record.timeline.state

    @property
    def played_text(self) -> str:
        """What the forwarder says the listener heard (empty without a forwarder)."""
        return "" if self._tr_fwd is None else self._tr_fwd.played_text

    @property
    def text_chars(self) -> int:
        return len(self.played_text)

    @property
    def interrupted(self) -> bool:
        """True when the item stopped before playing all it received (interrupt or error)."""
        return self._record.interrupted

    @property
    def error(self) -> BaseException | None:
        """The error that ended the item, if one did."""
        return self._record.error

    @property
    def text_error(self) -> BaseException | None:
        """The error that stopped the item's captions, if one did; the audio played on.

        A text stream that raised or yielded something other than ``str``/``TimedText``
        stops the text (captions go on for the text before it); a forwarder call that
        raised stops the captions where they were. Neither sets ``error`` or ``interrupted``.
        """
        return self._record.text_error

    @property
    def first_frame_latency(self) -> float | None:
        """Seconds from ``play()`` to the first audio frame, for display."""
        record = self._record
        if record.first_frame_ns is None:
            return None
        return (record.first_frame_ns - record.play_ns) / NS_PER_SECOND

    def done(self) -> bool:
        record = self._record
        return record.released or record.interrupted

    def interrupt(self) -> None:
        """Stop now: the sink is cleared, the heard position frozen and ``playout_stopped``
        emitted, all before this returns; ``wait_for_playout()`` then returns once the item
        has wound down. A no-op once the item stopped, and a completed item stays completed.

        From a thread other than the loop's it is ``interrupt_threadsafe()``: the stop is
        then done on the loop, shortly after this returns.
        """
        if threading.get_ident() != self._thread:
            self.interrupt_threadsafe()
            return
        self._interrupt()

    def interrupt_threadsafe(self) -> concurrent.futures.Future[None]:
        """``interrupt()`` from any thread; the future is done once the item has stopped
        (position frozen, ``playout_stopped`` emitted), with the error if one was raised.

        Do not block the loop's own thread on the future: the stop runs on that loop.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self.interrupt()
            except BaseException as error:
                future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
            else:
                future.set_result(None)

        if threading.get_ident() == self._thread:
            run()
        else:
            self._loop.call_soon_threadsafe(run)
        return future

    async def wait_for_playout(self) -> None:
        """Return once the item is fully finished: sink drained or cleared, events emitted,
        and, on an output that settles (WebRTC), an interrupted item's count confirmed."""
        await self._record.wait_released()

    def __repr__(self) -> str:
        return (
            f"PlayoutHandle(item_id={self.item_id!r}, state={self.state.value},"
            f" audio_samples={self.audio_samples})"
        )


def sink_underruns(sink: object) -> tuple[int, int] | None:
    """The sink's (underrun count, underrun nanoseconds), if it reports them."""
    count = getattr(sink, "underruns", None)
    duration = getattr(sink, "underrun_ns", None)
    if isinstance(count, int) and isinstance(duration, int):
        return count, duration
    return None
