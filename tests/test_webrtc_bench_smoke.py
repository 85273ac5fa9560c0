"""The WebRTC loopback measurement runs (two cuts) and prints its figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.realtime
def test_the_loopback_bench_measures_exact_cuts_and_the_delay() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "bench.webrtc_loopback", "--interrupts", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "position error at 2 cuts: 2 exact, max |error| 0 samples" in result.stdout
    delay = re.search(r"sent to playout: median ([\d.]+) ms, max ([\d.]+) ms", result.stdout)
    assert delay, result.stdout
    assert 0 < float(delay[1]) <= float(delay[2])
