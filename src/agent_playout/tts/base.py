"""What every voice shares: the ``Voice`` protocol, its results, its error and install hint.

The backends import these from here, never from the package, so that the package can load
them by name without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..errors import PlayoutError

INSTALL_HINT = "pip install 'agent-playout[tts]'"
"""How to install every voice's packages (the ``[tts]`` extra)."""


class VoiceUnavailableError(PlayoutError, RuntimeError):
    """The requested voice is unknown or cannot load here; the message says what to install."""


@dataclass(frozen=True)
class WordTiming:
    """One word of the input text and where it is spoken.

    ``text`` is the word exactly as it appears in the input, trailing punctuation included.
    ``start`` and ``end`` (exclusive) are sample offsets from the start of the utterance.
    A word the voice does not speak (a lone dash) has ``start == end``.
    """

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class SynthesisChunk:
    """A contiguous piece of the utterance: usually one sentence.

    ``audio`` is int16 mono. ``start`` is the sample offset of ``audio[0]`` in the utterance.
    ``words`` are the words whose ``start`` lies in this chunk, with absolute offsets.
    """

    audio: npt.NDArray[np.int16]
    start: int
    words: tuple[WordTiming, ...]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SynthesisChunk):
            return NotImplemented
        return (
            self.start == other.start
            and self.words == other.words
            and np.array_equal(self.audio, other.audio)
        )


class Voice(Protocol):
    """An offline voice. ``synthesize`` yields contiguous chunks, sentence by sentence.

    Every whitespace-separated word of ``text`` gets exactly one ``WordTiming``, in order, with
    non-decreasing starts inside the audio. Text with nothing to speak yields no chunk.
    """

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[SynthesisChunk]: ...
