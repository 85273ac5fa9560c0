"""Ground truth for ``rtc.AudioSource`` tests: what the source really released, read back
through a ``LocalAudioTrack`` and an ``rtc.AudioStream`` (needs no room)."""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc

from agent_playout.clock import Clock

from .conftest import RATE


class Listener:
    """Reads what the source (or a track of it) really released, keeping only non-silent
    samples (the signals here never contain a zero; the track fills idle time with silence)."""

    def __init__(self, source: rtc.AudioSource | rtc.LocalAudioTrack) -> None:
        track = (
            source
            if isinstance(source, rtc.LocalAudioTrack)
            else rtc.LocalAudioTrack.create_audio_track("ground-truth", source)
        )
        self._stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self.samples: list[np.ndarray] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            self.samples.append(data[data != 0])

    def count(self) -> int:
        return sum(chunk.size for chunk in self.samples)

    async def settled(self) -> np.ndarray:
        """Everything heard, once no frame has reached the reader for 100 ms (it lags)."""
        count = -1
        while count != self.count():
            count = self.count()
            await asyncio.sleep(0.1)
        return np.concatenate(self.samples) if self.samples else np.zeros(0, np.int16)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


def heard_through(heard: np.ndarray, signal: np.ndarray, fade: int) -> tuple[int, int] | None:
    """How much of ``signal`` went out, judged from ``heard`` (non-silent samples, in order).

    What went out must be an exact prefix of the signal followed, unless the whole signal
    played, by the next ``fade`` samples (fewer at the signal's end) under a linear fade to
    silence. Returns the samples of the signal that went out (the fade included) and how
    many samples of ``heard`` they account for; None if the audio heard is anything else.
    """
    size = min(heard.size, signal.size)
    mismatch = np.flatnonzero(heard[:size] != signal[:size])
    prefix = int(mismatch[0]) if mismatch.size else size
    if fade == 0 or prefix == signal.size:
        return prefix, prefix
    faded_count = min(fade, signal.size - prefix)
    ramp = np.linspace(0.0, 1.0, faded_count + 1, dtype=np.float32)[::-1][1:]
    expected = (signal[prefix : prefix + faded_count] * ramp).astype(np.int16)
    audible = expected[expected != 0]
    if not np.array_equal(heard[prefix : prefix + audible.size], audible):
        return None
    return prefix + faded_count, prefix + audible.size


def spin_until_just_after_a_tick(clock: Clock, phase_ns: int) -> None:
    """Busy-wait, holding the loop, until 0.3-1.2 ms after a tick of the grid at ``phase_ns``:
    a stop then is put off until after the guard, which a test can then make late."""
    while not 300_000 <= (clock.now_ns() - phase_ns) % 10_000_000 <= 1_200_000:
        pass


def heard_as_reported(
    heard: np.ndarray, signal: np.ndarray, fade: int, played: int, confirmed: bool | None
) -> bool:
    """Whether what went out of ``signal`` is what an interrupted item reported.

    A confirmed count (or one no confirmation applies to) must be exact: ``heard_through``
    gives ``played``. An unconfirmed one (a LiveKit clear that ran late) may only be short,
    never ahead: everything it counts before its fade was heard, and more than that was.
    """
    if confirmed is not False:
        return heard_through(heard, signal, fade) == (played, heard.size)
    before_fade = max(played - fade, 0)
    return heard.size > before_fade and np.array_equal(heard[:before_fade], signal[:before_fade])
