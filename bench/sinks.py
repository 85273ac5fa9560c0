"""Each sink against its own ground truth: position error and interrupt-to-silence.

``python -m bench.sinks`` interrupts items at random points on each sink and compares the
engine's ``played_samples`` with what really came out:

- WAV (reference sink, real clock): the file's length;
- LiveKit ``rtc.AudioSource``: the audio read back from a ``LocalAudioTrack``;
- speakers (PortAudio on an ALSA null device): the audio the device callback took.

It also streams one hour of audio through the resampler to show it adds no drift.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent_playout import AgentPlayout, AudioFrame, PlayoutHandle
from agent_playout.core.resample import FormatConverter
from agent_playout.sinks.wav import WavSink

from .common import heard_through

RATE = 24000
RESULTS = Path(__file__).resolve().parent / "results" / "sinks.json"


def signal(seconds: float, start: int = 0) -> np.ndarray:
    """Non-zero samples, so silence the output inserts is never mistaken for audio."""
    return ((np.arange(start, start + round(seconds * RATE)) % 30000) + 1).astype(np.int16)


async def frames(audio: np.ndarray, step: int = 480) -> AsyncIterator[AudioFrame]:
    for i in range(0, audio.size, step):
        yield AudioFrame(audio[i : i + step], RATE, 1, audio[i : i + step].size)


async def no_text() -> AsyncIterator[str]:
    return
    yield


def play(playout: AgentPlayout, item_id: str, seconds: float) -> PlayoutHandle:
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=None,
        text_stream=no_text(),
        audio_stream=frames(signal(seconds)),
    )


def summary(errors: list[int], silence_ms: list[float]) -> dict[str, Any]:
    return {
        "trials": len(errors),
        "exact": sum(e == 0 for e in errors),
        "max_abs_error_samples": max(abs(e) for e in errors),
        "silence_ms_median": round(statistics.median(silence_ms), 2),
        "silence_ms_max": round(max(silence_ms), 2),
    }


async def wav_sink(trials: int, rng: random.Random) -> dict[str, Any]:
    """Interrupt-to-silence is the fade that still plays: measured in the file."""
    errors: list[int] = []
    silence: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for trial in range(trials):
            path = Path(folder) / f"{trial}.wav"
            with WavSink(path, RATE, 1) as sink:
                playout = AgentPlayout(audio_source=sink)
                handle = play(playout, "wav", 1.0)
                await asyncio.sleep(rng.uniform(0.05, 0.8))
                handle.interrupt()
                cut = sink.samples_played
                await handle.wait_for_playout()
                await sink.wait_for_playout()
            with wave.open(str(path)) as written:
                length = written.getnframes()
            errors.append(handle.played_samples - length)
            silence.append((length - cut) / RATE * 1000)
    return summary(errors, silence)


async def livekit_sink(trials: int, rng: random.Random, queue_ms: int) -> dict[str, Any]:
    """Ground truth and the silence time both come from the track's own output."""
    from livekit import rtc

    from agent_playout.sinks.livekit import LiveKitSink

    source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_ms)
    track = rtc.LocalAudioTrack.create_audio_track("truth", source)
    stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
    heard: list[tuple[int, np.ndarray]] = []

    async def read() -> None:
        async for event in stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            if np.any(data):
                heard.append((time.monotonic_ns(), data[data != 0]))

    reader = asyncio.create_task(read())
    sink = LiveKitSink(source, queue_size_ms=queue_ms)
    playout = AgentPlayout(audio_source=sink)
    errors: list[int] = []
    silence: list[float] = []
    for trial in range(trials):
        await settle(heard)
        before = len(heard)
        handle = play(playout, f"lk_{trial}", 1.5)
        await asyncio.sleep(rng.uniform(0.06, 1.0))
        interrupted_at = time.monotonic_ns()
        handle.interrupt()
        await handle.wait_for_playout()
        await settle(heard)
        out = np.concatenate([samples for _, samples in heard[before:]])
        went_out = heard_through(out, signal(1.5), sink.fade_samples)
        if went_out is None or went_out[1] != out.size:
            raise AssertionError(f"trial {trial}: what came out is not the item's audio")
        errors.append(handle.played_samples - went_out[0])
        silence.append(max(heard[-1][0] - interrupted_at, 0) / 1e6)
    await playout.aclose()
    await sink.aclose()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await stream.aclose()
    await source.aclose()
    return summary(errors, silence)


