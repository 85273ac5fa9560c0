"""One playback segment's counts on the sink's sample clock, and its heard text (pure).

LiveKit Agents cuts its audio into segments (ended by ``flush()`` or ``clear_buffer()``)
and its text into segments of its own (ended by the text output's ``flush()``). A
``Segment`` pairs them: it counts the segment's samples from the place on the sink where
its first one went, and it places its text on those samples with ``TranscriptAligner``,
so the heard position and the heard words come from one integer count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TypeGuard

from ...transcript.aligner import TranscriptAligner
from ...transcript.timed_text import TimedText


@dataclass(frozen=True)
class Run:
    """A stretch of the segment that played without a pause, in samples of the segment."""

    offset: int
    duration: int
    started_at: float
    """Wall-clock time (``time.time()``) its first sample played."""


class SegmentText:
    """The text of one segment, placed on its audio by the aligner."""

    def __init__(self, sample_rate: int) -> None:
        self.aligner = TranscriptAligner(sample_rate)
        self.received = False
        self.text_ended = False
        self.bound = False
        """True once an audio segment took this text."""

    def push(self, text: str) -> None:
        self.received = True
        self.aligner.push_text(timed(text))

    def end(self) -> None:
        self.text_ended = True
        self.aligner.end_text()

    def heard(self, samples: int, *, complete: bool) -> str:
        """The words whose first sample is among the first ``samples`` played.

        Only a segment that played out complete ends the aligner's audio: a cut one may
        have been cut before its TTS finished, so its length is not the speech's.
        """
        aligner = self.aligner
        if complete:
            aligner.end_audio()
            aligner.hear_all()
        else:
            aligner.advance(samples)
        return aligner.text[: aligner.heard_chars]


def timed(text: str) -> str | TimedText:
    """``text`` with its times, when it is a LiveKit ``TimedString`` that has both (a TTS
    with aligned transcripts: seconds from the segment's first sample); else as it is."""
    start, end = getattr(text, "start_time", None), getattr(text, "end_time", None)
    if not (_seconds(start) and _seconds(end)):
        return text
    try:
        return TimedText(str(text), float(start), float(end))
    except ValueError:
        return str(text)  # times no position can have: placed by the estimate instead


def _seconds(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


_KEPT = 16
"""Text segments kept at most while no audio takes them."""


class TextSegments:
    """Text segments in order, each waiting for the audio segment it belongs to.

    Text usually comes before its audio (the LLM runs ahead of the TTS), sometimes after:
    an audio segment takes the oldest text segment no audio has taken, or opens one that
    the text then fills.
    """

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._segments: deque[SegmentText] = deque()
        self.attached = False
        """True once a text output feeds this (else no segment has a transcript)."""

    def _open(self) -> SegmentText:
        """The segment new text goes to: the newest, unless its text ended. Text that no
        audio ever takes (an output no longer attached) is kept for the last few only."""
        segments = self._segments
        if not segments or segments[-1].text_ended:
            if len(segments) >= _KEPT and not segments[0].bound:
                segments.popleft()
            segments.append(SegmentText(self._rate))
        return segments[-1]

    def push(self, text: str) -> None:
        self._open().push(text)

    def end(self) -> None:
        """The text output was flushed: the open segment's text is complete."""
        if self._segments and not self._segments[-1].text_ended:
            self._segments[-1].end()

    def take(self) -> SegmentText:
        """The text of a new audio segment (text that no audio took before it is dropped
        when this segment finishes)."""
        for segment in self._segments:
            if not segment.bound:
                segment.bound = True
                return segment
        segment = SegmentText(self._rate)
        segment.bound = True
        self._segments.append(segment)
        return segment

    def release(self, segment: SegmentText) -> None:
        """``segment``'s audio finished: drop it and the unbound text before it."""
        while self._segments:
            if self._segments.popleft() is segment:
                return

    def drop_unheard(self) -> None:
        """A speech was cleared before any of its audio came: its text, which no audio
        took, must not become the next speech's."""
        self._segments = deque(segment for segment in self._segments if segment.bound)


class Segment:
    """An audio segment: where it starts on the sink, what it pushed, where it stopped."""

    def __init__(self, start: int, text: SegmentText, started_at: float) -> None:
        self.start = start
        """The sink's ``samples_written`` when its first sample was captured."""
        self.text = text
        self.pushed = 0
        self.flushed = False
        self.cut: int | None = None
        """Samples played when ``clear_buffer()`` stopped it (the fade included)."""
        self._run_offset = 0
        self._run_started_at = started_at

    def pushed_audio(self, samples: int) -> None:
        self.pushed += samples
        self.text.aligner.push_audio(samples)

    def flush(self) -> None:
        self.flushed = True

    def played(self, sink_played: int) -> int:
        """The segment's samples among the sink's first ``sink_played``."""
        return min(max(sink_played - self.start, 0), self.pushed)

    def end_run(self, played: int, now: float) -> Run | None:
        """The run that played up to ``played`` samples; the next one starts at ``now``."""
        run = None
        if played > self._run_offset:
            run = Run(self._run_offset, played - self._run_offset, self._run_started_at)
        self._run_offset = max(played, self._run_offset)
        self._run_started_at = now
        return run

    def transcript(self, played: int, *, complete: bool) -> str | None:
        """The heard text, or None when no text reached this segment."""
        if not self.text.received:
            return None
        return self.text.heard(played, complete=complete)
