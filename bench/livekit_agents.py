"""``ExactAudioOutput`` beside LiveKit Agents 1.x's own room output, on the same interrupts.

Each speech goes through the framework's own ``forward_generation`` (capture, flush, and on
the interrupt: forwarding cancelled, ``clear_buffer``, ``wait_for_playout``). LiveKit's
``_ParticipantAudioOutput`` is started as RoomIO starts it but for the publish (which needs a
server), and wrapped, as RoomIO wraps it, in its ``TranscriptSynchronizer``, which gives the
interrupted chat text; this output gives its own. Ground truth: each source read back through
a ``LocalAudioTrack`` and an ``rtc.AudioStream``. The speech is distinct non-zero samples
whose words start at known samples (0.06 s per character, 0.1 s per space), so the words
heard are known.

Run: ``.venv-agents/bin/python -m bench.livekit_agents [--trials 50]``; writes
``bench/results/livekit_agents.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import __version__ as agents_version
from livekit.agents.voice import generation, io
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput
from livekit.agents.voice.speech_handle import SpeechHandle
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from agent_playout.integrations.livekit_agents import ExactAudioOutput

RATE = 24000
QUEUE_MS = 200
TEXT = "The next train to Boston leaves at six forty from platform three, so be early."
RESULTS = Path(__file__).parent / "results" / "livekit_agents.json"


def speech() -> tuple[np.ndarray, list[int]]:
    """The speech's samples and the first sample of each word."""
    starts, position = [], 0
    for word in TEXT.split(" "):
        starts.append(position)
        position += round((0.06 * len(word) + 0.1) * RATE)
    values = (np.arange(position) + 5000) % 30000 + 1
    return values.astype(np.int16), starts


class TimedListener:
    """The source's audio out of a track, each non-silent sample with its arrival time."""

    def __init__(self, source: rtc.AudioSource) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("truth", source)
        self._stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        self.samples: list[np.ndarray] = []
        self.last_sound = 0.0
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            if data.any():
                self.last_sound = time.perf_counter()
            self.samples.append(data[data != 0])

    async def settled(self) -> np.ndarray:
        count = -1
        while count != sum(chunk.size for chunk in self.samples):
            count = sum(chunk.size for chunk in self.samples)
            await asyncio.sleep(0.1)
        return np.concatenate(self.samples) if self.samples else np.zeros(0, np.int16)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


def heard_samples(heard: np.ndarray, signal: np.ndarray) -> int:
    """Samples of ``signal`` that went out: its exact prefix, plus the 10 ms frame after it
    when that frame went out faded (a declick fade; zeros in it are not heard)."""
    size = min(heard.size, signal.size)
    mismatch = np.flatnonzero(heard[:size] != signal[:size])
    prefix = int(mismatch[0]) if mismatch.size else size
    return prefix + (RATE // 100 if heard.size > prefix else 0)


async def frames(signal: np.ndarray) -> AsyncIterator[rtc.AudioFrame]:
    for start in range(0, signal.size, 480):
        chunk = signal[start : start + 480]
        await asyncio.sleep(0)
        yield rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)


async def deltas() -> AsyncIterator[str]:
    for start in range(0, len(TEXT), 3):
        await asyncio.sleep(0)
        yield TEXT[start : start + 3]


async def trial(
    audio: io.AudioOutput,
    text: io.TextOutput,
    listener: TimedListener,
    delay: float,
    signal: np.ndarray,
    starts: list[int],
) -> dict[str, float]:
    before = (await listener.settled()).size
    handle = SpeechHandle.create()
    handle._authorize_generation()
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def first_frame(*_: object) -> None:
        if not started.done():
            started.set_result(None)

    task = asyncio.create_task(
        generation.forward_generation(
            speech_handle=handle,
            audio_output=audio,
            text_output=text,
            audio_source=frames(signal),
            text_source=deltas(),
            on_first_frame=first_frame,
            reconcile_playout_pause=lambda: None,
        )
    )
    await started
    await asyncio.sleep(delay)
    cut_at = time.perf_counter()
    handle.interrupt()
    out = await asyncio.wait_for(task, 30)
    handle._mark_done()  # as the activity does once the speech's task ended
    heard = (await listener.settled())[before:]
    truth = heard_samples(heard, signal)
    words_heard = sum(1 for start in starts if start < truth)
    chat = out.synchronized_transcript or ""
    return {
        "error_samples": round(out.playback_position * RATE) - truth,
        "chat_words": len(chat.split()),
        "heard_words": words_heard,
        "to_silence_ms": (listener.last_sound - cut_at) * 1000,
    }


async def run(trials: int, seed: int) -> dict[str, object]:
    signal, starts = speech()
    ours_source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    ours = ExactAudioOutput(source=ours_source, queue_size_ms=QUEUE_MS)
    await ours.sink.ready()
    ours_text = ours.transcription_tap()
    theirs = _ParticipantAudioOutput(
        rtc.Room(),
        sample_rate=RATE,
        num_channels=1,
        track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    theirs._forwarding_task = asyncio.create_task(theirs._forward_audio())
    theirs._subscribed_fut.set_result(None)
    synchronizer = TranscriptSynchronizer(next_in_chain_audio=theirs, next_in_chain_text=None)
    rigs = {
        "ExactAudioOutput": (ours, ours_text, TimedListener(ours_source)),
        "LiveKit _ParticipantAudioOutput": (
            synchronizer.audio_output,
            synchronizer.text_output,
            TimedListener(theirs._audio_source),
        ),
    }
    rng = random.Random(seed)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in rigs}
    try:
        for _ in range(trials):
            delay = rng.uniform(0.1, 1.2)
            for name, (audio, text, listener) in rigs.items():
                results[name].append(await trial(audio, text, listener, delay, signal, starts))
    finally:
        for _, _, listener in rigs.values():
            await listener.aclose()
        await synchronizer.aclose()
        await theirs.aclose()
        await ours.aclose()
        await ours_source.aclose()
    return {"livekit_agents": agents_version, "trials": trials, "results": results}


def table(report: dict[str, object]) -> str:
    results = report["results"]
    assert isinstance(results, dict)
    lines = [
        "| output | exact position | position error, mean abs. / max | chat words minus"
        " heard words, mean abs. / range | interrupt to silence, median / max |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        errors = [abs(row["error_samples"]) / RATE * 1000 for row in rows]
        words = [row["chat_words"] - row["heard_words"] for row in rows]
        silence = [row["to_silence_ms"] for row in rows]
        lines.append(
            f"| {name} | {sum(e == 0 for e in errors)}/{len(rows)}"
            f" | {statistics.mean(errors):.2f} / {max(errors):.2f} ms"
            f" | {statistics.mean(abs(w) for w in words):.2f} / {min(words)} to {max(words)}"
            f" | {statistics.median(silence):.1f} / {max(silence):.1f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    report = asyncio.run(run(args.trials, args.seed))
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


if __name__ == "__main__":
    main()
