"""The realtime bridge's bench runs its trials for real: two per output, judged by each
output's own ground truth, and its summary and table are computed from them."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

pytest.importorskip("websockets", reason="the realtime bench needs the [realtime] extra")
pytest.importorskip("livekit.rtc", reason="the realtime bench drives rtc; needs [livekit]")

from bench import realtime, realtime_outputs, realtime_phone
from bench.common import heard_through
from bench.realtime_outputs import UNCONFIRMED
from bench.realtime_trial import RATE, traceable


def _quiet(line: str) -> None:
    pass


def _check_measured(record: dict[str, Any]) -> None:
    """A trial heard part of its item, timed both latencies, and sent a truncate."""
    assert record["sent_type"] == "conversation.item.truncate"
    assert 0 < record["truth_samples"] < record["audio_s"] * record["truth_rate"]
    assert record["audio_end_ms"] > 0
    assert record["client_us"] > 0
    assert record["round_trip_ms"] * 1000 > record["client_us"]


@pytest.mark.realtime
async def test_wav_trials_truncate_at_exactly_what_the_file_holds() -> None:
    records = await realtime_outputs.wav_trials(2, random.Random(3), _quiet)
    assert len(records) == 2
    for record in records:
        _check_measured(record)
        assert record["truth_rate"] == RATE
        assert record["sample_error"] == 0
        assert record["error_ms"] == 0
    summary = realtime.summarize(records)
    assert summary["exact"] == 2
    assert summary["max_abs_sample_error"] == 0


@pytest.mark.realtime
async def test_livekit_trials_truncate_at_exactly_what_the_track_carried() -> None:
    records = await realtime_outputs.livekit_trials(3, random.Random(4), _quiet)
    assert len(records) == 3
    # a trial the sink itself left unconfirmed (its clear ran late on a loaded host) is
    # named apart; every other one is exact
    measured = [record for record in records if record.get("failed") != UNCONFIRMED]
    assert len(measured) >= 2
    for record in measured:
        _check_measured(record)
        assert record["sample_error"] == 0
        assert record["error_ms"] == 0
        assert record["livekit_012_error_ms"] == record["livekit_012_ms"] - record["truth_ms"]
    assert "livekit_012_error_ms" in realtime.summarize(records)


@pytest.mark.realtime
async def test_phone_trials_truncate_within_a_chunk_of_what_the_phone_played() -> None:
    records = await realtime_phone.phone_trials(2, random.Random(5), _quiet)
    assert len(records) == 2
    for record in records:
        _check_measured(record)
        assert record["truth_rate"] == record["bridge_rate"] == 8000
        assert abs(record["error_ms"]) <= 20


def test_summary_and_table_count_the_exact_trials_and_rank_the_latencies() -> None:
    trials = [
        {"error_ms": error, "client_us": us, "client_written_us": None, "round_trip_ms": ms}
        | {"cut_s": 0.5}
        for error, us, ms in ((0, 30.0, 1.0), (0, 10.0, 3.0), (-2, 20.0, 2.0))
    ]
    summary = realtime.summarize(trials)
    assert summary["exact"] == 2
    assert summary["max_abs_error_ms"] == 2
    assert summary["error_ms_histogram"] == {"-2": 1, "0": 2}
    assert summary["client_us"] == {"p50": 20.0, "p99": 30.0, "max": 30.0}
    assert summary["round_trip_ms"]["p50"] == 2.0
    text = realtime.table({"WAV": {"summary": summary}})
    assert summary["median_error_ms"] == 0
    assert "| WAV | 3 | 0 | 2/3 | 0 | 2 | 20 / 30 | 2.00 / 3.00 |" in text


def test_a_trial_whose_ground_truth_is_unreadable_is_counted_apart_never_as_exact() -> None:
    measured = {"error_ms": 0, "client_us": 5.0, "client_written_us": 6.0, "round_trip_ms": 1.0}
    summary = realtime.summarize([measured | {"cut_s": 0.4}, {"cut_s": 0.3, "failed": "gap"}])
    assert (summary["trials"], summary["unreadable"], summary["exact"]) == (1, 1, 1)
    nothing = realtime.summarize([{"cut_s": 0.3, "failed": "gap"}])
    assert "| LiveKit | 0 | 1 |" in realtime.table({"LiveKit": {"summary": nothing}})


def test_a_fade_of_the_script_is_never_mistaken_for_the_script_itself() -> None:
    audio = traceable(2 * RATE)
    fade = 240
    ramp = np.linspace(0.0, 1.0, fade + 1, dtype=np.float32)[::-1][1:]
    for cut in (0, 29_000, 29_999, 30_000, 30_001):
        faded = (audio[cut : cut + fade] * ramp).astype(np.int16)
        heard = np.concatenate([audio[:cut], faded])
        assert heard_through(heard[heard != 0], audio, fade) == (cut + fade, (heard != 0).sum())
