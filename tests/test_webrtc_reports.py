"""The receiver-report message: what ``parse_report`` takes, and the field it names when not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout.sinks.webrtc import (
    InboundStats,
    ReceiverReport,
    ReportError,
    WorkletStats,
    parse_report,
)
from agent_playout.sinks.webrtc.reports import (
    MAX_REPORT_CHARS,
    REPORT_NOW,
    is_report_request,
    report_text,
)

FULL: dict[str, Any] = {
    "type": "receiver-report",
    "seq": 17,
    "at_ms": 12345.6,
    "inbound": {
        "totalSamplesReceived": 96000,
        "concealedSamples": 960,
        "silentConcealedSamples": 0,
        "concealmentEvents": 1,
        "insertedSamplesForDeceleration": 12,
        "removedSamplesForAcceleration": 30,
        "jitterBufferDelay": 4.5,
        "jitterBufferEmittedCount": 95040,
        "jitterBufferTargetDelay": 3.0,
        "packetsReceived": 99,
        "packetsLost": 1,
        "audioLevel": 0.25,
        "totalAudioEnergy": 0.5,
    },
    "playout": {
        "totalSamplesCount": 88200,
        "totalSamplesDuration": 2.0,
        "synthesizedSamplesDuration": 0.01,
        "synthesizedSamplesEvents": 1,
        "totalPlayoutDelay": 0.2,
    },
    "worklet": {"frames": 96000, "sampleRate": 48000, "nonSilentFrames": 4800},
}


def with_field(section: str | None, name: str, value: object) -> str:
    message = json.loads(json.dumps(FULL))
    if section is None:
        message[name] = value
    else:
        message[section][name] = value
    return json.dumps(message)


def test_a_full_report_gives_every_field_by_its_w3c_meaning() -> None:
    report = parse_report(json.dumps(FULL))
    assert report.seq == 17
    assert report.at_ms == 12345.6
    assert report.inbound is not None
    assert report.inbound.jitter_buffer_emitted_count == 95040
    assert report.inbound.concealed_samples == 960
    assert report.inbound.packets_lost == 1
    assert report.inbound.inserted_samples_for_deceleration == 12
    assert report.inbound.removed_samples_for_acceleration == 30
    assert report.playout is not None
    assert report.playout.total_samples_count == 88200
    assert report.worklet == WorkletStats(frames=96000, sample_rate=48000, non_silent_frames=4800)


def test_absent_and_null_sections_and_fields_are_none() -> None:
    report = parse_report('{"type": "receiver-report", "seq": 0, "at_ms": 0, "inbound": null}')
    assert report == ReceiverReport(seq=0, at_ms=0.0)
    partial = parse_report(
        '{"type": "receiver-report", "seq": 1, "at_ms": 1,'
        ' "inbound": {"jitterBufferEmittedCount": 960, "concealedSamples": null}}'
    )
    assert partial.inbound == InboundStats(jitter_buffer_emitted_count=960)


def test_unknown_fields_are_ignored_as_browsers_add_them() -> None:
    report = parse_report(with_field("inbound", "fecPacketsReceived", 3))
    assert report.inbound is not None
    assert report.inbound.packets_received == 99


def test_integral_floats_count_as_integers() -> None:
    report = parse_report(with_field("inbound", "jitterBufferEmittedCount", 960.0))
    assert report.inbound is not None
    assert report.inbound.jitter_buffer_emitted_count == 960
    assert isinstance(report.inbound.jitter_buffer_emitted_count, int)


def test_packets_lost_may_be_negative_as_w3c_allows() -> None:
    report = parse_report(with_field("inbound", "packetsLost", -2))
    assert report.inbound is not None
    assert report.inbound.packets_lost == -2


def test_packets_discarded_is_read_and_is_a_counter() -> None:
    report = parse_report(with_field("inbound", "packetsDiscarded", 3))
    assert report.inbound is not None
    assert report.inbound.packets_discarded == 3
    with pytest.raises(ReportError, match=r"inbound\.packetsDiscarded is -1, a counter"):
        parse_report(with_field("inbound", "packetsDiscarded", -1))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"seq": 1, "at_ms": 0}', "type is None"),
        ('{"type": "hello", "seq": 1, "at_ms": 0}', "type is 'hello'"),
        ('{"type": "report-now"}', "type is 'report-now'"),
        ('{"type": "receiver-report", "at_ms": 0}', "seq is None"),
        ('{"type": "receiver-report", "seq": -1, "at_ms": 0}', "seq is -1"),
        ('{"type": "receiver-report", "seq": true, "at_ms": 0}', "seq is True"),
        ('{"type": "receiver-report", "seq": 1.5, "at_ms": 0}', "seq is 1.5"),
        ('{"type": "receiver-report", "seq": 1}', "at_ms is None, not a number"),
        ('{"type": "receiver-report", "seq": 1, "at_ms": "now"}', "at_ms is 'now'"),
        ('{"type": "receiver-report", "seq": 1, "at_ms": -5}', "at_ms is -5"),
        ('{"type": "receiver-report", "seq": 1, "at_ms": 0, "inbound": 3}', "inbound is 3"),
        ('{"type": "receiver-report", "seq": 1, "at_ms": 0, "worklet": []}', "worklet is []"),
    ],
)
def test_a_bad_message_is_refused_naming_what_is_wrong(text: str | bytes, names: str) -> None:
    with pytest.raises(ReportError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_report(text)


@pytest.mark.parametrize(
    ("section", "name", "value", "names"),
    [
        ("inbound", "jitterBufferEmittedCount", -960, "a counter cannot be negative"),
        ("inbound", "jitterBufferEmittedCount", "960", "not a number"),
        ("inbound", "jitterBufferEmittedCount", 960.5, "not an integer"),
        ("inbound", "jitterBufferEmittedCount", True, "not a number"),
        ("inbound", "concealedSamples", [1], "not a number"),
        ("inbound", "packetsLost", 1.5, "not an integer"),
        ("inbound", "jitterBufferDelay", -0.1, "cannot be negative"),
        ("inbound", "audioLevel", 1.5, "not in \\[0, 1\\]"),
        ("playout", "totalSamplesCount", -1, "a counter cannot be negative"),
        ("worklet", "sampleRate", 0, "not a positive rate"),
        ("worklet", "frames", {"n": 1}, "not a number"),
    ],
)
def test_a_bad_field_is_named_with_its_section(
    section: str, name: str, value: object, names: str
) -> None:
    with pytest.raises(ReportError, match=f"^{section}.{name} is .*{names}"):
        parse_report(with_field(section, name, value))


def test_non_finite_numbers_are_refused() -> None:
    text = json.dumps(FULL).replace('"jitterBufferDelay": 4.5', '"jitterBufferDelay": NaN')
    with pytest.raises(ReportError, match=r"inbound\.jitterBufferDelay is nan, not a finite"):
        parse_report(text)


def test_an_oversized_message_is_refused_before_it_is_parsed() -> None:
    text = json.dumps({**FULL, "pad": "x" * MAX_REPORT_CHARS})
    with pytest.raises(ReportError, match="more than"):
        parse_report(text)


def test_report_text_round_trips_and_the_request_is_recognised() -> None:
    text = report_text(3, 1.5, {"jitterBufferEmittedCount": 1920, "packetsLost": 0})
    report = parse_report(text)
    assert report.seq == 3
    assert report.inbound == InboundStats(jitter_buffer_emitted_count=1920, packets_lost=0)
    assert is_report_request(REPORT_NOW)
    assert not is_report_request(text)
    assert not is_report_request("garbage")
    assert not is_report_request("[]")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "seq", "at_ms", "inbound", "worklet", "frames", "x"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_is_either_a_report_or_a_report_error(value: object) -> None:
    try:
        text = json.dumps(value)
    except ValueError:
        return
    try:
        report = parse_report(text)
    except ReportError:
        return
    assert report.seq >= 0
    assert report.at_ms >= 0
