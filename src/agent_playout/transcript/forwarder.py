"""Transcript forwarder with LiveKit Agents 0.12's methods, driven by the played-sample position.

It has no timer of its own: the engine reports how many samples have played and the
forwarder answers with the count at which the heard text next changes. Sentence segments
with real times on the item's sample clock come out as ``"segment"`` events and through
``segments()``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

from ..core.frames import AudioFrameLike
from ..core.protocols import conforms
from ..events import EventEmitter
from .aligner import TranscriptAligner
from .sentences import HeardWord as HeardWord
from .sentences import SentenceSegmenter
from .sentences import TranscriptSegment as TranscriptSegment
from .timed_text import TimedText

logger = logging.getLogger("agent_playout")


@runtime_checkable
class SegmentsForwarder(Protocol):
    """The forwarder surface LiveKit Agents 0.12's ``AgentPlayout`` calls.

    LiveKit 0.x ``TTSSegmentsForwarder`` has it, and so does ``TranscriptForwarder``.
    """

    def push_text(self, text: str) -> None: ...

    def push_audio(self, frame: Any) -> None: ...

    def mark_text_segment_end(self) -> None: ...

    def mark_audio_segment_end(self) -> None: ...

    def segment_playout_started(self) -> None: ...

    def segment_playout_finished(self) -> None: ...

    async def aclose(self) -> None: ...

    @property
    def played_text(self) -> str: ...


@runtime_checkable
class PositionDriven(Protocol):
    """A forwarder the engine drives with the item's played-sample count."""

    def set_playout_position(self, played_samples: int) -> int | None:
        """Take the played count; return the count at which the text next changes, if known."""
        ...


@runtime_checkable
class ItemAware(Protocol):
    """A forwarder that names its item in its log records: ``play()`` gives it the id."""

    @property
    def item_id(self) -> str | None: ...

    @item_id.setter
    def item_id(self, item_id: str | None) -> None: ...


@runtime_checkable
class CaptionLookahead(Protocol):
    """A forwarder that can tell, without moving, where its heard text next changes: the
    engine then wakes its caption driver only on input that brings that change earlier."""

    def next_caption_sample(self) -> int | None: ...


@runtime_checkable
class TimedTextForwarder(Protocol):
    """A forwarder that takes word timestamps: ``push_text`` accepts ``TimedText``, and it
    counts the timestamps it had to repair. Any other forwarder is given the plain text."""

    def push_text(self, text: str | TimedText) -> None: ...

    @property
    def timestamp_repairs(self) -> int: ...


def is_segments_forwarder(obj: object) -> TypeGuard[SegmentsForwarder]:
    """``isinstance(obj, SegmentsForwarder)``, cached per class."""
    return conforms(obj, SegmentsForwarder)


def is_position_driven(obj: object) -> TypeGuard[PositionDriven]:
    """``isinstance(obj, PositionDriven)``, cached per class."""
    return conforms(obj, PositionDriven)


def is_item_aware(obj: object) -> TypeGuard[ItemAware]:
    """``isinstance(obj, ItemAware)``, cached per class."""
    return conforms(obj, ItemAware)


def is_caption_lookahead(obj: object) -> TypeGuard[CaptionLookahead]:
    """``isinstance(obj, CaptionLookahead)``, cached per class."""
    return conforms(obj, CaptionLookahead)


def is_timed_text_forwarder(obj: object) -> TypeGuard[TimedTextForwarder]:
    """``isinstance(obj, TimedTextForwarder)``, cached per class."""
    return conforms(obj, TimedTextForwarder)


_CLOSED = object()


async def _drain_segments(
    queue: asyncio.Queue[object], subscribers: list[asyncio.Queue[object]]
) -> AsyncIterator[TranscriptSegment]:
    try:
        while (segment := await queue.get()) is not _CLOSED:
            assert isinstance(segment, TranscriptSegment)
            yield segment
    finally:
        if queue in subscribers:
            subscribers.remove(queue)


