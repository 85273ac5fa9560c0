"""The benchmark harness runs its workloads for this package (tiny sizes, no peer venv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("livekit.rtc", reason="the bench drives rtc.AudioFrame; needs [livekit]")

from bench import run, worker


def test_null_sink_sessions_all_finish_exactly_and_report_cpu() -> None:
    result = worker.run("ours", "cpu_null", {"sessions": 5, "seconds": 0.2})
    assert result["exact_sessions"] == 5
    assert result["process_ms_per_audio_s"] > 0
    assert result["sink_captures_per_session"] == 4


def test_growth_runs_on_the_virtual_clock_for_the_whole_item() -> None:
    result = worker.run("ours", "growth", {"minutes": 0.2, "window_minutes": 0.05})
    assert result["virtual_s"] == pytest.approx(12.0, abs=0.3)
    assert result["position_s"] == pytest.approx(12.0)


def test_bytestream_reports_throughput_for_every_write_size() -> None:
    result = worker.run("ours", "bytestream", {"megabytes": 0.2})
    assert {"10ms_mb_per_s", "20ms_mb_per_s", "random_mb_per_s"} <= result.keys()
    assert all(result[key] > 0 for key in ("10ms_mb_per_s", "20ms_mb_per_s"))


def test_many_items_all_finish_exactly_and_count_tasks_memory_and_objects() -> None:
    result = worker.run("ours", "many_items", {"items": 50})
    assert result["exact_items"] == 50
    assert result["checkpoint"] == 5
    assert result["virtual_s"] == pytest.approx(5.0)
    assert isinstance(result["tasks_start"], int)
    assert isinstance(result["tasks_end"], int)
    assert result["rss_end_mb"] > 0
    assert result["objects_end"] > 0


def test_single_session_reports_import_time_memory_and_idle_cpu() -> None:
    params = {"item_s": 0.2, "idle_sessions": 2, "idle_s": 0.2, "import_runs": 1}
    result = worker.run("ours", "single_session", params)
    assert 0 < result["import_s"] < 30
    assert result["item_exact"]
    assert result["rss_after_item_mb"] > 0
    assert result["idle_ms_per_s_per_session"] > 0
    assert result["idle_engine_ms_per_s_per_session"] == pytest.approx(
        result["idle_ms_per_s_per_session"] - result["idle_bare_ms_per_s_per_session"]
    )


def test_a_worker_subprocess_returns_json_and_the_table_renders_without_the_peer() -> None:
    plan = run.Plan(null_sessions=(3,), null_seconds=0.2, rtc_sessions=())
    result = run.run_worker(sys.executable, "ours", "cpu_null", {"sessions": 3, "seconds": 0.2})
    assert result["versions"]["livekit"]
    lines = run.rows({"cpu_null_3": {"ours": result}}, plan)
    text = run.table(lines)
    assert "null sink N=3: engine CPU ms/audio-s" in text
    assert all(line.met is None for line in lines if line.label.startswith("null sink"))


def _by_label(lines: list[run.Row]) -> dict[str, run.Row]:
    return {line.label: line for line in lines}


def test_issue_18_goals_mark_ours_against_the_peer_met_or_missed() -> None:
    plan = run.Plan(null_sessions=(10, 100), rtc_sessions=(200,))

    def latencies(first: float, cleared: float, finished: float) -> dict[str, object]:
        return {
            "first_frame_ms": {"median": first, "p99": 1.0},
            "interrupt_to_cleared_ms": {"median": cleared, "p99": 2.5},
            "interrupt_to_finished_ms": {"median": finished, "p99": 1.9},
        }

    results = {
        "cpu_null_10": {
            "ours": {"engine_ms_per_audio_s": 0.10},
            "peer": {"engine_ms_per_audio_s": 0.12},
        },
        "cpu_null_100": {
            "ours": {"engine_ms_per_audio_s": 0.13},
            "peer": {"engine_ms_per_audio_s": 0.12},
        },
        "cpu_rtc_200": {
            "ours": {"process_ms_per_audio_s": 3.4, "end_max_s": 2.1},
            "peer": {"process_ms_per_audio_s": 36.0, "end_max_s": 2.6},
        },
        "interrupts": {
            "ours": latencies(first=0.40, cleared=0.45, finished=0.60),
            "peer": latencies(first=0.41, cleared=0.28, finished=0.35),
        },
    }
    lines = _by_label(run.rows(results, plan))
    assert lines["null sink N=10: engine CPU ms/audio-s"].met is True
    assert lines["null sink N=100: engine CPU ms/audio-s"].met is False
    assert lines["null sink N=100: engine CPU ms/audio-s"].target == "≤ peer"
    assert lines["rtc N=200: process CPU ms/audio-s"].met is False
    assert lines["rtc N=200: last 2 s item ends at (s)"].met is True
    assert lines["rtc N=200: loop-thread CPU ms/audio-s"].target == ""
    assert lines["play → first frame at source (ms), median"].met is True
    cleared = lines["interrupt → source cleared (ms), median"]
    assert cleared.met is True
    assert "exactness wait" in cleared.target
    assert lines["interrupt → handle finished (ms), median"].met is False
    assert lines["interrupt → source cleared (ms), p99"].met is False
    assert lines["interrupt → handle finished (ms), p99"].met is True


def test_without_the_peer_a_peer_goal_has_no_verdict_and_a_fixed_goal_has_one() -> None:
    plan = run.Plan(null_sessions=(10,), rtc_sessions=(200,))
    results = {
        "cpu_null_10": {"ours": {"engine_ms_per_audio_s": 0.1}},
        "cpu_rtc_200": {"ours": {"process_ms_per_audio_s": 3.4, "end_max_s": 2.1}},
    }
    lines = _by_label(run.rows(results, plan))
    assert lines["null sink N=10: engine CPU ms/audio-s"].met is None
    assert lines["rtc N=200: process CPU ms/audio-s"].met is False
    assert lines["rtc N=200: last 2 s item ends at (s)"].met is True


def test_many_items_rows_mark_flat_from_fixed_bounds_and_single_session_rows_show_both() -> None:
    plan = run.Plan(null_sessions=(), rtc_sessions=(), items=1000)

    def items(tasks: int, rss: float, objects: int) -> dict[str, float]:
        return {
            "tasks_start": 5,
            "tasks_end": 5 + tasks,
            "rss_start_mb": 80.0,
            "rss_end_mb": 80.0 + rss,
            "objects_start": 30_000,
            "objects_end": 30_000 + objects,
        }

    single = {"import_s": 0.4, "rss_after_item_mb": 70.0, "idle_ms_per_s_per_session": 0.5}
    results = {
        "many_items": {"ours": items(0, 6.0, 40), "peer": items(3, 1.0, 900)},
        "single_session": {
            "ours": {**single, "idle_engine_ms_per_s_per_session": 0.02},
            "peer": {**single, "import_s": 1.2, "idle_engine_ms_per_s_per_session": 0.1},
        },
    }
    lines = _by_label(run.rows(results, plan))
    tail = "after item 1,000 − after 100"
    tasks = lines[f"1,000 items: asyncio tasks, {tail}"]
    assert (tasks.ours, tasks.peer, tasks.met) == (0, 3, True)
    assert lines[f"1,000 items: RSS MB, {tail}"].met is False
    assert lines[f"1,000 items: live objects, {tail}"].met is True
    imports = lines["one session: import s"]
    assert (imports.ours, imports.peer, imports.met) == (0.4, 1.2, None)
    share = lines["idle CPU ms/s per session, the engine's share (raw − bare sources)"]
    assert share.cells()[1:4] == ["+0.02", "+0.10", ""]
    assert imports.cells()[3] == "0.33"


def test_the_phone_row_takes_phone_scale_json_over_phone_json_and_says_which(
    tmp_path: Path,
) -> None:
    plan = run.Plan(null_sessions=(), rtc_sessions=())
    label = "phone gateway: most calls in real time in one process (ours)"

    def phone_row() -> run.Row:
        scale = run.phone_scale(tmp_path)
        (row,) = (line for line in run.rows({"phone_scale": scale}, plan) if label in line.label)
        return row

    assert phone_row().ours is None
    assert phone_row().label.endswith("not measured")

    def write(name: str, date: str, sustained: int) -> None:
        report = {"date": date, "results": {"scale": {"ours": {"sustained": sustained}}}}
        (tmp_path / name).write_text(json.dumps(report))

    write("phone.json", "2026-12-02T03:17:47+00:00", 60)
    assert (phone_row().ours, phone_row().label) == (60, f"{label}, phone.json of 2026-12-02")
    write("phone-scale.json", "2026-12-03T10:00:00+00:00", 150)
    row = phone_row()
    assert (row.ours, row.peer) == (150, None)
    assert row.label == f"{label}, phone-scale.json of 2026-12-03"


def test_sessions_per_core_is_the_most_on_time_and_the_most_with_room_to_spare() -> None:
    levels = [
        {"sessions": 100, "late": 0, "end_max_s": 2.02},
        {"sessions": 200, "late": 0, "end_max_s": 2.09},
        {"sessions": 300, "late": 0, "end_max_s": 2.17},
        {"sessions": 400, "late": 3, "end_max_s": 2.41},
    ]
    assert run.levels_sustained(levels, 2.0) == {"sustained": 300, "with_headroom": 200}
    unfinished = [{"sessions": 25, "late": 0, "end_max_s": None}]
    assert run.levels_sustained(unfinished, 2.0) == {"sustained": 25, "with_headroom": 0}
