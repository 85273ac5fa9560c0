"""Transcript forwarder with the methods the seed calls, driven by the played-sample position."""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from .frames import AudioFrameLike
from .transcript import TranscriptAligner

logger = logging.getLogger("agent_playout")


@runtime_checkable
class SegmentsForwarder(Protocol):
    """The forwarder surface the seed's ``AgentPlayout`` calls (LiveKit 0.x's).

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


class TranscriptForwarder:
    """Keeps ``played_text`` in step with the audio the listener has heard.

    It has no timer of its own: the engine reports the played-sample position and the
    forwarder answers with the next position where the heard text changes.
    """

    def __init__(self) -> None:
        self._aligner = TranscriptAligner()
        self._played_samples = 0
        self._played_text = ""
        self._started = False
        self._finished = False
        self._closed = False

    @property
    def played_text(self) -> str:
        """The words the listener has heard so far, with their trailing punctuation."""
        return self._played_text

    @property
    def text(self) -> str:
        """All text received for the segment."""
        return self._aligner.text

    @property
    def closed(self) -> bool:
        return self._closed

    def push_text(self, text: str) -> None:
        self._check_open("push_text")
        self._aligner.push_text(text)
        self._refresh()

    def push_audio(self, frame: AudioFrameLike) -> None:
        self._check_open("push_audio")
        self._aligner.push_audio(frame.samples_per_channel)

    def mark_text_segment_end(self) -> None:
        self._aligner.end_text()

    def mark_audio_segment_end(self) -> None:
        self._aligner.end_audio()

    def segment_playout_started(self) -> None:
        self._started = True

    def segment_playout_finished(self) -> None:
        """The whole segment was played: everything received was heard."""
        self._finished = True
        self._played_text = self._aligner.heard_text(self._played_samples, complete=True)

    def set_playout_position(self, played_samples: int) -> int | None:
        if played_samples < self._played_samples:
            raise ValueError(
                f"playout position went backwards: {played_samples} < {self._played_samples}"
            )
        self._played_samples = played_samples
        self._refresh()
        return None if self._finished else self._aligner.next_boundary(played_samples)

    async def aclose(self) -> None:
        self._closed = True

    def _refresh(self) -> None:
        if not self._finished:
            self._played_text = self._aligner.heard_text(self._played_samples)

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(f"TranscriptForwarder.{method} called after aclose()")
