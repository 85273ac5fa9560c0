"""Sessions run in several worker processes at once: the engine holds no global state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("livekit.rtc", reason="the workers drive real rtc.AudioSource sinks")

pytestmark = pytest.mark.realtime

ROOT = Path(__file__).resolve().parents[1]


def test_rtc_sessions_in_three_processes_at_once_each_play_their_whole_item_exactly() -> None:
    sessions, seconds = 10, 0.5
    command = [sys.executable, "-m", "tests.rtc_sessions", str(sessions), str(seconds)]
    workers = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()[-3000:]
        results = json.loads(out.decode().strip().splitlines()[-1])
        assert len(results) == sessions
        for result in results:
            assert result == {
                "completed": True,
                "error": None,
                "reported": round(seconds * 24000),
                "released": round(seconds * 24000),
                "same_audio": True,
            }
