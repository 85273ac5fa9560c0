"""The benchmark harness runs its workloads for this package (tiny sizes, no peer venv)."""

from __future__ import annotations

import sys

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


def test_a_worker_subprocess_returns_json_and_the_table_renders_without_the_peer() -> None:
    plan = run.Plan(null_sessions=(3,), null_seconds=0.2, rtc_sessions=())
    result = run.run_worker(sys.executable, "ours", "cpu_null", {"sessions": 3, "seconds": 0.2})
    assert result["versions"]["livekit"]
    lines = run.rows({"cpu_null_3": {"ours": result}}, plan)
    text = run.table(lines)
    assert "null sink N=3: engine CPU ms/audio-s" in text
    assert all(line.met is None for line in lines if line.label.startswith("null sink"))
