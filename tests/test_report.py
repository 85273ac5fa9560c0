"""PlayoutReport from real items on the virtual clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    PlayoutHandle,
    TimedText,
    TranscriptForwarder,
    VirtualClock,
)
from agent_playout.core.truncation import DeleteItem, TruncateItem
from agent_playout.engine.report import PlayoutReport, ReportWord

IN_RATE = 22050
WORDS = (TimedText("One ", 0.0, 0.4), TimedText("two ", 0.5, 0.9), TimedText("three ", 1.0, 1.4),
         TimedText("four.", 1.5, 1.9))  # fmt: skip


async def frames(seconds: float) -> AsyncIterator[AudioFrame]:
    signal = np.full(round(seconds * IN_RATE), 1000, dtype=np.int16)
    for start in range(0, signal.size, 441):
        chunk = signal[start : start + 441]
        yield AudioFrame(chunk, IN_RATE, 1, chunk.size)


async def texts() -> AsyncIterator[TimedText]:
    for word in WORDS:
        yield word


def start_item(clock: VirtualClock) -> tuple[PlayoutHandle, TranscriptForwarder]:
    playout = AgentPlayout(audio_source=NullSink(24000, clock=clock), clock=clock)
    forwarder = TranscriptForwarder(record_words=True)
    handle = playout.play(
        item_id="item_7",
        content_index=1,
        transcription_fwd=forwarder,
        text_stream=texts(),
        audio_stream=frames(2.0),
    )
    return handle, forwarder


async def test_interrupted_item_reports_exact_counts_words_and_truncation(
    clock: VirtualClock,
) -> None:
    handle, forwarder = start_item(clock)
    await clock.advance(1.2)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())

    report = PlayoutReport.from_playout(handle, forwarder, timings=WORDS)

    assert report.item_id == "item_7"
    assert report.content_index == 1
    assert report.first_frame_latency == 0.0
    assert (report.played_samples, report.sample_rate) == (28800, 24000)
    assert (report.received_samples, report.input_sample_rate) == (44100, IN_RATE)
    assert report.audio_samples == 28800
    assert report.played_seconds == 1.2
    assert report.received_seconds == 2.0
    assert report.underruns == 0
    assert report.interrupted is True
    assert report.error is None
    assert report.heard_text == "One two three "
    assert report.words == (
        ReportWord("One", 0.0, True),
        ReportWord("two", 0.5, True),
        ReportWord("three", 1.0, True),
        ReportWord("four.", 1.5, False),
    )
    assert report.truncation == TruncateItem("item_7", 1, 1200)


async def test_completed_item_has_every_word_heard_and_no_truncation(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    await clock.run(handle.wait_for_playout())

    report = PlayoutReport.from_playout(handle, forwarder)

    assert report.interrupted is False
    assert report.played_samples == report.audio_samples == 48000
    assert report.heard_text == "One two three four."
    assert [word.heard for word in report.words] == [True] * 4
    assert [word.start for word in report.words] == [0.0, 0.5, 1.0, 1.5]
    assert report.truncation is None


async def test_unheard_words_have_no_start_without_timings(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    await clock.advance(0.7)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())

    report = PlayoutReport.from_playout(handle, forwarder)

    assert report.words[2:] == (ReportWord("three", None, False), ReportWord("four.", None, False))


async def test_item_interrupted_before_any_audio_is_deleted(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())

    report = PlayoutReport.from_playout(handle, forwarder)

    assert report.audio_samples == 0
    assert report.first_frame_latency is None
    assert report.truncation == DeleteItem("item_7")


async def test_to_dict_is_plain_json_with_the_realtime_event(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    await clock.advance(1.2)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    report = PlayoutReport.from_playout(handle, forwarder, timings=WORDS)

    data = report.to_dict()

    assert json.loads(report.to_json()) == data
    assert data["truncation"] == {
        "type": "conversation.item.truncate",
        "item_id": "item_7",
        "content_index": 1,
        "audio_end_ms": 1200,
    }
    assert data["words"][3] == {"text": "four.", "start": 1.5, "heard": False}
    assert set(data) >= {
        "item_id",
        "first_frame_latency",
        "played_samples",
        "sample_rate",
        "received_samples",
        "input_sample_rate",
        "audio_samples",
        "underruns",
        "interrupted",
        "error",
        "heard_text",
        "words",
        "truncation",
    }


async def test_a_running_item_cannot_be_reported(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    await clock.advance(0.5)
    with pytest.raises(ValueError, match="wait_for_playout"):
        PlayoutReport.from_playout(handle, forwarder)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())


async def test_timings_must_be_one_per_word(clock: VirtualClock) -> None:
    handle, forwarder = start_item(clock)
    await clock.run(handle.wait_for_playout())
    with pytest.raises(ValueError, match="one TimedText per word"):
        PlayoutReport.from_playout(handle, forwarder, timings=WORDS[:3])