async def settle(heard: list[tuple[int, np.ndarray]]) -> None:
    """Wait until no audio has reached the reader for 100 ms."""
    count = -1
    while count != len(heard):
        count = len(heard)
        await asyncio.sleep(0.1)


async def device_sink(trials: int, rng: random.Random) -> dict[str, Any]:
    """PortAudio on an ALSA null device; silence comes after the device's own latency."""
    home = Path(tempfile.mkdtemp())
    (home / ".asoundrc").write_text(
        'pcm.!default {type plug slave.pcm "nullsink"}\npcm.nullsink {type null}\n'
    )
    os.environ["HOME"] = str(home)
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()
    from agent_playout.sinks.device import DeviceSink

    errors: list[int] = []
    silence: list[float] = []
    for trial in range(trials):
        delivered: list[np.ndarray] = []
        async with DeviceSink(RATE, 1, latency="low", on_audio=delivered.append) as sink:
            playout = AgentPlayout(audio_source=sink)
            handle = play(playout, f"dev_{trial}", 1.0)
            await asyncio.sleep(rng.uniform(0.01, 0.1))
            handle.interrupt()
            pending = sink.samples_written - sink.samples_played
            await handle.wait_for_playout()
            await sink.wait_for_playout()
            errors.append(handle.played_samples - sum(chunk.size for chunk in delivered))
            silence.append((pending + sink.latency_samples) / RATE * 1000)
            await playout.aclose()
    return summary(errors, silence)


def resampling_drift(seconds: int) -> dict[str, int]:
    """Stream ``seconds`` of audio in 20 ms frames; report output length minus exact length."""
    drift: dict[str, int] = {}
    rng = np.random.default_rng(1)
    for in_rate, out_rate in ((22050, 48000), (24000, 48000), (44100, 8000), (16000, 24000)):
        converter = FormatConverter(in_rate, 1, out_rate, 1)
        step = in_rate // 50
        chunk = (rng.standard_normal(step) * 3000).astype(np.int16)
        total = sum(converter.process(chunk).size for _ in range(seconds * 50))
        total += converter.flush().size
        drift[f"{in_rate}->{out_rate}"] = total - seconds * out_rate
    return drift


async def measure(trials: int, seed: int, drift_seconds: int) -> dict[str, Any]:
    rng = random.Random(seed)
    sections: dict[str, Callable[[], Any]] = {
        "wav (reference, real clock)": lambda: wav_sink(trials, rng),
        "livekit rtc.AudioSource 200 ms": lambda: livekit_sink(trials, rng, 200),
        "livekit rtc.AudioSource 1000 ms": lambda: livekit_sink(trials, rng, 1000),
        "speakers (PortAudio, ALSA null)": lambda: device_sink(trials, rng),
    }
    results: dict[str, Any] = {}
    for name, run in sections.items():
        results[name] = await run()
    results[
        "resampling drift (samples after one hour)"
        if drift_seconds == 3600
        else f"resampling drift (samples after {drift_seconds} s)"
    ] = resampling_drift(drift_seconds)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--drift-seconds", type=int, default=3600)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.trials, args.seed, args.drift_seconds))
    print(f"{'sink':34} {'exact':>8} {'max |err|':>10} {'silence ms (median/max)':>24}")
    for name, row in results.items():
        if "exact" in row:
            print(
                f"{name:34} {row['exact']:>3}/{row['trials']:<4} {row['max_abs_error_samples']:>10}"
                f" {row['silence_ms_median']:>12} / {row['silence_ms_max']}"
            )
        else:
            print(f"{name}: {row}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
