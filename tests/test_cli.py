from __future__ import annotations

import wave
from pathlib import Path

import pytest

from agent_playout.cli import main

pytestmark = pytest.mark.realtime


def test_demo_writes_exactly_the_reported_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo.wav"
    assert main(["demo", "--out", str(out), "--interrupt-at", "0.3"]) == 0
    printed = capsys.readouterr().out
    reported = [
        int(part.split("=")[1].split(" ")[0])
        for part in printed.split(", ")
        if part.startswith("audio_samples=")
    ]
    assert "item_1: completed, audio_samples=36000" in printed
    assert "item_2: interrupted" in printed
    with wave.open(str(out)) as wav:
        assert wav.getnframes() == sum(reported)
