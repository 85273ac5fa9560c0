"""A per-item record of what was played and heard, for applications to log as JSON.

Built from a finished ``PlayoutHandle`` and its ``TranscriptForwarder(record_words=True)``;
it holds numbers and text only, so it can be stored, compared and plotted later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..core.positions import realtime_samples
from ..core.truncation import Truncation, truncation_for
from ..transcript.forwarder import TranscriptForwarder
from ..transcript.timed_text import TimedText
from .handle import PlayoutHandle


@dataclass(frozen=True)
class ReportWord:
    """A word of the item's text, where it starts (seconds; None if unknown) and if heard."""

    text: str
    start: float | None
    heard: bool


@dataclass(frozen=True)
class PlayoutReport:
    """One item's outcome: counts at their rates, the heard text, and the truncation to send.

    ``played_samples`` is at ``sample_rate`` (the output's), ``received_samples`` at
    ``input_sample_rate`` (the item's audio), ``audio_samples`` heard at 24 kHz.
    """

    item_id: str
    content_index: int
    first_frame_latency: float | None
    played_samples: int
    sample_rate: int
    received_samples: int
    input_sample_rate: int
    audio_samples: int
    underruns: int | None
    underrun_seconds: float | None
    interrupted: bool
    error: str | None
    heard_text: str
    words: tuple[ReportWord, ...]
    truncation: Truncation | None
    position_confirmed: bool | None = None
    """Whether a receiver confirmed ``played_samples`` (see ``PlayoutHandle``); None when
    no confirmation applies."""

    @property
    def played_seconds(self) -> float:
        """How long the listener heard the item."""
        return self.played_samples / self.sample_rate

    @property
    def received_seconds(self) -> float:
        """How much audio arrived for the item."""
        return self.received_samples / self.input_sample_rate

    @classmethod
    def from_playout(
        cls,
        handle: PlayoutHandle,
        forwarder: TranscriptForwarder,
        *,
        timings: Sequence[TimedText] = (),
    ) -> PlayoutReport:
        """Report a finished item. ``timings``, one ``TimedText`` per word as pushed, give
        the starts of the words that were not heard (heard ones come from the forwarder)."""
        if not handle.done() or not forwarder.closed:
            raise ValueError(
                f"item {handle.item_id!r} is not finished; await handle.wait_for_playout() first"
            )
        sent = realtime_samples(handle.received_samples, handle.input_sample_rate)
        return cls(
            item_id=handle.item_id,
            content_index=handle.content_index,
            first_frame_latency=handle.first_frame_latency,
            played_samples=handle.played_samples,
            sample_rate=handle.sample_rate,
            received_samples=handle.received_samples,
            input_sample_rate=handle.input_sample_rate,
            audio_samples=handle.audio_samples,
            underruns=handle.underruns,
            underrun_seconds=handle.underrun_seconds,
            interrupted=handle.interrupted,
            error=None if handle.error is None else str(handle.error),
            heard_text=handle.played_text,
            words=_words(forwarder, timings),
            truncation=truncation_for(
                item_id=handle.item_id,
                content_index=handle.content_index,
                heard_samples=handle.audio_samples,
                sent_samples=sent,
                completed=not handle.interrupted,
            ),
            position_confirmed=handle.position_confirmed,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``truncation`` is the client event itself (or None)."""
        data = asdict(self)
        data["words"] = list(data["words"])
        data["truncation"] = None if self.truncation is None else self.truncation.to_event()
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _words(forwarder: TranscriptForwarder, timings: Sequence[TimedText]) -> tuple[ReportWord, ...]:
    """Heard words with the starts the forwarder used, then the rest of the text's words."""
    rate = forwarder.sample_rate
    heard = [
        ReportWord(word.text.strip(), word.start / rate, True) for word in forwarder.heard_words
    ]
    rest = forwarder.text.split()[len(heard) :]
    if timings and len(timings) != len(heard) + len(rest):
        raise ValueError(
            f"timings must hold one TimedText per word: got {len(timings)} for"
            f" {len(heard) + len(rest)} words"
        )
    starts: list[float | None] = [timing.start for timing in timings[len(heard) :]]
    starts += [None] * (len(rest) - len(starts))
    unheard = [ReportWord(text, start, False) for text, start in zip(rest, starts, strict=True)]
    return (*heard, *unheard)
