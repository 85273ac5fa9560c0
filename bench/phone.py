"""``python -m bench.phone``: the phone output measured against the fake phone's played count.

Each run starts a server process (ours: ``bench.phone_server``; Pipecat: ``bench.phone_pipecat``
in its own venv) pinned to one core, and fake phones (``bench.phone_callers``, several
``SimulatedCaller``s per process) pinned to the other, directly or over a ``DelayedLink``. It
measures:

- position error at random cuts, direct and over 40, 80 and 150 ms one-way links, beside the
  error of the confirmed marks alone, with the cleared turns' echoes ignored and counted;
- the mark cadence (20, 100, 500 ms): error and messages per call-second;
- scale: calls ramped until one is not kept in real time or a position misses the target;
  CPU per call-second, memory per call, the event loop's lag; where the time goes (cProfile);
  uvloop and orjson (bench-only, from a scratch venv);
- the same calls through Pipecat's FastAPI WebSocket transport and Twilio serializer.

Writes bench/results/phone.json and bench/results/phone.md (``--quick``: -quick files, tiny
sizes, ours only unless ``--pipecat``). ``--scale-only`` runs only ours' scale ramp and writes
bench/results/phone-scale.json, which ``bench.run`` shows as the phone gateway's row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import busy_cores, percentile
from .phone_env import ensure_pipecat_env, ensure_scratch_env
from .run import machine, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_MS = 20.0
"""A position is within target when it is within one 20 ms chunk of what the phone played."""
UNDERRUN_MS = 1.0
"""A turn whose phone ran dry for more than this after its first audio was not in real time."""
SERVER_CPUS = {0}
PHONE_CPUS = {1}
"""The server has one core to itself; the phones (about half its cost) have the other."""


@dataclass(frozen=True)
class Plan:
    """The sizes of every measurement; ``quick`` shrinks them for the smoke test."""

    links_ms: tuple[int, ...] = (0, 40, 80, 150)
    position_calls: int = 20
    position_turns: int = 5
    turn_s: float = 4.0
    cadences_ms: tuple[int, ...] = (20, 100, 500)
    cadence_link_ms: int = 80
    scale_levels: tuple[int, ...] = (25, 50, 60, 70, 80, 100, 150, 200, 300, 400)
    target_calls: int = 200
    pipecat_levels: tuple[int, ...] = (10, 20, 40, 60, 80, 100)
    min_levels: int = 3
    scale_turns: int = 3
    scale_turn_s: float = 8.0
    scale_min_cut_s: float = 4.0
    """Scale runs cut late, so that the calls overlap for most of the run."""
    scale_stagger_s: float = 3.0
    profile_calls: int = 100
    phone_processes: int = 4
    pipecat: bool = True
    scratch: bool = True
    quiet_wait_s: float = 90.0
    """Before each run, wait up to this long for other processes to use under 0.3 cores."""

    @classmethod
    def quick(cls, *, pipecat: bool = False) -> Plan:
        return cls(
            links_ms=(0, 80),
            position_calls=3,
            position_turns=2,
            turn_s=1.5,
            cadences_ms=(100,),
            scale_levels=(5,),
            pipecat_levels=(5,),
            min_levels=1,
            target_calls=5,
            scale_turns=2,
            scale_turn_s=1.5,
            scale_min_cut_s=0.4,
            scale_stagger_s=0.2,
            profile_calls=3,
            phone_processes=1,
            pipecat=pipecat,
            scratch=False,
            quiet_wait_s=0.0,
        )


@dataclass(frozen=True)
class Run:
    """One server run: which engine, how many calls, over which link, at which cadence."""

    engine: str
    calls: int
    turns: int
    turn_s: float
    min_cut_s: float = 0.4
    delay_ms: int = 0
    mark_every_ms: int = 100
    stagger_s: float = 0.0
    processes: int = 1
    profile: str | None = None
    uvloop: bool = False
    seed_base: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _pin(cpus: set[int]) -> Callable[[], None] | None:
    available = os.sched_getaffinity(0)
    if not cpus <= available or len(available) < 2:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _server_command(run: Run, python: Path | str) -> list[str]:
    module = "bench.phone_pipecat" if run.engine == "pipecat" else "bench.phone_server"
    command = [str(python), "-m", module, "--calls", str(run.calls), "--turns", str(run.turns)]
    command += ["--turn-s", str(run.turn_s), "--min-cut-s", str(run.min_cut_s)]
    if run.engine != "pipecat":
        command += ["--mark-every-ms", str(run.mark_every_ms)]
        if run.profile:
            command += ["--profile", run.profile]
        if run.uvloop:
            command.append("--uvloop")
    return command


def execute(
    run: Run, python: Path | str, *, timeout_s: float | None = None, quiet_wait_s: float = 0.0
) -> dict[str, Any]:
    """Start the server, dial its calls from the phone pool, and join what both saw (after
    waiting up to ``quiet_wait_s`` for a quiet machine; the load it started under is kept)."""
    background = wait_for_quiet(quiet_wait_s) if quiet_wait_s else round(busy_cores(0.5), 2)
    longest = run.turns * run.turn_s + run.calls * run.stagger_s / max(run.processes, 1)
    timeout = timeout_s or 60.0 + 3 * longest
    server = subprocess.Popen(
        _server_command(run, python),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_pin(SERVER_CPUS),
    )
    try:
        assert server.stdout is not None
        assert server.stderr is not None
        ready = server.stdout.readline()
        if not ready:
            raise RuntimeError(
                f"{run.engine} server did not start:\n{server.stderr.read()[-3000:]}"
            )
        port = json.loads(ready)["port"]
        phones = _dial(run, f"ws://127.0.0.1:{port}/", timeout)
        out, err = server.communicate(timeout=timeout)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = out.strip().splitlines()
    if server.returncode != 0 or not lines:
        raise RuntimeError(f"{run.engine} server failed ({server.returncode}):\n{err[-3000:]}")
    summary = summarize(run, json.loads(lines[-1]), phones)
    summary["server_log"] = err.strip().splitlines()[-10:]
    summary["background_cores"] = background
    return summary


def _dial(run: Run, url: str, timeout: float) -> list[dict[str, Any]]:
    seeds = list(range(run.seed_base, run.seed_base + run.calls))
    count = max(min(run.processes, run.calls), 1)
    shares = [seeds[index::count] for index in range(count)]
    processes = []
    for share in shares:
        params = {
            "url": url,
            "seeds": share,
            "turns": run.turns,
            "timeout_s": timeout,
            "delay_ms": run.delay_ms,
            "stagger_s": run.stagger_s * count,
            "first_at_s": 0.5,
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.phone_callers", json.dumps(params)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=_pin(PHONE_CPUS),
            )
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout + 30)
        if process.returncode != 0:
            raise RuntimeError(f"phones failed ({process.returncode}):\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _stats(values: Sequence[float]) -> dict[str, float]:
    magnitudes = [abs(value) for value in values]
    return {
        "median_ms": round(percentile(magnitudes, 50), 2),
        "p95_ms": round(percentile(magnitudes, 95), 2),
        "max_ms": round(max(magnitudes, default=math.nan), 2),
        "mean_signed_ms": round(sum(values) / len(values), 2) if values else math.nan,
    }


def summarize(run: Run, server: dict[str, Any], phones: list[dict[str, Any]]) -> dict[str, Any]:
    """Each cut's error against the phone; real time, cost and memory of the run."""
    truth = {record["seed"]: record for phone in phones for record in phone["records"]}
    errors: list[float] = []
    confirmed_errors: list[float] = []
    written_errors: list[float] = []
    confirmed_over = 0
    late_cuts: list[float] = []
    for record in server["records"]:
        phone = truth.get(record["seed"], {})
        for reported, heard in zip(record["turns"], phone.get("turns", []), strict=False):
            played = heard["played"]
            late_cuts.append(reported["late_ms"])
            if run.engine == "pipecat":
                errors.append((reported["reported"] - played) / 8)
                written_errors.append((reported["written"] - played) / 8)
                continue
            errors.append((reported["audio_samples"] - 3 * played) / 24)
            confirmed_errors.append((reported["confirmed"] - played) / 8)
            confirmed_over += reported["confirmed"] > played
    calls = list(truth.values())
    gaps = [turn["gap_ms"] for call in calls for turn in call.get("turns", [])]
    call_seconds = sum(call.get("seconds", 0.0) for call in calls)
    sent = sum(call.get("media", 0) + call.get("other", 0) for call in calls)
    underrun_calls = sum(
        any(turn["gap_ms"] > UNDERRUN_MS for turn in call.get("turns", [])) for call in calls
    )
    incomplete = sum(not call.get("complete") for call in calls) + run.calls - len(calls)
    within = sum(abs(error) <= TARGET_MS for error in errors)
    summary: dict[str, Any] = {
        "run": {key: value for key, value in asdict(run).items() if key != "extra"},
        "cuts": len(errors),
        "error": _stats(errors),
        "within_target": within,
        "calls_underrun": underrun_calls,
        "calls_incomplete": incomplete,
        "underrun_ms_total": round(sum(gap for gap in gaps if gap > UNDERRUN_MS), 1),
        "underrun_ms_per_call_s": round(
            sum(gap for gap in gaps if gap > UNDERRUN_MS) / call_seconds, 2
        )
        if call_seconds
        else None,
        "cut_late_ms_max": round(max(late_cuts, default=0.0), 2),
        "lag_p99_ms": server["lag_p99_ms"],
        "lag_max_ms": server["lag_max_ms"],
        "server_cpu_peak_cores": server.get("cpu_peak_cores"),
        "gc_full_collections": server.get("gc_full_collections"),
        "gc_full_pause_max_ms": server.get("gc_full_pause_max_ms"),
        "cpu_ms_per_call_s": round(server["cpu_s"] * 1000 / call_seconds, 3)
        if call_seconds
        else None,
        "server_cores": round(server["cpu_s"] / server["wall_s"], 2) if server["wall_s"] else None,
        "phone_cores": round(
            sum(phone["cpu_s"] for phone in phones) / max(p["wall_s"] for p in phones), 2
        ),
        "phone_lag_max_ms": max(phone.get("lag_max_ms", 0.0) for phone in phones),
        "phone_cpu_peak_cores": round(sum(phone.get("cpu_peak_cores", 0.0) for phone in phones), 2),
        "rss_per_call_mb": round((server["rss_peak_mb"] - server["rss_before_mb"]) / run.calls, 3),
        "messages_per_call_s": round(sent / call_seconds, 1) if call_seconds else None,
        "messages_both_ways_per_call_s": round(
            (sent + sum(c.get("inbound_media", 0) + c.get("marks_echoed", 0) for c in calls))
            / call_seconds,
            1,
        )
        if call_seconds
        else None,
        "versions": server.get("versions", {}),
    }
    summary["real_time"] = underrun_calls == 0 and incomplete == 0
    summary["all_within_target"] = within == len(errors) and incomplete == 0
    if run.engine == "pipecat":
        summary["written_error"] = _stats(written_errors)
    else:
        summary["confirmed_error"] = _stats(confirmed_errors)
        summary["stale_echoes_ignored"] = sum(r["stale_echoes"] for r in server["records"])
        summary["confirmed_above_played"] = confirmed_over
        summary["marks_per_call_s"] = (
            round(sum(r["marks_sent"] for r in server["records"]) / call_seconds, 1)
            if call_seconds
            else None
        )
    return summary