class TranscriptForwarder(EventEmitter[Literal["segment"]]):
    """Keeps ``played_text`` in step with the audio the listener has heard.

    ``before_forward`` rewrites a segment's text before it is shown (``played_text`` stays
    the raw heard text, for truncation). ``speed`` scales the pacing prior used before the
    audio's length is known; ``language`` tags segments and picks the hyphenation
    dictionary. ``record_words`` keeps every heard word with its start, for reports (text
    passed over as one span, see ``aligner``, is one entry and one segment).
    """

    def __init__(
        self,
        *,
        language: str = "en-US",
        speed: float = 1.0,
        before_forward: Callable[[str], str] | None = None,
        record_words: bool = False,
    ) -> None:
        super().__init__()
        self._aligner = TranscriptAligner(language=language, speed=speed)
        self._language = language
        self._before_forward = before_forward
        self._rate_known = False
        self._played_samples = 0
        self._cached_text: tuple[int, str] = (0, "")
        self._sentences = SentenceSegmenter(
            self._aligner, language=language, record_words=record_words
        )
        self._finished = False
        self._closed = False
        self._subscribers: list[asyncio.Queue[object]] = []
        self._guarded: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._failed_listeners: set[Callable[..., Any]] = set()
        self._emitting = ""

    @property
    def item_id(self) -> str | None:
        """The item whose transcript this is, named in log records; ``play()`` sets it."""
        return self._aligner.item_id

    @item_id.setter
    def item_id(self, item_id: str | None) -> None:
        self._aligner.item_id = item_id

    def on(self, event: Literal["segment"], callback: Callable[..., Any] | None = None) -> Any:
        """Register a ``segment`` listener; one that raises is logged once per item (with
        the item id) and the others, and ``segments()`` consumers, still get every segment."""
        if callback is None:
            return super().on(event)
        if not callable(callback):
            return super().on(event, callback)
        guarded = self._guarded.get(callback)
        if guarded is None:
            guarded = self._guarded[callback] = self._guard(callback)
        super().on(event, guarded)
        return callback

    def off(self, event: Literal["segment"], callback: Callable[..., Any]) -> None:
        super().off(event, self._guarded.pop(callback, callback))

    def _guard(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` with its errors logged; it keeps the callback's signature, so the
        emitter passes it the arguments the callback takes."""

        @functools.wraps(callback)
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                if callback not in self._failed_listeners:
                    self._failed_listeners.add(callback)
                    logger.exception(
                        "item %s: segment listener %r failed on segment %s"
                        " (its later failures for this item are not logged)",
                        self.item_id,
                        callback,
                        self._emitting,
                    )

        return guarded

    @property
    def played_text(self) -> str:
        """The words the listener has heard so far, with their trailing punctuation."""
        heard = self._aligner.heard_chars
        if self._cached_text[0] != heard:
            self._cached_text = (heard, self._aligner.text[:heard])
        return self._cached_text[1]

    @property
    def heard_chars(self) -> int:
        """``len(played_text)`` without building the string."""
        return self._aligner.heard_chars

    @property
    def text(self) -> str:
        """All text received for the item."""
        return self._aligner.text

    @property
    def sample_rate(self) -> int:
        """The rate of the positions this forwarder takes: that of the audio it was given."""
        return self._aligner.sample_rate

    @property
    def language(self) -> str:
        return self._language

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def timestamp_repairs(self) -> int:
        """Timestamps that were impossible and were repaired (see ``aligner``)."""
        return self._aligner.repairs

    @property
    def heard_words(self) -> list[HeardWord]:
        """Each heard word and its start sample; only with ``record_words=True``."""
        heard = self._sentences.heard_words
        if heard is None:
            raise RuntimeError("heard_words needs TranscriptForwarder(record_words=True)")
        return heard

    def push_text(self, text: str | TimedText) -> None:
        """Add transcript text, plain or with its timestamps."""
        self._check_open("push_text")
        self._aligner.push_text(text)

    def push_audio(self, frame: AudioFrameLike) -> None:
        """Count the item's audio; its rate becomes the forwarder's clock."""
        self._check_open("push_audio")
        if not self._rate_known:
            self._aligner.sample_rate = frame.sample_rate
            self._rate_known = True
        self._aligner.push_audio(frame.samples_per_channel)

    def mark_text_segment_end(self) -> None:
        self._aligner.end_text()

    def mark_audio_segment_end(self) -> None:
        self._aligner.end_audio()

    def segment_playout_started(self) -> None:
        """Nothing to do: the played count, not this call, says what was heard."""

    def segment_playout_finished(self) -> None:
        """The whole item played: every word was heard and the last sentence is final."""
        if self._finished:
            return
        self._finished = True
        self._publish(self._sentences.hear_all())

    def set_playout_position(self, played_samples: int) -> int | None:
        if played_samples < self._played_samples:
            raise ValueError(
                f"playout position went backwards: {played_samples} < {self._played_samples}"
            )
        self._played_samples = played_samples
        if self._finished or self._closed:
            return None
        self._publish(self._sentences.advance(played_samples))
        return self._aligner.next_boundary(played_samples)

    def next_caption_sample(self) -> int | None:
        """The played count at which the heard text next changes, from the text and audio
        received so far; None if no word is waiting to be heard.

        Moves nothing: the engine asks after each input, to wake its caption driver only
        when the answer comes earlier. Right after ``set_playout_position`` it equals what
        that returned.
        """
        if self._finished or self._closed:
            return None
        return self._aligner.next_boundary(self._played_samples)

    def segments(self) -> AsyncIterator[TranscriptSegment]:
        """Segments emitted from this call on, until the forwarder is closed.

        The subscription starts at the call, not at the first ``await``, so nothing emitted
        in between is missed.
        """
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(_CLOSED)
        else:
            self._subscribers.append(queue)
        return _drain_segments(queue, self._subscribers)

    async def aclose(self) -> None:
        """Close; a sentence cut short by an interrupt is emitted final with what was heard."""
        if self._closed:
            return
        try:
            if not self._finished:
                self._publish(self._sentences.close(self._played_samples))
        finally:
            self._closed = True
            for queue in self._subscribers:
                queue.put_nowait(_CLOSED)
            self._subscribers.clear()

    def _publish(self, segments: list[TranscriptSegment]) -> None:
        """Rewrite each segment's text with ``before_forward``, then hand it to every
        ``segments()`` consumer and ``segment`` listener, in order."""
        for segment in segments:
            if self._before_forward is not None:
                segment = replace(segment, text=self._before_forward(segment.text))
            for queue in self._subscribers:
                queue.put_nowait(segment)
            self._emitting = segment.id
            self.emit("segment", segment)

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(f"TranscriptForwarder.{method} called after aclose()")
