"""Sessions run in several worker processes at once: the engine holds no global state."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("livekit.rtc", reason="the workers drive real rtc.AudioSource sinks")

from bench import run

pytestmark = pytest.mark.realtime


def test_rtc_sessions_in_three_processes_at_once_all_finish_in_real_time() -> None:
    params = {"sessions": 10, "seconds": 0.5, "timeout_s": 10.0}
    workers = run.start_workers(sys.executable, "ours", "cpu_rtc", params, 3)
    assert [worker["finished"] for worker in workers] == [10, 10, 10]
    assert all(worker["end_max_s"] < 1.5 for worker in workers)
