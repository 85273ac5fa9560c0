"""The phone benchmark runs end to end for this package: tiny sizes, no Pipecat venv."""

from __future__ import annotations

import cProfile
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("websockets", reason="the phone bench needs the [phone] extra")

from bench import phone, phone_plan


@pytest.mark.realtime
def test_a_server_run_joins_every_cut_with_what_the_phones_played() -> None:
    run = phone.Run("ours", calls=2, turns=2, turn_s=2.0, delay_ms=40, processes=2)
    summary = phone.execute(run, sys.executable)
    assert summary["cuts"] == 4
    assert summary["calls_incomplete"] == 0
    assert summary["error"]["max_ms"] < 100
    assert summary["confirmed_above_played"] == 0
    assert summary["cpu_ms_per_call_s"] > 0
    assert summary["messages_per_call_s"] > 0
    results = {"position": {"ours": {"40": summary}}, "cadence": {"100": summary}, "scale": {}}
    text = phone.tables(results)
    assert "| ours | 40 ms | 4 |" in text
    assert "| 100 ms |" in text


def test_every_plan_cuts_each_turn_inside_it_and_is_the_same_for_a_seed() -> None:
    plans = [phone_plan.plan_for(seed, turns=6, turn_s=4.0) for seed in range(50)]
    assert all(0 < cut < 4.0 for plan in plans for cut in plan.cuts)
    assert any(phone_plan.SECOND_CUT_S in plan.cuts[1:] for plan in plans)
    assert phone_plan.plan_for(7, turns=6, turn_s=4.0) == plans[7]


def test_profile_groups_share_the_busy_time_and_leave_out_the_wait(tmp_path: Path) -> None:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(2000):
        json.loads('{"event": "media"}')
    profile.disable()
    path = str(tmp_path / "run.prof")
    profile.dump_stats(path)
    groups = phone.profile_groups(path)
    assert groups["JSON"] > 0
    assert sum(groups.values()) == pytest.approx(100, abs=1)


@pytest.mark.realtime
def test_scale_only_writes_ours_ramp_to_its_own_file_and_leaves_phone_json_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(phone, "RESULTS", tmp_path)
    assert phone.main(["--quick", "--scale-only"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["phone-scale-quick.json"]
    report = json.loads((tmp_path / "phone-scale-quick.json").read_text())
    assert {"date", "machine", "plan", "results"} <= report.keys()
    assert list(report["results"]) == ["scale"]
    scale = report["results"]["scale"]
    assert list(scale) == ["ours"]
    assert scale["ours"]["sustained"] == 5
    assert [level["run"]["calls"] for level in scale["ours"]["levels"]] == [5]