PROFILE_GROUPS = (
    ("JSON", ("json", "_json")),
    ("base64", ("base64", "binascii")),
    ("mu-law", ("mulaw",)),
    ("resampling (soxr)", ("soxr", "resample")),
    ("Media Streams messages", ("twilio/messages",)),
    ("phone sink, call, scheduler", ("twilio/sink", "twilio/call", "twilio/scheduler")),
    ("engine", ("agent_playout/engine", "agent_playout/core", "agent_playout/transcript")),
    ("websockets", ("websockets",)),
    ("socket send/recv, epoll (syscalls)", ("_socket", "select.epoll")),
    ("asyncio", ("asyncio", "selectors", "_contextvars")),
    ("the benchmark's own source and lag monitor", ("bench/",)),
    ("numpy", ("numpy",)),
)


def _group(filename: str, function: str) -> str:
    key = filename if filename != "~" else function
    return next((name for name, needles in PROFILE_GROUPS if any(n in key for n in needles)), "")


def profile_groups(path: str) -> dict[str, float]:
    """Busy time by group, in percent: each function's own time, a builtin's given to its
    callers' groups in proportion; the wait in epoll (idle) left out."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, callers) in stats.items():
        if "select.epoll" in function:
            continue
        group = _group(filename, function)
        if group:
            totals[group] = totals.get(group, 0.0) + own
            continue
        spread = sum(entry[2] for entry in callers.values()) or 1.0
        for (caller_file, _, caller_function), entry in callers.items():
            name = _group(caller_file, caller_function) or "other"
            totals[name] = totals.get(name, 0.0) + own * entry[2] / spread
        if not callers:
            totals["other"] = totals.get("other", 0.0) + own
    grand = sum(totals.values()) or 1.0
    return {
        name: round(100 * value / grand, 1)
        for name, value in sorted(totals.items(), key=lambda item: -item[1])
    }


def profile_top(path: str, count: int = 15) -> list[dict[str, Any]]:
    """The functions with the most own time (the wait in epoll left out)."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": f"{Path(filename).name}:{line}({function})",
            "calls": entry[1],
            "own_s": round(entry[2], 3),
            "cumulative_s": round(entry[3], 3),
        }
        for (filename, line, function), entry in stats.items()
        if "select.epoll" not in function
    ]
    return sorted(rows, key=lambda row: -row["own_s"])[:count]


