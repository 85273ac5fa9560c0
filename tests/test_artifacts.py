"""What a run leaves behind: the report document, the same shape for every command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("rich")

from rich.console import Console

import agent_playout
from agent_playout import AgentPlayout, NullSink, VirtualClock
from agent_playout.cli.artifacts import report_document, write_artifacts
from agent_playout.cli.model_stream import file_pieces, speak

from .conftest import ramp


async def test_the_report_holds_the_version_and_one_object_per_item(tmp_path: Path) -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock), clock=clock)
    spoken = [
        await clock.run(
            speak(playout, file_pieces(ramp(2400), "one two"), item_id=item, sample_rate=24000)
        )
        for item in ("item_1", "item_2")
    ]
    await playout.aclose()
    document = report_document(spoken)
    assert document["version"] == agent_playout.__version__
    assert [item["item_id"] for item in document["items"]] == ["item_1", "item_2"]
    path = tmp_path / "r.json"
    write_artifacts(spoken, report=path, plot=None, console=Console(file=io.StringIO()))
    assert json.loads(path.read_text()) == json.loads(json.dumps(document))
