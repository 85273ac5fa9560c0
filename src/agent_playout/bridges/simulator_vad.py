"""The user's side of the simulated realtime server: the input audio and its turns.

The session's input format and turn detection (read from either dialect's shape), and
``Turn``: where the appended input audio is, what the server VAD hears in it (energy per
20 ms frame over a threshold starts speech, enough quiet ends it) and what a commit takes.
No I/O and no asyncio here: ``simulator_conversation`` sends what these changes call for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..core.frames import Int16Array
from ..core.units import REALTIME_SAMPLE_RATE
from .formats import AudioFormat, Dialect, output_format_of
from .simulator_script import new_id

VAD_FRAME_MS = 20
MIN_COMMIT_MS = 100
"""The real API refuses to commit less input audio than this."""

VadChange = tuple[Literal["started", "stopped"], int]
"""What the VAD heard: speech started at ``audio_start_ms``, or stopped at ``audio_end_ms``."""


def input_format(dialect: Dialect, session: Mapping[str, Any]) -> AudioFormat:
    """The session's input format; it is named as the output one is, under ``input``."""
    if dialect == "beta":
        named = {"output_audio_format": session.get("input_audio_format", "pcm16")}
    else:
        audio = session.get("audio")
        form = audio.get("input", {}).get("format") if isinstance(audio, Mapping) else None
        named = {"audio": {"output": {"format": form}}}
    return output_format_of(named) or AudioFormat.PCM16


def turn_detection(dialect: Dialect, session: Mapping[str, Any]) -> Any:
    """The session's ``turn_detection`` object (None when the VAD is off)."""
    if dialect == "beta":
        return session.get("turn_detection")
    return session.get("audio", {}).get("input", {}).get("turn_detection")


def turn_setting(dialect: Dialect, session: Mapping[str, Any], name: str) -> bool:
    """``create_response`` or ``interrupt_response`` of the session's turn detection
    (true when unset, or with no turn detection, for the explicit controls)."""
    detection = turn_detection(dialect, session)
    return not isinstance(detection, Mapping) or detection.get(name) is not False


@dataclass
class Turn:
    """The user's input audio: where it is, and what the VAD has heard of it."""

    rate: int = REALTIME_SAMPLE_RATE
    total_samples: int = 0
    uncommitted_samples: int = 0
    pending: Int16Array = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    speaking: bool = False
    quiet_ms: int = 0
    loud_end_ms: int = 0
    item_id: str | None = None

    @property
    def now_ms(self) -> int:
        return self.total_samples * 1000 // self.rate

    def skip(self, samples: Int16Array) -> None:
        """Count ``samples`` as appended without listening to them (no turn detection)."""
        self.total_samples += samples.size
        self.uncommitted_samples += samples.size

    def hear(self, samples: Int16Array, threshold: int, silence_ms: int) -> Iterator[VadChange]:
        """Server VAD over 20 ms frames: a frame over ``threshold`` (RMS) starts speech,
        ``silence_ms`` under it ends the turn. The caller acts on each change
        (``start_speaking``/``stop_speaking``) before the next frame is heard."""
        frame = self.rate * VAD_FRAME_MS // 1000
        audio = np.concatenate([self.pending, samples])
        whole = audio.size - audio.size % frame
        self.pending = audio[whole:]
        for start in range(0, whole, frame):
            chunk = audio[start : start + frame].astype(np.float64)
            loud = math.sqrt(float(np.mean(chunk * chunk))) > threshold
            start_ms = self.now_ms
            self.total_samples += frame
            self.uncommitted_samples += frame
            if loud:
                self.quiet_ms = 0
                self.loud_end_ms = self.now_ms
                if not self.speaking:
                    yield "started", start_ms
            elif self.speaking:
                self.quiet_ms += VAD_FRAME_MS
                if self.quiet_ms >= silence_ms:
                    yield "stopped", self.loud_end_ms

    def start_speaking(self) -> str:
        """The user is speaking: the id of the user item the turn will become."""
        self.speaking = True
        self.quiet_ms = 0
        self.item_id = self.item_id or new_id("item")
        return self.item_id

    def stop_speaking(self) -> str:
        """The user stopped: the id of the user item the turn will become."""
        self.speaking = False
        self.quiet_ms = 0
        self.item_id = self.item_id or new_id("item")
        return self.item_id

    def commit_refusal(self) -> str | None:
        """Why a commit now is refused (less than ``MIN_COMMIT_MS`` uncommitted), or None."""
        if self.uncommitted_samples * 1000 >= MIN_COMMIT_MS * self.rate:
            return None
        have = self.uncommitted_samples * 1000 / self.rate
        return (
            f"Error committing input audio buffer: buffer too small. Expected"
            f" at least {MIN_COMMIT_MS}ms of audio, but buffer only has"
            f" {have:g}ms of audio."
        )

    def stop_refusal(self) -> str | None:
        """Why the commit a turn's end makes is refused, as ``commit_refusal``; None too when
        no input audio ever came (the controls then stand for speech the client did not send)."""
        if self.total_samples == 0:
            return None
        refusal = self.commit_refusal()
        if refusal is not None:
            self.item_id = None
        return refusal

    def clear(self) -> None:
        """Drop the uncommitted audio and what the VAD heard of it (a client's clear)."""
        self.uncommitted_samples = 0
        self.pending = np.zeros(0, dtype=np.int16)
        self.speaking = False
        self.quiet_ms = 0
        self.item_id = None

    def commit(self) -> str:
        """Commit the uncommitted audio: the id of the user item it becomes."""
        item_id = self.item_id or new_id("item")
        self.item_id = None
        self.uncommitted_samples = 0
        return item_id
