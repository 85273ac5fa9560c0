"""The real ``rtc.AudioSource``, with the audio out of a ``LocalAudioTrack`` as ground truth."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agent_playout import AgentPlayout, PlayoutHandle

from .conftest import RATE, frames_of, ramp, stream

rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")

pytestmark = pytest.mark.realtime


class Listener:
    """Reads what the source really released, counting only non-silent samples (the signal
    never contains a zero, while the track fills idle time with silence)."""

    def __init__(self, source: rtc.AudioSource) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("ground-truth", source)
        self._stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self.samples: list[np.ndarray] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            self.samples.append(data[data != 0])

    def heard(self) -> np.ndarray:
        return np.concatenate(self.samples) if self.samples else np.zeros(0, np.int16)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


async def settled_heard(listener: Listener) -> np.ndarray:
    """Ground truth once no frame has reached the reader for 100 ms (it lags under load)."""
    count = -1
    while count != sum(chunk.size for chunk in listener.samples):
        count = sum(chunk.size for chunk in listener.samples)
        await asyncio.sleep(0.1)
    return listener.heard()


def play(playout: AgentPlayout, item_id: str, seconds: float, start: int = 0) -> PlayoutHandle:
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(ramp(round(seconds * RATE), start), 480)),
    )


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AgentPlayout, Listener]]:
    queue_ms = getattr(request, "param", 1000)
    source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_ms)
    listener = Listener(source)
    from agent_playout.sinks.livekit import LiveKitSink

    playout = AgentPlayout(audio_source=LiveKitSink(source, queue_size_ms=queue_ms))
    yield playout, listener
    await playout.aclose()
    await listener.aclose()
    await source.aclose()


@pytest.mark.parametrize("rig", [1000, 200], indirect=True)
async def test_interrupt_position_matches_the_audio_out_of_the_track(
    rig: tuple[AgentPlayout, Listener],
) -> None:
    playout, listener = rig
    rng = random.Random(7)
    errors = []
    for trial in range(5):
        before = (await settled_heard(listener)).size
        handle = play(playout, f"it_{trial}", 1.5, start=trial * 7)
        await asyncio.sleep(rng.uniform(0.06, 0.6))
        handle.interrupt()
        await handle.wait_for_playout()
        heard = (await settled_heard(listener))[before:]
        errors.append(handle.played_samples - heard.size)
        assert np.array_equal(heard, ramp(heard.size, trial * 7))
    assert errors == [0] * 5


async def test_a_raw_audio_source_is_accepted_and_completes_exactly() -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    listener = Listener(source)
    playout = AgentPlayout(audio_source=source)
    try:
        handle = play(playout, "whole", 0.505)
        await asyncio.wait_for(handle.wait_for_playout(), 3)
        assert handle.audio_samples == 12120
        assert (await settled_heard(listener)).size == 12120
    finally:
        await playout.aclose()
        await listener.aclose()


@pytest.mark.parametrize("rig", [1000], indirect=True)
async def test_interrupt_followed_at_once_by_play_works_every_time(
    rig: tuple[AgentPlayout, Listener],
) -> None:
    playout, listener = rig
    handle = play(playout, "first", 2.0)
    for trial in range(6):
        await asyncio.sleep(0.08)
        handle.interrupt()
        handle = play(playout, f"next_{trial}", 2.0)
    await asyncio.sleep(0.15)
    assert handle.error is None
    assert handle.played_samples > 0
    handle.interrupt()
    await handle.wait_for_playout()
    heard = (await settled_heard(listener)).size
    total = playout.sink.samples_played
    assert heard == total