def json_speedup() -> dict[str, float]:
    """json vs orjson on the messages of a call (in the scratch venv): µs per message."""
    code = r"""
import base64, json, timeit, orjson
media = json.dumps({"event": "media", "sequenceNumber": "3", "streamSid": "MZ" + "0" * 32,
    "media": {"track": "inbound", "chunk": "1", "timestamp": "5",
              "payload": base64.b64encode(bytes(160)).decode()}})
n = 20000
print(json.dumps({
    "json_loads_us": timeit.timeit(lambda: json.loads(media), number=n) / n * 1e6,
    "orjson_loads_us": timeit.timeit(lambda: orjson.loads(media), number=n) / n * 1e6,
}))
"""
    python = ensure_scratch_env()
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return {key: round(value, 3) for key, value in json.loads(out.stdout).items()}


def measure(plan: Plan, log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement in ``plan``; the summaries, keyed by what they measure."""
    ours: Path | str = sys.executable
    engines: dict[str, Path | str] = {"ours": ours}
    if plan.pipecat:
        engines["pipecat"] = ensure_pipecat_env()
    results: dict[str, Any] = {"position": {}, "cadence": {}, "scale": {}}
    for engine, python in engines.items():
        for delay in plan.links_ms:
            log(f"  position, {delay} ms one way: {engine}")
            run = Run(
                engine,
                plan.position_calls,
                plan.position_turns,
                plan.turn_s,
                delay_ms=delay,
                stagger_s=0.1,
                processes=plan.phone_processes,
            )
            results["position"].setdefault(engine, {})[str(delay)] = execute(
                run, python, quiet_wait_s=plan.quiet_wait_s
            )
    for cadence in plan.cadences_ms:
        log(f"  cadence {cadence} ms over {plan.cadence_link_ms} ms: ours")
        run = Run(
            "ours",
            plan.position_calls,
            plan.position_turns,
            plan.turn_s,
            delay_ms=plan.cadence_link_ms,
            mark_every_ms=cadence,
            stagger_s=0.1,
            processes=plan.phone_processes,
        )
        results["cadence"][str(cadence)] = execute(run, ours, quiet_wait_s=plan.quiet_wait_s)
    for engine, python in engines.items():
        results["scale"][engine] = ramp(plan, engine, python, log)
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "server.prof")
        log(f"  profile at {plan.profile_calls} calls: ours")
        run = _scale_run(plan, "ours", plan.profile_calls, profile=path)
        results["profile"] = {
            "run": execute(run, ours, quiet_wait_s=plan.quiet_wait_s),
            "groups_pct": profile_groups(path),
            "top": profile_top(path),
        }
    if plan.scratch:
        sustained = results["scale"]["ours"]["sustained"] or plan.scale_levels[0]
        scratch_python = ensure_scratch_env()
        comparison = {}
        for uvloop in (False, True):
            log(f"  {sustained} calls, {'uvloop' if uvloop else 'asyncio'} (scratch venv): ours")
            run = _scale_run(plan, "ours", sustained, uvloop=uvloop)
            comparison["uvloop" if uvloop else "asyncio"] = execute(
                run, scratch_python, quiet_wait_s=plan.quiet_wait_s
            )
        results["uvloop"] = comparison
        results["orjson"] = json_speedup()
    return results


def _scale_run(plan: Plan, engine: str, calls: int, **options: Any) -> Run:
    return Run(
        engine,
        calls,
        plan.scale_turns,
        plan.scale_turn_s,
        min_cut_s=plan.scale_min_cut_s,
        stagger_s=plan.scale_stagger_s / calls,
        processes=plan.phone_processes,
        **options,
    )


def ramp(plan: Plan, engine: str, python: Path | str, log: Callable[[str], None]) -> dict[str, Any]:
    """Calls at each level until one misses real time or the position target (at least
    ``min_levels`` levels); ours is also run at the target (200 calls) if the ramp stopped short."""
    levels: list[dict[str, Any]] = []

    def level_at(calls: int) -> bool:
        log(f"  scale {calls} calls: {engine}")
        try:
            level = execute(_scale_run(plan, engine, calls), python, quiet_wait_s=plan.quiet_wait_s)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            level = {"run": {"calls": calls}, "failed": str(error)[-500:], "real_time": False}
        levels.append(level)
        return bool(level["real_time"] and level.get("all_within_target"))

    passed = []
    for calls in plan.pipecat_levels if engine == "pipecat" else plan.scale_levels:
        if level_at(calls):
            passed.append(calls)
        elif len(levels) >= plan.min_levels:
            break
    ran = {level["run"]["calls"] for level in levels}
    if engine == "ours" and plan.target_calls not in ran:
        level_at(plan.target_calls)
    return {"sustained": max(passed, default=0), "levels": levels}


def _cell(value: Any, fmt: str = "{:.1f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt.format(value)


def scale_table(scale_results: dict[str, Any]) -> list[str]:
    """The scale ramp's Markdown table and the most calls each engine kept in real time."""
    out = [
        "Scale (the server pinned to one core, the phones' processes to the other):",
        "",
        "| engine | calls | real time | positions within 20 ms | max error | underrun ms"
        " | loop lag p99 / max (ms) | CPU ms per call-second | server cores, mean / busiest s"
        " | RSS MB per call | phones: cores, lag max (ms) |",
        "|---|---:|---|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for engine, scale in scale_results.items():
        for level in scale["levels"]:
            if "failed" in level:
                out.append(f"| {engine} | {level['run']['calls']} | failed | | | | | | | | |")
                continue
            out.append(
                f"| {engine} | {level['run']['calls']} | {'yes' if level['real_time'] else 'NO'}"
                f" | {level['within_target']}/{level['cuts']} | {_cell(level['error']['max_ms'])}"
                f" | {_cell(level['underrun_ms_total'])}"
                f" | {_cell(level['lag_p99_ms'])} / {_cell(level['lag_max_ms'])}"
                f" | {_cell(level['cpu_ms_per_call_s'], '{:.2f}')}"
                f" | {_cell(level['server_cores'], '{:.2f}')}"
                f" / {_cell(level['server_cpu_peak_cores'], '{:.2f}')}"
                f" | {_cell(level['rss_per_call_mb'], '{:.3f}')}"
                f" | {_cell(level['phone_cores'], '{:.2f}')}, {_cell(level['phone_lag_max_ms'])} |"
            )
    sustained = ", ".join(
        f"{engine} {scale['sustained']}" for engine, scale in scale_results.items()
    )
    out += ["", f"Most calls kept in real time with every position within 20 ms: {sustained}."]
    return out


def tables(results: dict[str, Any]) -> str:
    """The Markdown tables for the README."""
    out = [
        "Position error at random cuts against the fake phone's played count (ms):",
        "",
        "| engine | one-way link | cuts | median | p95 | max | within 20 ms"
        " | confirmed marks only: median / max | echoes ignored | counted |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for engine, links in results["position"].items():
        for delay, summary in links.items():
            error = summary["error"]
            if engine == "pipecat":
                other = summary["written_error"]
                extra = f"written: {_cell(other['median_ms'])} / {_cell(other['max_ms'])}"
                ignored, counted = "no marks", "—"
            else:
                other = summary["confirmed_error"]
                extra = f"{_cell(other['median_ms'])} / {_cell(other['max_ms'])}"
                ignored = str(summary["stale_echoes_ignored"])
                counted = str(summary["confirmed_above_played"])
            out.append(
                f"| {engine} | {delay} ms | {summary['cuts']} | {_cell(error['median_ms'])}"
                f" | {_cell(error['p95_ms'])} | {_cell(error['max_ms'])}"
                f" | {summary['within_target']}/{summary['cuts']} | {extra} | {ignored}"
                f" | {counted} |"
            )
    out += [
        "",
        "Mark cadence (ours, over the cadence link):",
        "",
        "| mark every | median error | max error | confirmed-only median"
        " | server → phone messages per call-second | marks per call-second"
        " | messages both ways per call-second | server CPU ms per call-second |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cadence, summary in results["cadence"].items():
        out.append(
            f"| {cadence} ms | {_cell(summary['error']['median_ms'])}"
            f" | {_cell(summary['error']['max_ms'])}"
            f" | {_cell(summary['confirmed_error']['median_ms'])}"
            f" | {_cell(summary['messages_per_call_s'])} | {_cell(summary['marks_per_call_s'])}"
            f" | {_cell(summary['messages_both_ways_per_call_s'])}"
            f" | {_cell(summary['cpu_ms_per_call_s'], '{:.2f}')} |"
        )
    out += ["", *scale_table(results["scale"])]
    loads = [
        summary["background_cores"]
        for section in ("position", "scale")
        for runs in results[section].values()
        for summary in (runs["levels"] if section == "scale" else list(runs.values()))
        if "background_cores" in summary
    ]
    loads += [summary["background_cores"] for summary in results["cadence"].values()]
    if loads:
        out.append(
            f"Other processes' load just before each run: {min(loads):.2f}–{max(loads):.2f}"
            " cores (of 2)."
        )
    groups = results.get("profile", {}).get("groups_pct", {})
    if groups:
        calls = results["profile"]["run"]["run"]["calls"]
        out += ["", f"Where the server's time goes (cProfile own time, {calls} calls):", ""]
        out += ["| part | share |", "|---|---:|"]
        out += [f"| {name} | {share:.1f} % |" for name, share in groups.items()]
    if "uvloop" in results:
        loops = results["uvloop"]
        plain, fast = loops["asyncio"], loops["uvloop"]
        ratio = (
            fast["cpu_ms_per_call_s"] / plain["cpu_ms_per_call_s"]
            if plain["cpu_ms_per_call_s"]
            else math.nan
        )
        speed = results["orjson"]
        out += [
            "",
            f"uvloop at {plain['run']['calls']} calls: CPU per call-second"
            f" {_cell(plain['cpu_ms_per_call_s'], '{:.2f}')} ms (asyncio) vs"
            f" {_cell(fast['cpu_ms_per_call_s'], '{:.2f}')} ms (uvloop), ratio {ratio:.2f};"
            f" loop lag max {_cell(plain['lag_max_ms'])} vs {_cell(fast['lag_max_ms'])} ms.",
            f"orjson: parsing an inbound media message {speed['json_loads_us']:.2f} µs (json)"
            f" vs {speed['orjson_loads_us']:.2f} µs (orjson).",
        ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phone", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--pipecat", action="store_true", help="with --quick: run Pipecat too")
    parser.add_argument("--no-pipecat", action="store_true", help="skip the Pipecat venv")
    parser.add_argument("--no-save", action="store_true", help="print only, write no files")
    parser.add_argument(
        "--scale-only",
        action="store_true",
        help="only ours' scale ramp, written to phone-scale.json (phone.json is left alone)",
    )
    args = parser.parse_args(argv)
    plan = Plan.quick(pipecat=args.pipecat) if args.quick else Plan()
    if args.no_pipecat:
        plan = Plan(**{**asdict(plan), "pipecat": False})
    started = time.perf_counter()
    background = busy_cores(1.0)

    def log(line: str) -> None:
        print(line, flush=True)

    if args.scale_only:
        results = {"scale": {"ours": ramp(plan, "ours", sys.executable, log)}}
        text = "\n".join(scale_table(results["scale"]))
    else:
        results = measure(plan, log)
        text = tables(results)
    now = datetime.datetime.now(datetime.timezone.utc)
    report = {
        "date": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "background_cores_at_start": round(background, 2),
        "plan": asdict(plan),
        "quick": args.quick,
        "duration_s": round(time.perf_counter() - started, 1),
        "tables": text,
        "results": results,
    }
    print(f"\n{now:%Y-%m-%d %H:%M} UTC, {report['duration_s']} s\n")
    print(text)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = ("phone-scale" if args.scale_only else "phone") + ("-quick" if args.quick else "")
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
        if not args.scale_only:
            (RESULTS / f"{name}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
