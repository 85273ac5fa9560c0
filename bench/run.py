"""``make bench``: run every workload for this package and for LiveKit Agents 0.12.21, compare.

Each (engine, workload) runs in a fresh subprocess under the engine's own interpreter: the
project venv for ours (livekit 1.2.1), bench/.peer-venv for the peer (livekit 1.1.10),
built here on first use. Prints one table and writes bench/results/<date>.json and
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import busy_cores
from .peer_env import ensure_peer_env

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REAL_TIME_SLACK = 1.1
"""A 2 s item is in real time if it ends within 2.2 s of ``play()``."""
ENGINES = ("ours", "peer")
EXACTNESS_WAIT_MS = 0.2
"""Issue 18's allowance over the peer's median where exactness needs a wait: the LiveKit sink
holds a clear that lands just before a native tick for a few guard ms to know the position."""
QUIET_CORES = 0.3
"""Background CPU (in cores) under which the machine counts as quiet enough to measure."""


def wait_for_quiet(max_wait_s: float) -> float:
    """Wait (up to ``max_wait_s``) until other processes use under ``QUIET_CORES``; the load."""
    deadline = time.monotonic() + max_wait_s
    load = busy_cores()
    while load > QUIET_CORES and time.monotonic() < deadline:
        load = busy_cores(1.0)
    return round(load, 2)


def run_worker(
    python: Path | str,
    engine: str,
    workload: str,
    params: dict[str, Any],
    *,
    cpus: set[int] | None = None,
    timeout_s: float = 600.0,
    quiet_wait_s: float = 0.0,
) -> dict[str, Any]:
    """Run ``workload`` for ``engine`` in a subprocess (pinned to ``cpus`` if given).

    With ``quiet_wait_s`` it first waits for the machine to be quiet and records the
    background load it started under as ``background_cores``.
    """
    background = wait_for_quiet(quiet_wait_s) if quiet_wait_s else None
    command = [str(python), "-m", "bench.worker", engine, workload, json.dumps(params)]
    process = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(
            f"{engine} {workload} {params} failed ({process.returncode}):\n{process.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    result["background_cores"] = background
    return result


def start_workers(
    python: Path | str, engine: str, workload: str, params: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    """Run ``count`` copies of a workload at once, in separate processes; their results."""
    command = [str(python), "-m", "bench.worker", engine, workload, json.dumps(params)]
    processes = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"worker failed ({process.returncode}):\n{err.decode()[-3000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


@dataclass(frozen=True)
class Plan:
    """Sizes of every workload; ``quick`` shrinks them for a smoke run."""

    null_sessions: tuple[int, ...] = (10, 100, 1000)
    null_seconds: float = 2.0
    rtc_sessions: tuple[int, ...] = (200, 500)
    rtc_seconds: float = 2.0
    peer_timeout_s: float = 60.0
    interrupt_trials: int = 100
    robustness_trials: int = 15
    growth_minutes: float = 60.0
    growth_window_minutes: float = 5.0
    bytestream_mb: float = 40.0
    core_levels: tuple[int, ...] = (25, 50, 75, 100, 150, 200, 300, 400)
    processes: int = 2
    single_idle_sessions: int = 20
    single_idle_s: float = 5.0
    items: int = 10_000
    quiet_wait_s: float = 20.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            null_sessions=(10, 1000),
            null_seconds=1.0,
            rtc_sessions=(200,),
            peer_timeout_s=20.0,
            interrupt_trials=15,
            robustness_trials=3,
            growth_minutes=5.0,
            growth_window_minutes=1.0,
            bytestream_mb=5.0,
            core_levels=(25, 50),
            single_idle_s=2.0,
            items=500,
            quiet_wait_s=5.0,
        )


def measure(
    plan: Plan, pythons: dict[str, Path | str], log: Callable[[str], None]
) -> dict[str, Any]:
    """Every workload for every engine in ``pythons``; the raw results, keyed by workload."""
    results: dict[str, Any] = {}

    def both(key: str, workload: str, params: dict[str, Any], **peer: Any) -> None:
        results[key] = {}
        for engine, python in pythons.items():
            log(f"  {key}: {engine}")
            engine_params = {**params, **peer} if engine == "peer" else params
            results[key][engine] = run_worker(
                python, engine, workload, engine_params, quiet_wait_s=plan.quiet_wait_s
            )

    for sessions in plan.null_sessions:
        both(
            f"cpu_null_{sessions}", "cpu_null", {"sessions": sessions, "seconds": plan.null_seconds}
        )
    for sessions in plan.rtc_sessions:
        both(
            f"cpu_rtc_{sessions}",
            "cpu_rtc",
            {"sessions": sessions, "seconds": plan.rtc_seconds},
            timeout_s=plan.peer_timeout_s,
        )
    both("interrupts", "interrupts", {"trials": plan.interrupt_trials})
    both("robustness", "robustness", {"trials": plan.robustness_trials})
    both(
        "growth",
        "growth",
        {"minutes": plan.growth_minutes, "window_minutes": plan.growth_window_minutes},
    )
    both("bytestream", "bytestream", {"megabytes": plan.bytestream_mb})
    both(
        "single_session",
        "single_session",
        {"idle_sessions": plan.single_idle_sessions, "idle_s": plan.single_idle_s},
    )
    both("many_items", "many_items", {"items": plan.items})
    log("  sessions per core: ours")
    results["one_core"] = sessions_per_core(pythons["ours"], plan)
    spare = max(results["one_core"]["with_headroom"], plan.core_levels[0])
    log(f"  {plan.processes} worker processes × {spare} sessions: ours")
    results["processes"] = across_processes(pythons["ours"], plan, spare)
    return results


def sessions_per_core(python: Path | str, plan: Plan) -> dict[str, Any]:
    """Real-time rtc sessions one process pinned to one core sustains (largest level passed),
    and the largest level that ended with half the real-time slack to spare (``with_headroom``:
    the load ``across_processes`` runs, as a level at the limit leaves nothing for the second
    process's share of the kernel and the machine)."""
    levels = []
    for sessions in plan.core_levels:
        params = {"sessions": sessions, "seconds": plan.rtc_seconds, "timeout_s": 30.0}
        level = run_worker(
            python, "ours", "cpu_rtc", params, cpus={0}, quiet_wait_s=plan.quiet_wait_s
        )
        levels.append(level)
        if level["late"]:
            break
    return {**levels_sustained(levels, plan.rtc_seconds), "levels": levels}


def levels_sustained(levels: Sequence[dict[str, Any]], seconds: float) -> dict[str, int]:
    """Of ``cpu_rtc`` results for ``seconds`` items, the most sessions with none late, and
    the most whose last item ended with at least half of ``REAL_TIME_SLACK`` to spare."""
    roomy_end_s = seconds * (1 + (REAL_TIME_SLACK - 1) / 2)
    passed = [level for level in levels if not level["late"]]
    roomy = [level for level in passed if (level["end_max_s"] or math.inf) <= roomy_end_s]
    return {
        "sustained": max((level["sessions"] for level in passed), default=0),
        "with_headroom": max((level["sessions"] for level in roomy), default=0),
    }


def across_processes(python: Path | str, plan: Plan, per_process: int) -> dict[str, Any]:
    """``per_process`` rtc sessions in each of ``plan.processes`` processes, all at once."""
    params = {"sessions": per_process, "seconds": plan.rtc_seconds, "timeout_s": 30.0}
    background = wait_for_quiet(plan.quiet_wait_s)
    workers = start_workers(python, "ours", "cpu_rtc", params, plan.processes)
    return {
        "processes": plan.processes,
        "sessions_per_process": per_process,
        "late": sum(worker["late"] for worker in workers),
        "end_max_s": max(worker["end_max_s"] or math.inf for worker in workers),
        "background_cores": background,
        "workers": workers,
    }


@dataclass(frozen=True)
class Row:
    """One line of the table: a metric for both engines and, where there is one, a target."""

    label: str
    ours: float | None
    peer: float | None
    fmt: str = "{:.2f}"
    target: str = ""
    met: bool | None = None
    ratio: bool = True
    """False where the figures are differences (end − start, raw − bare): no ours/peer then."""

    def cells(self) -> list[str]:
        ratio = (
            f"{self.ours / self.peer:.2f}"
            if self.ratio and self.ours is not None and self.peer not in (None, 0)
            else ""
        )
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        return [
            self.label,
            _fmt(self.fmt, self.ours),
            _fmt(self.fmt, self.peer),
            ratio,
            self.target,
            verdict,
        ]


def _fmt(fmt: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt.format(value)


Goal = tuple[str, Callable[[Any, Any], "bool | None"]]
"""A target as printed, and its verdict on (ours, peer): None when a figure it needs is missing."""


def versus_peer(text: str, check: Callable[[float, float], bool]) -> Goal:
    """A target relative to the peer's figure: no verdict without both."""
    return text, lambda ours, peer: None if ours is None or peer is None else check(ours, peer)


def fixed(text: str, check: Callable[[float], bool]) -> Goal:
    """A target on ours' figure alone: a verdict even when the peer was not run."""
    return text, lambda ours, _: None if ours is None else check(ours)


def _growth(run: dict[str, Any] | None) -> dict[str, float] | None:
    """How the long item's cost and memory changed from its start to its end."""
    if run is None:
        return None
    return {
        "cpu": run["end_ms_per_audio_s"] / run["start_ms_per_audio_s"],
        "rss": run["rss_end_mb"] - run["rss_start_mb"],
        "objects": run["objects_end"] - run["objects_start"],
    }


def _many_items(run: dict[str, Any] | None) -> dict[str, float] | None:
    """How tasks, memory and live objects changed from the first checkpoint to the last item."""
    if run is None:
        return None
    return {
        "tasks": run["tasks_end"] - run["tasks_start"],
        "rss": run["rss_end_mb"] - run["rss_start_mb"],
        "objects": run["objects_end"] - run["objects_start"],
    }


def phone_scale(results_dir: Path = RESULTS) -> dict[str, Any] | None:
    """Ours' sustained phone calls from ``bench.phone``'s last full run: phone-scale.json
    (``--scale-only``) if present, else phone.json; None if neither exists."""
    for name in ("phone-scale.json", "phone.json"):
        path = results_dir / name
        if path.exists():
            report = json.loads(path.read_text())
            return {
                "sustained": report["results"]["scale"]["ours"]["sustained"],
                "date": report["date"],
                "file": name,
            }
    return None


def _get(values: dict[str, float] | None, name: str) -> float | None:
    return None if values is None else values[name]


FlatSpec = tuple[str, str, str, float]
"""A flatness row: the figure's key, its label, its format, and the most it may grow."""


def _flat_rows(
    label_of: Callable[[str], str],
    figures: dict[str, dict[str, float] | None],
    specs: tuple[FlatSpec, ...],
    ratio_for: str = "",
) -> list[Row]:
    """Rows for figures that must stay flat: met when ours grew by at most the bound."""
    out = []
    for name, label, fmt, bound in specs:
        ours, peer = (_get(figures[engine], name) for engine in ENGINES)
        met = None if ours is None else ours <= bound
        out.append(Row(label_of(label), ours, peer, fmt, "flat", met, name == ratio_for))
    return out


def rows(results: dict[str, Any], plan: Plan) -> list[Row]:
    """The comparison table, with each target checked against the measured values."""
    out: list[Row] = []

    def pair(key: str, *path: str) -> tuple[Any, Any]:
        values = []
        for engine in ENGINES:
            value: Any = results.get(key, {}).get(engine)
            for step in path:
                value = None if value is None else value.get(step)
            values.append(value)
        return values[0], values[1]

    def add(
        label: str,
        key: str,
        *path: str,
        fmt: str = "{:.2f}",
        goal: Goal | None = None,
        ratio: bool = True,
    ) -> None:
        ours, peer = pair(key, *path)
        target, met = ("", None) if goal is None else (goal[0], goal[1](ours, peer))
        out.append(Row(label, ours, peer, fmt, target, met, ratio))

    def at_most_peer(ours: float, peer: float) -> bool:
        return ours <= peer

    peer_goal = versus_peer("≤ peer", at_most_peer)

    for n in plan.null_sessions:
        key = f"cpu_null_{n}"
        add(
            f"null sink N={n}: engine CPU ms/audio-s",
            key,
            "engine_ms_per_audio_s",
            fmt="{:.3f}",
            goal=peer_goal,
        )
        add(f"null sink N={n}: process CPU ms/audio-s", key, "process_ms_per_audio_s", fmt="{:.3f}")
        add(f"null sink N={n}: wall s for {plan.null_seconds:g} s items", key, "wall_s")
    limit = plan.rtc_seconds * REAL_TIME_SLACK
    for n in plan.rtc_sessions:
        key, gated = f"cpu_rtc_{n}", n == 200
        add(
            f"rtc N={n}: process CPU ms/audio-s",
            key,
            "process_ms_per_audio_s",
            fmt="{:.1f}",
            goal=fixed("≤ 3", lambda ours: ours <= 3) if gated else None,
        )
        add(f"rtc N={n}: loop-thread CPU ms/audio-s", key, "loop_ms_per_audio_s")
        add(
            f"rtc N={n}: last {plan.rtc_seconds:g} s item ends at (s)",
            key,
            "end_max_s",
            goal=fixed(f"≤ {limit:.1f}", lambda ours: ours <= limit) if gated else None,
        )
        add(f"rtc N={n}: sessions late", key, "late", fmt="{:.0f}")
        add(
            f"rtc N={n}: items failed",
            key,
            "failed",
            fmt="{:.0f}",
            goal=fixed("0", lambda ours: ours == 0) if gated else None,
            ratio=False,
        )
        add(
            f"rtc N={n}: native captures per session",
            key,
            "native_captures_per_session",
            fmt="{:.0f}",
        )

    def within_wait(ours: float, peer: float) -> bool:
        return ours <= peer + EXACTNESS_WAIT_MS

    wait_goal = versus_peer(f"≤ peer + {EXACTNESS_WAIT_MS:g} (exactness wait)", within_wait)
    for name, label, median_goal in (
        ("first_frame_ms", "play → first frame at source (ms)", peer_goal),
        ("interrupt_to_cleared_ms", "interrupt → source cleared (ms)", wait_goal),
        ("interrupt_to_finished_ms", "interrupt → handle finished (ms)", wait_goal),
    ):
        add(f"{label}, median", "interrupts", name, "median", fmt="{:.3f}", goal=median_goal)
        add(
            f"{label}, p99",
            "interrupts",
            name,
            "p99",
            fmt="{:.3f}",
            goal=fixed("< 2", lambda ours: ours < 2),
        )
    trials = plan.interrupt_trials
    add(
        f"position exact at interrupt (of {trials})",
        "interrupts",
        "position_exact",
        fmt="{:.0f}",
        goal=fixed(str(trials), lambda ours: ours == trials),
    )
    add(
        "position error, max |samples|",
        "interrupts",
        "position_error_max_abs",
        fmt="{:.0f}",
        goal=fixed("0", lambda ours: ours == 0),
    )
    add("position error, mean |samples|", "interrupts", "position_error_mean_abs", fmt="{:.1f}")
    for kind in ("interrupt_then_play", "play_while_playing"):
        add(
            f"failures: {kind} (of {plan.robustness_trials})",
            "robustness",
            "failures",
            kind,
            fmt="{:.0f}",
            goal=fixed("0", lambda ours: ours == 0),
        )
    minutes = f"{plan.growth_minutes:g} min item"
    add(
        f"{minutes}: CPU ms/audio-s, first {plan.growth_window_minutes:g} min",
        "growth",
        "start_ms_per_audio_s",
        fmt="{:.3f}",
    )
    add(
        f"{minutes}: CPU ms/audio-s, last {plan.growth_window_minutes:g} min",
        "growth",
        "end_ms_per_audio_s",
        fmt="{:.3f}",
    )
    growth = {engine: _growth(results.get("growth", {}).get(engine)) for engine in ENGINES}
    out += _flat_rows(
        lambda label: f"{minutes}: {label}",
        growth,
        (
            ("cpu", "CPU ms/audio-s, end ÷ start", "{:.2f}", 1.25),
            ("rss", "RSS MB, end − start", "{:+.1f}", 5.0),
            ("objects", "live objects, end − start", "{:+.0f}", 100.0),
        ),
        ratio_for="cpu",
    )
    checkpoint = max(plan.items // 10, 1)
    many = {engine: _many_items(results.get("many_items", {}).get(engine)) for engine in ENGINES}
    out += _flat_rows(
        lambda label: (
            f"{plan.items:,} items: {label}, after item {plan.items:,} − after {checkpoint:,}"
        ),
        many,
        (
            ("tasks", "asyncio tasks", "{:+.0f}", 0.0),
            ("rss", "RSS MB", "{:+.1f}", 5.0),
            ("objects", "live objects", "{:+.0f}", 100.0),
        ),
    )
    add("one session: import s", "single_session", "import_s", fmt="{:.3f}")
    add("one session: RSS MB after one item", "single_session", "rss_after_item_mb", fmt="{:.1f}")
    sources = plan.single_idle_sessions
    add(
        f"idle CPU ms/s per session ({sources} rtc sources, raw)",
        "single_session",
        "idle_ms_per_s_per_session",
    )
    add(
        "idle CPU ms/s per session, the engine's share (raw − bare sources)",
        "single_session",
        "idle_engine_ms_per_s_per_session",
        fmt="{:+.2f}",
        ratio=False,
    )
    for size in ("10ms", "20ms", "random"):
        add(
            f"AudioByteStream MB/s, {size} writes (higher is better)",
            "bytestream",
            f"{size}_mb_per_s",
            fmt="{:.0f}",
        )
    core = results.get("one_core")
    if core:
        out.append(Row("rtc sessions in real time on one core", core["sustained"], None, "{:.0f}"))
    phone = results.get("phone_scale")
    out.append(
        Row(
            "phone gateway: most calls in real time in one process (ours), "
            + (f"{phone['file']} of {phone['date'][:10]}" if phone else "not measured"),
            phone["sustained"] if phone else None,
            None,
            "{:.0f}",
        )
    )
    spread = results.get("processes")
    if spread:
        total = spread["processes"] * spread["sessions_per_process"]
        out.append(
            Row(
                f"{spread['processes']} processes × {spread['sessions_per_process']}"
                f" rtc sessions (one core's level with half the slack spare): late (of {total})",
                spread["late"],
                None,
                "{:.0f}",
                "0",
                spread["late"] == 0,
            )
        )
    return out


def table(lines: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = ["metric", "ours", "LiveKit 0.12", "ours/peer", "target", ""]
    body = [header, ["---", "---:", "---:", "---:", "---", "---"]]
    body += [row.cells() for row in lines]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in body)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--ours-only", action="store_true", help="skip the peer (no venv)")
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    started = time.perf_counter()
    pythons: dict[str, Path | str] = {"ours": sys.executable}
    if not args.ours_only:
        pythons["peer"] = ensure_peer_env()
        print(f"peer venv: {pythons['peer']}", flush=True)
    results = measure(plan, pythons, lambda line: print(line, flush=True))
    results["phone_scale"] = phone_scale()
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = rows(results, plan)
    report = {
        "date": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": plan.__dict__,
        "quick": args.quick,
        "duration_s": round(time.perf_counter() - started, 1),
        "table": table(lines),
        "targets_missed": [row.label for row in lines if row.met is False],
        "results": results,
    }
    cores = report["machine"]["cores"]
    print(f"\n{now:%Y-%m-%d %H:%M} UTC, {cores} cores, {report['duration_s']} s\n")
    print(report["table"])
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, indent=1, default=str)
        suffix = "-quick" if args.quick else ""
        (RESULTS / f"{now:%Y-%m-%d}{suffix}.json").write_text(text)
        (RESULTS / "latest.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
