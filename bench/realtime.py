"""``python -m bench.realtime [--trials N] [--quick]``: the realtime bridge's barge-ins, measured.

For each output (WAV, LiveKit ``rtc.AudioSource``, the phone directly and over a delayed
link) it runs N trials (default 50, ``--quick`` 5) of: a ``SimulatedRealtimeServer`` streams
a response (1-2 s of audio, faster than real time, over a real WebSocket on 127.0.0.1); a
``RealtimeBridge`` connected through ``connect_realtime`` plays it; 0.2-1.5 s after the item
started, the server sends ``speech_started``. It reports:

- the truncation error: the ``audio_end_ms`` the server received minus
  floor(heard samples x 1000 / rate), the heard samples being the output's own ground truth
  (the WAV file's samples; the audio read back from a ``LocalAudioTrack`` by an
  ``rtc.AudioStream``; the played count of a ``SimulatedCaller``, in a process of its own,
  when the ``clear`` reached it). Target: 0 ms for every trial. A trial whose truth cannot
  be read (what came out is not the item's audio) is counted apart, with the reason;
- the time from ``speech_started`` reaching the bridge to the truncation being sent, in the
  client (``perf_counter_ns`` around the connection: the event handed to the bridge, its
  ``send`` called), and the server's round trip (``speech_started`` sent to truncation
  received; server and client share this process and its event loop): p50 and p99;
- for LiveKit, what LiveKit Agents 0.12's rule would have sent at the same moment on the
  same source: ``int(audio_samples / 24000 * 1000)`` with ``audio_samples`` its
  pushed-minus-``queued_duration`` estimate.

Prints a Markdown table; writes bench/results/realtime.json and realtime.md (``--quick``:
realtime-quick.*).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .common import busy_cores, percentile
from .realtime_outputs import livekit_trials, wav_trials
from .realtime_phone import phone_trials
from .run import machine

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    """How many trials per output, the seed, and the one-way delay of the slow phone link."""

    trials: int = 50
    seed: int = 15
    phone_link_ms: int = 80


Log = Callable[[str], None]


def outputs(plan: Plan, rng: random.Random, log: Log) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Each output's trials, by the name the table shows."""
    return {
        "WAV (WavSink)": lambda: wav_trials(plan.trials, rng, log),
        "LiveKit (rtc.AudioSource)": lambda: livekit_trials(plan.trials, rng, log),
        "phone (PhoneSink), direct": lambda: phone_trials(plan.trials, rng, log),
        f"phone (PhoneSink), {plan.phone_link_ms} ms each way": lambda: phone_trials(
            plan.trials, rng, log, delay_ms=plan.phone_link_ms
        ),
    }


async def measure(plan: Plan, log: Log) -> dict[str, Any]:
    """Every output's trials and their summary, by output."""
    rng = random.Random(plan.seed)
    results: dict[str, Any] = {}
    for name, run in outputs(plan, rng, log).items():
        log(f"  {name}")
        started = time.perf_counter()
        trials = await run()
        results[name] = {
            "summary": summarize(trials),
            "seconds": round(time.perf_counter() - started, 1),
            "trials": trials,
        }
    return results


def _spread(values: Sequence[float], digits: int) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
    }


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Errors (exact count, histogram, worst) and the two latencies' p50/p99/max, over the
    trials whose ground truth could be read; the others are counted as ``unreadable``."""
    trials = [record for record in records if "failed" not in record]
    if not trials:
        return {"trials": 0, "unreadable": len(records)}
    errors = [trial["error_ms"] for trial in trials]
    cuts = [trial["cut_s"] for trial in trials]
    histogram: dict[str, int] = {}
    for error in sorted(errors):
        histogram[str(error)] = histogram.get(str(error), 0) + 1
    summary: dict[str, Any] = {
        "trials": len(trials),
        "unreadable": len(records) - len(trials),
        "exact": sum(error == 0 for error in errors),
        "max_abs_error_ms": max(abs(error) for error in errors),
        "median_error_ms": statistics.median(errors),
        "error_ms_histogram": histogram,
        "client_us": _spread([trial["client_us"] for trial in trials], 1),
        "round_trip_ms": _spread([trial["round_trip_ms"] for trial in trials], 3),
        "cut_s_range": [min(cuts), max(cuts)],
    }
    written = [trial["client_written_us"] for trial in trials if trial["client_written_us"]]
    if written:
        summary["client_written_us"] = _spread(written, 1)
    sample_errors = [trial["sample_error"] for trial in trials if "sample_error" in trial]
    if sample_errors:
        summary["max_abs_sample_error"] = max(abs(error) for error in sample_errors)
    old = [trial["livekit_012_error_ms"] for trial in trials if "livekit_012_error_ms" in trial]
    if old:
        summary["livekit_012_error_ms"] = {
            "median_abs": statistics.median(abs(error) for error in old),
            "max_abs": max(abs(error) for error in old),
            "mean_signed": round(statistics.fmean(old), 1),
            "exact": sum(error == 0 for error in old),
        }
    return summary


def table(results: dict[str, Any]) -> str:
    """The Markdown table for the README, and a line on the 0.12 contrast."""
    lines = [
        "| output | trials | ground truth unreadable | error 0 ms | median error (ms)"
        " | max abs error (ms)"
        " | speech_started → truncate sent, in the client: p50 / p99 (µs)"
        " | server round trip: p50 / p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    contrast = []
    for name, result in results.items():
        summary = result["summary"]
        if not summary["trials"]:
            lines.append(f"| {name} | 0 | {summary['unreadable']} | | | | | |")
            continue
        client, trip = summary["client_us"], summary["round_trip_ms"]
        lines.append(
            f"| {name} | {summary['trials']} | {summary['unreadable']}"
            f" | {summary['exact']}/{summary['trials']} | {summary['median_error_ms']:g}"
            f" | {summary['max_abs_error_ms']} | {client['p50']:.0f} / {client['p99']:.0f}"
            f" | {trip['p50']:.2f} / {trip['p99']:.2f} |"
        )
        old = summary.get("livekit_012_error_ms")
        if old:
            contrast.append(
                f"{name}: LiveKit Agents 0.12's rule (pushed − queued_duration, at the same"
                f" moment on the same source) would have sent an error of {old['median_abs']} ms"
                f" (median |error|), {old['max_abs']} ms at worst, {old['mean_signed']:+} ms on"
                f" average; 0 ms in {old['exact']}/{summary['trials']}."
            )
    return "\n".join([*lines, "", *contrast]).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__)
    parser.add_argument("--trials", type=int, help="trials per output (default 50, quick 5)")
    parser.add_argument("--quick", action="store_true", help="5 trials per output")
    parser.add_argument("--seed", type=int, default=Plan.seed)
    parser.add_argument("--no-save", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    trials = args.trials or (5 if args.quick else Plan.trials)
    plan = Plan(trials=trials, seed=args.seed)
    logging.basicConfig(level=logging.WARNING)
    background = busy_cores(1.0)
    started = time.perf_counter()
    results = asyncio.run(measure(plan, lambda line: print(line, flush=True)))
    now = datetime.datetime.now(datetime.timezone.utc)
    text = table(results)
    report = {
        "date": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "background_cores_at_start": round(background, 2),
        "plan": asdict(plan),
        "duration_s": round(time.perf_counter() - started, 1),
        "table": text,
        "results": results,
    }
    print(f"\n{now:%Y-%m-%d %H:%M} UTC, {report['duration_s']} s\n\n{text}")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = "realtime-quick" if args.quick else "realtime"
        (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / f"{stem}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
