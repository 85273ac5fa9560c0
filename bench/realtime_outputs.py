"""The realtime bench's WAV and LiveKit outputs, each judged by its own ground truth.

- WAV (``WavSink``, real clock): the samples the file holds, checked to be the item's audio;
- LiveKit (a real ``rtc.AudioSource`` through ``LiveKitSink``): the item's samples read back
  from a ``LocalAudioTrack`` by an ``rtc.AudioStream``.

(The phone is ``bench.realtime_phone``.) Each ``*_trials`` function runs its trials one after
another and returns one record each (``realtime_trial.Cut.record``).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agent_playout import AgentPlayout
from agent_playout.sinks.wav import WavSink

from .common import heard_through
from .realtime_trial import RATE, Script, TruthError, bridged_cut, judged, outcome, script_for

WAV_FADE_MS = 5.0
"""The WAV sink's fade after a cut; only the audio before it must equal the script's."""
LIVEKIT_QUEUE_MS = 1000
"""rtc's default queue, the one LiveKit Agents 0.12's ``MultimodalAgent`` plays into."""
UNCONFIRMED = "position unconfirmed: the sink's clear ran late, and it said so"
"""Why a LiveKit trial is counted apart: its handle said the count may be short."""

Log = Callable[[str], None]


async def wav_trials(trials: int, rng: random.Random, log: Log) -> list[dict[str, Any]]:
    """A fresh WAV file per trial; the truth is its length, once the audio is proved the
    item's (an exact prefix of the script, then the fade)."""
    records = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(trials):
            script = script_for(rng)
            records.append(await judged(script, _wav_trial(Path(folder) / f"{index}.wav", script)))
            log(f"    wav {index + 1}/{trials}: {outcome(records[-1])}")
    return records


async def _wav_trial(path: Path, script: Script) -> dict[str, Any]:
    with WavSink(path, RATE, 1, fade_ms=WAV_FADE_MS) as sink:
        playout = AgentPlayout(audio_source=sink)
        cut = await bridged_cut(playout, script)
        await playout.aclose()
    return cut.record(_wav_truth(path, script), RATE)


def _wav_truth(path: Path, script: Script) -> int:
    fade = round(RATE * WAV_FADE_MS / 1000)
    with wave.open(str(path)) as written:
        samples = np.frombuffer(written.readframes(written.getnframes()), dtype="<i2")
    exact = max(samples.size - fade, 0)
    if samples.size > script.audio.size or not np.array_equal(
        samples[:exact], script.audio[:exact]
    ):
        raise TruthError(f"{path.name} holds {samples.size} samples, not the item's audio")
    return int(samples.size)


class CaptureCounter:
    """Counts the audio samples a source was given (``capture_frame`` wrapped), so that
    LiveKit Agents 0.12's estimate, pushed minus ``queued_duration``, can be read."""

    def __init__(self, source: Any) -> None:
        self.pushed = 0
        capture = source.capture_frame

        async def counted(frame: Any) -> None:
            data = np.frombuffer(frame.data, dtype=np.int16)
            if np.any(data):
                self.pushed += frame.samples_per_channel
            await capture(frame)

        source.capture_frame = counted


class LiveKitOutput:
    """One ``rtc.AudioSource`` for every trial, a ``LiveKitSink`` on it, and the ground truth:
    a ``LocalAudioTrack`` read by an ``rtc.AudioStream``."""

    async def __aenter__(self) -> LiveKitOutput:
        from livekit import rtc

        from agent_playout.sinks.livekit import LiveKitSink

        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=LIVEKIT_QUEUE_MS)
        self.counter = CaptureCounter(self.source)
        track = rtc.LocalAudioTrack.create_audio_track("truth", self.source)
        self.stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self.heard: list[np.ndarray] = []
        self.reader = asyncio.create_task(self._read())
        self.sink = LiveKitSink(self.source, queue_size_ms=LIVEKIT_QUEUE_MS)
        self.playout = AgentPlayout(audio_source=self.sink)
        await self.sink.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.playout.aclose()
        await self.sink.aclose()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.stream.aclose()
        await self.source.aclose()

    async def _read(self) -> None:
        async for event in self.stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            if np.any(data):
                self.heard.append(data[data != 0])

    async def settle(self) -> None:
        """Wait until no audio has reached the reader for 100 ms."""
        count = -1
        while count != len(self.heard):
            count = len(self.heard)
            await asyncio.sleep(0.1)

    async def trial(self, script: Script) -> dict[str, Any]:
        await self.settle()
        before = len(self.heard)
        pushed_before = self.counter.pushed
        estimate: list[int] = []

        def livekit_012() -> None:
            pushed_s = (self.counter.pushed - pushed_before) / RATE
            samples = int((pushed_s - self.source.queued_duration) * 24000)
            estimate.append(int(samples / 24000 * 1000))

        cut = await bridged_cut(self.playout, script, on_speech_started=livekit_012)
        await self.settle()
        if cut.position_confirmed is False:
            raise TruthError(UNCONFIRMED)
        out = np.concatenate(self.heard[before:]) if len(self.heard) > before else np.zeros(0)
        went_out = heard_through(out.astype(np.int16), script.audio, self.sink.fade_samples)
        if went_out is None or went_out[1] != out.size:
            raise TruthError(_not_the_item(out, script.audio, went_out))
        record = cut.record(went_out[0], RATE)
        record["livekit_012_ms"] = estimate[0]
        record["livekit_012_error_ms"] = estimate[0] - record["truth_ms"]
        return record


async def livekit_trials(trials: int, rng: random.Random, log: Log) -> list[dict[str, Any]]:
    records = []
    async with LiveKitOutput() as output:
        for index in range(trials):
            script = script_for(rng)
            records.append(await judged(script, output.trial(script)))
            log(f"    livekit {index + 1}/{trials}: {outcome(records[-1])}")
    return records


def _not_the_item(out: np.ndarray, audio: np.ndarray, went_out: tuple[int, int] | None) -> str:
    """Where the track's audio parts from the item's, for the record of a failed trial."""
    size = min(out.size, audio.size)
    mismatch = np.flatnonzero(out[:size] != audio[:size])
    first = int(mismatch[0]) if mismatch.size else size
    return (
        f"the track carried {out.size} non-zero samples, not the item's audio: they match the"
        f" item's first {first} (then {out[first : first + 4].tolist()} instead of"
        f" {audio[first : first + 4].tolist()}); judged {went_out}"
    )
