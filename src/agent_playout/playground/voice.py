"""The offline voice, shared by every session of one server.

espeak-ng (which piper uses to phonemize) keeps one global state in its C library, so two
sessions must never synthesize at once: each sentence is made under one lock, and the
sessions' sentences interleave (piper makes one about 20 times faster than it plays).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ..tts import SynthesisChunk, Voice


class SharedVoice:
    """A ``Voice`` whose ``synthesize`` may run in several threads: one sentence at a time."""

    def __init__(self, voice: Voice) -> None:
        self._voice = voice
        self._lock = threading.Lock()
        self.name = voice.name
        self.sample_rate = voice.sample_rate

    def synthesize(self, text: str) -> Iterator[SynthesisChunk]:
        chunks = self._voice.synthesize(text)
        while True:
            with self._lock:
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk
