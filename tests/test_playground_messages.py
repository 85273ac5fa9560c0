"""The playground's page messages and offers: what is taken, and each refusal naming its field."""

from __future__ import annotations

import json

import pytest

from agent_playout.playground.messages import (
    MAX_SDP_CHARS,
    MAX_TEXT_CHARS,
    Interrupt,
    MessageError,
    Offer,
    Speak,
    parse_offer,
    parse_page_message,
)

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def test_speak_and_interrupt_are_taken_with_the_text_stripped() -> None:
    assert parse_page_message('{"type": "speak", "text": "  Hello there. "}') == Speak(
        "Hello there."
    )
    assert parse_page_message(b'{"type": "interrupt"}') == Interrupt()


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('{"text": "hi"}', "'type' must be 'speak' or 'interrupt', got None"),
        ('{"type": "shout"}', "got 'shout'"),
        ('{"type": "speak"}', "'text' must be a string, got NoneType"),
        ('{"type": "speak", "text": 5}', "'text' must be a string, got int"),
        ('{"type": "speak", "text": "   "}', "'text' has nothing to say"),
        (json.dumps({"type": "speak", "text": "a" * (MAX_TEXT_CHARS + 1)}), "at most 2000"),
    ],
)
def test_a_bad_page_message_is_refused_naming_the_field(raw: str | bytes, named: str) -> None:
    with pytest.raises(MessageError, match=named):
        parse_page_message(raw)


def test_an_offer_is_taken_as_sdp() -> None:
    assert parse_offer(json.dumps({"type": "offer", "sdp": SDP})) == Offer(SDP)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("{", "the offer is not JSON"),
        ('"v=0"', "must be a JSON object, got str"),
        (json.dumps({"type": "answer", "sdp": SDP}), "'type' must be 'offer', got 'answer'"),
        (json.dumps({"type": "offer"}), "'sdp' must be a non-empty string"),
        (json.dumps({"type": "offer", "sdp": 7}), "'sdp' must be a non-empty string"),
        (json.dumps({"type": "offer", "sdp": "hello"}), "must start with 'v=0'"),
        (json.dumps({"type": "offer", "sdp": "v=0\r\ns=-\r\n"}), "no audio section"),
        (json.dumps({"type": "offer", "sdp": SDP + "a" * MAX_SDP_CHARS}), "at most 64000"),
    ],
)
def test_a_bad_offer_is_refused_naming_the_field(body: str, named: str) -> None:
    with pytest.raises(MessageError, match=named):
        parse_offer(body)
