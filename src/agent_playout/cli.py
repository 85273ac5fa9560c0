"""The ``agent-playout`` command: a demo of the engine on a generated test signal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Sequence

import numpy as np

from .forwarder import TranscriptForwarder
from .frames import AudioFrame
from .playout import AgentPlayout, PlayoutHandle
from .sinks.wav import WavSink

RATE = 24000


def _tone(seconds: float) -> np.ndarray:
    """A soft two-tone chime, enveloped so each 'word' is audible as a pulse."""
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t)
    wave = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)
    return (wave * envelope * 6000).astype(np.int16)


async def _frames(signal: np.ndarray, frame_ms: int = 20) -> AsyncIterator[AudioFrame]:
    step = RATE * frame_ms // 1000
    for start in range(0, signal.size, step):
        chunk = signal[start : start + step]
        yield AudioFrame(chunk, RATE, 1, chunk.size)
        await asyncio.sleep(0)


async def _texts(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield word + " "


def _report(handle: PlayoutHandle) -> str:
    seconds = handle.audio_samples / RATE
    state = "interrupted" if handle.interrupted else "completed"
    return (
        f"{handle.item_id}: {state}, audio_samples={handle.audio_samples}"
        f" ({seconds:.3f} s), heard: {handle.played_text!r}"
    )


async def _demo(out: str, interrupt_at: float) -> None:
    with WavSink(out, RATE, 1) as sink:
        playout = AgentPlayout(audio_source=sink)
        text = "This is a generated test signal standing in for an agent's voice."
        first = playout.play(
            item_id="item_1",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=_texts(text),
            audio_stream=_frames(_tone(1.5)),
        )
        await first.wait_for_playout()
        print(_report(first))
        second = playout.play(
            item_id="item_2",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=_texts("And this second answer is cut off by the listener."),
            audio_stream=_frames(_tone(3.0)),
        )
        await asyncio.sleep(interrupt_at)
        second.interrupt()
        await second.wait_for_playout()
        print(_report(second))
        await sink.wait_for_playout()
    print(f"wrote {out}: {sink.frames_written} samples at {RATE} Hz")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent-playout", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="play a completed and an interrupted item to a WAV")
    demo.add_argument("--out", default="demo.wav", help="WAV file to write (default demo.wav)")
    demo.add_argument("--interrupt-at", type=float, default=1.2, help="seconds into item 2")
    args = parser.parse_args(argv)
    asyncio.run(_demo(args.out, args.interrupt_at))
    return 0


if __name__ == "__main__":
    sys.exit(main())
