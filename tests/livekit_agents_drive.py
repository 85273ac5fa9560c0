"""Drive an ``AudioOutput`` the way LiveKit Agents 1.x does, with its own code: one speech
through ``voice.generation.forward_generation`` (the pipeline's and the realtime path's
shared core: ``capture_frame`` runs, ``flush``, and on an interrupt the forwarding task
cancelled, ``clear_buffer`` and ``wait_for_playout``), and LiveKit's own room output
started without a server.
(``bench/livekit_agents.py`` has its own copy: bench never imports tests.)"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice import generation, io
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput
from livekit.agents.voice.speech_handle import SpeechHandle

from agent_playout.transcript.aligner import TranscriptAligner

RATE = 24000
FRAME = 480
"""20 ms TTS frames, a common provider size."""


class TTSFrames:
    """``signal`` as a TTS node yields it: ``rtc.AudioFrame`` chunks, a turn apart, with a
    stall of ``stall`` seconds before sample ``stall_at`` (a slow provider)."""

    def __init__(
        self, signal: np.ndarray, *, frame: int = FRAME, stall_at: int = -1, stall: float = 0.0
    ) -> None:
        self._signal = signal
        self._frame = frame
        self._stall_at = stall_at
        self._stall = stall
        self.yielded = 0

    async def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        signal = self._signal
        for start in range(0, signal.size, self._frame):
            chunk = signal[start : start + self._frame]
            await asyncio.sleep(self._stall if start == self._stall_at else 0)
            self.yielded += chunk.size
            yield rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)


async def text_deltas(text: str | list[str]) -> AsyncIterator[str]:
    """``text`` as an LLM streams it, a few characters at a time; a list, piece by piece."""
    pieces = text if isinstance(text, list) else [text[i : i + 3] for i in range(0, len(text), 3)]
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


@dataclass
class Spoken:
    """What ``forward_generation`` made of one speech."""

    played: str
    position: float
    transcript: str | None


class Speech:
    """One speech forwarded to ``audio_output`` by the framework's ``forward_generation``."""

    def __init__(
        self,
        audio_output: io.AudioOutput,
        signal: np.ndarray,
        *,
        text: str | list[str] | None = None,
        text_output: io.TextOutput | None = None,
        audio: TTSFrames | None = None,
    ) -> None:
        self.handle = SpeechHandle.create()
        self.handle._authorize_generation()
        self.first_frame = asyncio.get_running_loop().create_future()
        self.audio = audio or TTSFrames(signal)
        extra: dict[str, Any] = {}
        if "reconcile_playout_pause" in inspect.signature(generation.forward_generation).parameters:
            extra["reconcile_playout_pause"] = lambda: None  # 1.8: no pause from before
        self._task = asyncio.create_task(
            generation.forward_generation(
                speech_handle=self.handle,
                audio_output=audio_output,
                text_output=text_output,
                audio_source=aiter(self.audio),
                text_source=None if text is None else text_deltas(text),
                on_first_frame=self._on_first_frame,
                **extra,
            )
        )

    def _on_first_frame(self, future: asyncio.Future[object], _: object) -> None:
        if not self.first_frame.done():
            self.first_frame.set_result(None)

    def interrupt(self) -> None:
        self.handle.interrupt()

    async def result(self) -> Spoken:
        out = await asyncio.wait_for(self._task, 30)
        self.handle._mark_done()  # as the activity does once the speech's task ended
        return Spoken(out.played, out.playback_position, out.synchronized_transcript)


async def started_room_output(room: rtc.Room) -> _ParticipantAudioOutput:
    """LiveKit's own room output, started as ``RoomIO`` starts it but for the publish, which
    needs a server: its forwarding task runs and it acts as if a participant subscribed."""
    output = _ParticipantAudioOutput(
        room,
        sample_rate=RATE,
        num_channels=1,
        track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    output._forwarding_task = asyncio.create_task(output._forward_audio())
    output._subscribed_fut.set_result(None)
    return output


def heard_text(text: str, pushed: int, played: int) -> str:
    """The words of ``text`` whose first sample is among the first ``played`` of a speech cut
    after ``pushed`` samples: the package's aligner run afresh, as the expected transcript."""
    aligner = TranscriptAligner(RATE)
    aligner.push_text(text)
    aligner.end_text()
    aligner.push_audio(pushed)
    aligner.advance(played)
    return aligner.text[: aligner.heard_chars]
