"""An item's text side: pushes its text to the forwarder and drives the captions with the
played position. A failing text stream or forwarder stops the captions, never the audio.

The forwarder's capabilities are found by shape (``transcript.forwarder``'s protocols),
so any forwarder with the same methods is treated as ``TranscriptForwarder`` is.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterable, Callable
from typing import Any

from ..clock import Clock
from ..core.positions import CaptionPace, samples_to_ns
from ..core.timeline import ItemState
from ..sinks.base import PositionedSink
from ..transcript.forwarder import (
    PositionDriven,
    SegmentsForwarder,
    is_caption_lookahead,
    is_item_aware,
    is_position_driven,
    is_timed_text_forwarder,
)
from ..transcript.timed_text import TimedText
from .guards import stray_cancel
from .record import ItemRecord

logger = logging.getLogger("agent_playout")

CAPTION_PACE_NS = 20_000_000
CAPTION_BURST = 4
"""The caption driver's timer fires at most ``CAPTION_BURST`` times in a row faster than
once per ``CAPTION_PACE_NS`` (20 ms, within a video frame; wakes by new input do not
count). Captions of speech stay exact to the sample, while text denser than anyone can
read, such as one huge push, cannot wake the loop at every sample. The stop gives the
forwarder its exact final position whatever the pace."""

_ANY_CAPTION = sys.maxsize
"""``Captions.due`` while the driver waits for no caption: any caption is earlier."""


class Captions:
    """The text of one item and the forwarder's captions, for ``ItemRun``."""

    def __init__(
        self,
        record: ItemRecord,
        forwarder: SegmentsForwarder,
        sink: PositionedSink,
        clock: Clock,
        paused: Callable[[], bool],
    ) -> None:
        self.record = record
        self.forwarder = forwarder
        self.changed = asyncio.Event()
        self._sink = sink
        self._clock = clock
        self._paused = paused
        if is_item_aware(forwarder):
            forwarder.item_id = record.item_id
        self.driven: PositionDriven | None = forwarder if is_position_driven(forwarder) else None
        self._next_caption: Callable[[], int | None] | None = (
            forwarder.next_caption_sample if is_caption_lookahead(forwarder) else None
        )
        self._timed_text = is_timed_text_forwarder(forwarder)
        self.due: int | None = None
        """The caption the driver's timer waits for (None: none); read by the reader per
        frame, which wakes the driver only while it waits for one."""
        self._dead = False
        self._audio_dead = False

    def failed(self, error: BaseException, what: str) -> None:
        """A forwarder call raised: stop driving the captions where they are."""
        self._dead = True
        self.due = None
        self._next_caption = None
        self.changed.set()
        text_failed(self.record, error, what)

    def call(self, call: Callable[[], object], what: str) -> None:
        """Make one forwarder call; if it raises, the captions stop (``failed``)."""
        try:
            call()
        except Exception as error:
            self.failed(error, f"the forwarder's {what}")

    def begin(self) -> None:
        """The first audio frame arrived: the captions start."""
        self.changed.set()
        self.call(self.forwarder.segment_playout_started, "segment_playout_started()")

    def audio_failed(self, error: BaseException) -> None:
        """The forwarder's ``push_audio`` raised: it is given no more audio."""
        self._audio_dead = True
        self.failed(error, "the forwarder's push_audio()")

    def audio_ended(self) -> None:
        if not self._audio_dead:
            self.call(self.forwarder.mark_audio_segment_end, "mark_audio_segment_end()")
            self.input_taken()

    def end(self) -> None:
        """At the stop, before ``playout_stopped``: the forwarder learns the frozen position
        (so its ``played_text`` is final when the event fires) and that the text ended."""
        record = self.record
        driven = self.driven
        forwarder = self.forwarder
        if driven is not None and not self._dead:
            position = record.input_played_on(self._sink)
            self.call(lambda: driven.set_playout_position(position), "set_playout_position()")
        self.call(forwarder.mark_text_segment_end, "mark_text_segment_end()")
        if record.started and record.timeline.state is ItemState.FINISHED and not self._dead:
            self.call(forwarder.segment_playout_finished, "segment_playout_finished()")

    def take_text(self, text: str | TimedText) -> None:
        """Give the forwarder a piece of text (plain text to one that takes no timestamps)."""
        if self._dead:
            return
        try:
            if isinstance(text, TimedText) and not self._timed_text:
                self.forwarder.push_text(text.text)
            else:
                self.forwarder.push_text(text)  # type: ignore[arg-type]
        except Exception as error:
            self.failed(error, "the forwarder's push_text()")
            return
        self.input_taken()

    def text_ended(self) -> None:
        if not self._dead:
            self.call(self.forwarder.mark_text_segment_end, "mark_text_segment_end()")
            self.input_taken()

    def input_taken(self) -> None:
        """Wake the caption driver if the input just taken can bring its next caption earlier.

        A caption that moves later needs no wake: the driver's timer fires early, it sees no
        new word heard, and it waits again. A forwarder that cannot say where its next
        caption is (no ``next_caption_sample``) wakes the driver on all its input.
        """
        due = self.due
        if due is None:
            return
        if self._next_caption is not None:
            try:
                upcoming = self._next_caption()
            except Exception as error:
                self.failed(error, "the forwarder's next_caption_sample()")
                return
            if upcoming is None or upcoming >= due:
                return
            self.due = upcoming
        self.changed.set()

    async def drive(self, driven: PositionDriven) -> None:
        """Report the played position to the forwarder when its text is due to change.

        It wakes on its timer, at the first frame, on ``resume()``, and on input that brings
        the next caption earlier (``input_taken``); ``due`` tells the input which caption
        its timer waits for (None: none until the first frame or a resume).
        """
        clock = self._clock
        record = self.record
        sink = self._sink
        changed = self.changed
        pace = CaptionPace(CAPTION_PACE_NS, CAPTION_BURST)
        while not self._dead:
            played = record.input_played_on(sink)
            try:
                upcoming = driven.set_playout_position(played)
            except Exception as error:
                self.failed(error, "the forwarder's set_playout_position()")
                return
            changed.clear()
            if not record.started or self._paused():
                self.due = None
                await changed.wait()
                continue
            if upcoming is None:
                self.due = _ANY_CAPTION
                await changed.wait()
                continue
            self.due = upcoming
            wait_ns = samples_to_ns(upcoming - played, record.input_rate)
            due_ns = pace.due(clock.now_ns() + wait_ns)
            timer = clock.call_at(due_ns, changed.set)
            try:
                await changed.wait()
            finally:
                timer.cancel()
            if clock.now_ns() >= due_ns:  # a wake by the timer counts against the pace
                pace.fired(due_ns)


