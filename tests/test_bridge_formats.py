"""A realtime session's audio formats in the GA and beta shapes."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from agent_playout.bridges.formats import (
    AudioFormat,
    UnsupportedFormatError,
    decode_audio,
    encode_audio,
    output_format_of,
    session_update,
)
from agent_playout.core import mulaw


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ({"audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}}}, "pcm16"),
        ({"audio": {"output": {"format": {"type": "audio/pcm"}}}}, "pcm16"),
        ({"audio": {"output": {"format": {"type": "audio/pcmu"}}}}, "g711_ulaw"),
        ({"audio": {"output": {"format": "audio/pcmu"}}}, "g711_ulaw"),
        ({"output_audio_format": "pcm16"}, "pcm16"),
        ({"output_audio_format": "g711_ulaw"}, "g711_ulaw"),
        ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, None),
        ({"instructions": "hi"}, None),
    ],
)
def test_the_output_format_is_read_from_either_shape(
    session: dict[str, Any], expected: str | None
) -> None:
    found = output_format_of(session)
    assert (found.value if found else None) == expected


@pytest.mark.parametrize(
    ("session", "named"),
    [
        ({"output_audio_format": "g711_alaw"}, "session.output_audio_format"),
        ({"audio": {"output": {"format": {"type": "audio/pcma"}}}}, "format.type"),
        ({"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "format.rate"),
        ({"audio": {"output": {"format": 7}}}, "session.audio.output.format"),
    ],
)
def test_a_format_that_cannot_be_played_is_refused_by_its_field(
    session: dict[str, Any], named: str
) -> None:
    with pytest.raises(UnsupportedFormatError, match=named):
        output_format_of(session)


def test_pcm16_deltas_round_trip_little_endian() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    text = encode_audio(samples, AudioFormat.PCM16)
    assert base64.b64decode(text) == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"
    np.testing.assert_array_equal(decode_audio(text, AudioFormat.PCM16), samples)


def test_mulaw_deltas_decode_with_the_g711_table() -> None:
    codes = bytes(range(256))
    text = base64.b64encode(codes).decode()
    np.testing.assert_array_equal(decode_audio(text, AudioFormat.G711_ULAW), mulaw.decode(codes))
    assert base64.b64decode(encode_audio(mulaw.decode(codes), AudioFormat.G711_ULAW)) == (
        mulaw.encode(mulaw.decode(codes))
    )


@pytest.mark.parametrize(
    ("delta", "message"),
    [(None, "base64 text"), ("***", "not valid base64"), ("AA==", "even count")],
)
def test_a_bad_delta_says_what_is_wrong(delta: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_audio(delta, AudioFormat.PCM16)


def test_session_update_in_the_ga_shape() -> None:
    event = session_update(
        output_format=AudioFormat.PCM16,
        input_format=AudioFormat.G711_ULAW,
        instructions="Be brief.",
    )
    assert event == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "output": {"format": {"type": "audio/pcm", "rate": 24000}},
                "input": {"format": {"type": "audio/pcmu"}},
            },
            "instructions": "Be brief.",
        },
    }
    assert output_format_of(event["session"]) is AudioFormat.PCM16


def test_session_update_in_the_beta_shape() -> None:
    event = session_update(dialect="beta", output_format=AudioFormat.G711_ULAW)
    assert event == {"type": "session.update", "session": {"output_audio_format": "g711_ulaw"}}
    assert output_format_of(event["session"]) is AudioFormat.G711_ULAW


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="dialect"):
        session_update(dialect="v2")  # type: ignore[arg-type]


def test_a_session_that_keeps_the_response_on_speech_asks_for_it_in_either_shape() -> None:
    ga = session_update(interrupt_response=False, input_format=AudioFormat.G711_ULAW)
    assert ga["session"]["audio"]["input"] == {
        "format": {"type": "audio/pcmu"},
        "turn_detection": {"type": "server_vad", "interrupt_response": False},
    }
    beta = session_update(dialect="beta", interrupt_response=False)
    assert beta["session"]["turn_detection"] == {
        "type": "server_vad",
        "interrupt_response": False,
    }
    assert "input" not in session_update()["session"]["audio"]
