"""Heard-words accuracy at random interrupts, against an offline voice's own word timings.

``python -m bench.transcript_accuracy`` synthesizes a set of answers with the embedded
voices (espeak-ng word events, piper phoneme alignments: the ground truth), plays each
through the engine on a virtual clock, interrupts at random points at least 50 ms from any
word start, and compares the words the engine reports as heard with the true ones. Modes:

- timestamps: the text arrives as ``TimedText`` with the voice's word starts;
- estimate: plain text, placed by the syllable estimate re-fitted to the audio;
- plain pacer: LiveKit 0.x's rule, words at 3.83 syllables per second from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyphen

from agent_playout import AgentPlayout, AudioFrame, NullSink, TimedText, TranscriptForwarder
from agent_playout.clock import VirtualClock
from agent_playout.tts import WordTiming, load_voice

TEXTS = [
    "Sure! Your order number is 4512, and it should arrive on Tuesday afternoon.",
    "I can help with that. First, open the settings menu; then choose privacy, "
    "and finally tap the button labelled reset.",
    "The forecast for tomorrow is mostly sunny, with a high of 21 degrees and light winds "
    "from the north-west.",
    "Thanks for waiting. I checked your account, and the refund of $45.20 was issued "
    "yesterday, so it may take three to five business days to appear.",
    "Absolutely. Let me read that back: two large pizzas, one with mushrooms and olives, "
    "the other plain, plus a bottle of sparkling water.",
    "Unfortunately the appointment on Friday is no longer available. Would Monday at "
    "nine thirty work for you instead?",
    "Photosynthesis converts light energy into chemical energy, which plants store as "
    "glucose; oxygen is released as a by-product.",
    "Okay. I've set a reminder for your dentist appointment, and I'll notify you an hour "
    "before it starts.",
]
CUTS_PER_TEXT = 25
MARGIN_S = 0.05
FRAME_MS = 20
PLAIN_RATE = 3.83
RESULTS = Path(__file__).resolve().parent / "results" / "transcript.json"


@dataclass(frozen=True)
class Utterance:
    text: str
    audio: np.ndarray
    rate: int
    words: tuple[WordTiming, ...]


def synthesize(voice_name: str, text: str) -> Utterance:
    voice = load_voice(voice_name)
    chunks = list(voice.synthesize(text))
    audio = np.concatenate([chunk.audio for chunk in chunks])
    words = tuple(word for chunk in chunks for word in chunk.words)
    return Utterance(text, audio, voice.sample_rate, words)


def cut_points(utterance: Utterance, rng: random.Random) -> list[int]:
    """Random samples at least 50 ms from every word start."""
    margin = round(MARGIN_S * utterance.rate)
    starts = np.array([w.start for w in utterance.words])
    cuts: list[int] = []
    while len(cuts) < CUTS_PER_TEXT:
        cut = rng.randrange(margin, utterance.audio.size - margin)
        if np.min(np.abs(starts - cut)) >= margin:
            cuts.append(cut)
    return cuts


def true_heard(utterance: Utterance, cut: int) -> int:
    return sum(1 for word in utterance.words if word.start < cut)


def plain_pacer_heard(utterance: Utterance, cut: int, hyphenator: pyphen.Pyphen) -> int:
    """LiveKit 0.x: each syllable takes 1/3.83 s from the first sample; no re-fit."""
    elapsed = 0.0
    heard = 0
    for word in utterance.text.split():
        if elapsed * utterance.rate >= cut:
            break
        heard += 1
        letters = re.findall(r"[^\W\d_]+", word)
        syllables = sum(len(hyphenator.positions(p)) + 1 for p in letters) or 1
        elapsed += syllables / PLAIN_RATE
    return heard


def _texts(utterance: Utterance, timed: bool) -> list[str | TimedText]:
    pieces = re.findall(r"\S+\s*", utterance.text)
    if not timed:
        return list(pieces)
    return [
        TimedText(piece, word.start / utterance.rate, word.end / utterance.rate)
        for piece, word in zip(pieces, utterance.words, strict=True)
    ]


async def engine_heard(utterance: Utterance, cut: int, *, timed: bool) -> int:
    """Play through the engine on a virtual clock, interrupt at ``cut``, count heard words."""
    clock = VirtualClock()
    sink = NullSink(utterance.rate, 1, clock=clock)
    playout = AgentPlayout(audio_source=sink)
    forwarder = TranscriptForwarder()
    step = utterance.rate * FRAME_MS // 1000

    async def frames() -> AsyncIterator[AudioFrame]:
        for start in range(0, utterance.audio.size, step):
            piece = utterance.audio[start : start + step]
            yield AudioFrame(piece, utterance.rate, 1, piece.size)

    async def texts() -> AsyncIterator[str | TimedText]:
        for piece in _texts(utterance, timed):
            yield piece

    handle = playout.play(
        item_id="bench",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=texts(),
        audio_stream=frames(),
    )
    await clock.advance_ns(cut * 1_000_000_000 // utterance.rate + 1)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    assert sink.samples_played >= cut
    return len(forwarder.played_text.split())


@dataclass(frozen=True)
class Score:
    exact: float
    mean_abs_error: float

    @staticmethod
    def of(errors: Sequence[int]) -> Score:
        return Score(
            exact=sum(e == 0 for e in errors) / len(errors),
            mean_abs_error=sum(abs(e) for e in errors) / len(errors),
        )


async def measure(voice_name: str, seed: int) -> dict[str, Score]:
    rng = random.Random(seed)
    hyphenator = pyphen.Pyphen(lang="en_US")
    errors: dict[str, list[int]] = {"timestamps": [], "estimate": [], "plain pacer": []}
    for text in TEXTS:
        utterance = synthesize(voice_name, text)
        for cut in cut_points(utterance, rng):
            truth = true_heard(utterance, cut)
            errors["timestamps"].append(await engine_heard(utterance, cut, timed=True) - truth)
            errors["estimate"].append(await engine_heard(utterance, cut, timed=False) - truth)
            errors["plain pacer"].append(plain_pacer_heard(utterance, cut, hyphenator) - truth)
    return {mode: Score.of(values) for mode, values in errors.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", nargs="+", default=["espeak", "piper"])
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'voice':8} {'mode':12} {'exact cuts':>10} {'mean |word error|':>18}")
    for voice_name in args.voices:
        scores = asyncio.run(measure(voice_name, args.seed))
        table[voice_name] = {}
        for mode, score in scores.items():
            table[voice_name][mode] = {"exact": score.exact, "mean_abs_error": score.mean_abs_error}
            print(f"{voice_name:8} {mode:12} {score.exact:>10.1%} {score.mean_abs_error:>18.3f}")
        ratio = scores["plain pacer"].mean_abs_error / max(scores["estimate"].mean_abs_error, 1e-9)
        print(f"{voice_name:8} estimate is {ratio:.1f}x as accurate as the plain pacer")
    cuts = len(TEXTS) * CUTS_PER_TEXT
    print(f"{cuts} cuts per voice and mode, {time.perf_counter() - started:.1f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cuts_per_mode": cuts, "results": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