def text_failed(record: ItemRecord, error: BaseException, what: str) -> None:
    """The text or a forwarder call failed: record it, log it once with the item id.

    The audio plays on; only the captions are affected.
    """
    if not record.fail_text(error):
        logger.debug(
            "item %s: %s failed after the captions stopped: %r", record.item_id, what, error
        )
        return
    logger.error(
        "item %s: %s failed; the captions stop there, the audio plays on: %s",
        record.item_id,
        what,
        error,
        exc_info=error,
        extra={"item_id": record.item_id},
    )


async def read_text(
    record: ItemRecord, text_stream: AsyncIterable[Any], captions: Captions | None
) -> None:
    """Read the item's text into its captions, if it has any; a bad text stream stops the
    text, not the audio."""
    try:
        async for text in text_stream:
            if not isinstance(text, str | TimedText):
                error = TypeError(
                    f"text_stream of item {record.item_id!r} must yield str or TimedText,"
                    f" got {type(text).__name__}"
                )
                text_failed(record, error, "the text stream")
                return
            if captions is not None:
                captions.take_text(text)
        if captions is not None:
            captions.text_ended()
    except asyncio.CancelledError as error:
        what = f"text_stream of item {record.item_id!r}"
        text_failed(record, stray_cancel(error, what, record.stopped), "the text stream")
    except Exception as error:
        text_failed(record, error, "the text stream")
