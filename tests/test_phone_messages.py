"""The Media Streams protocol: Twilio-shaped inbound messages parsed and refused, outbound built."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agent_playout.sinks.twilio.messages import (
    MAX_PAYLOAD_BYTES,
    CallProtocol,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaStreamError,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
)

STREAM = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA5e1f4d8c7b2a4e9f8d3c2b1a0f9e8d7c"
ACCOUNT = "AC25e16e9a716a4a1786a7c47d8d2b4d57"
CHUNK = bytes(range(160))


def connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start(**media_format: Any) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": STREAM,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": {
                "encoding": "audio/x-mulaw",
                "sampleRate": 8000,
                "channels": 1,
                **media_format,
            },
            "customParameters": {"caller": "+15550100"},
        },
        "streamSid": STREAM,
    }


def media(payload: str | None = None, stream_sid: str = STREAM) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "5",
            "payload": base64.b64encode(CHUNK).decode() if payload is None else payload,
        },
        "streamSid": stream_sid,
    }


def mark(name: str = "ap0-800") -> dict[str, Any]:
    return {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM, "mark": {"name": name}}


def dtmf() -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": STREAM,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    }


def stop() -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": "6",
        "streamSid": STREAM,
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    }


def send(protocol: CallProtocol, message: dict[str, Any]) -> Any:
    return protocol.receive(json.dumps(message))


def streaming() -> CallProtocol:
    protocol = CallProtocol()
    send(protocol, connected())
    send(protocol, start())
    return protocol


def test_a_whole_call_parses_to_its_events() -> None:
    protocol = CallProtocol()

    assert send(protocol, connected()) == Connected(protocol="Call", version="1.0.0")
    assert protocol.stream_sid is None
    started = send(protocol, start())
    assert send(protocol, media()) == Media(track="inbound", chunk=1, timestamp_ms=5, payload=CHUNK)
    assert send(protocol, mark("ap2-1600")) == Mark(name="ap2-1600")
    assert send(protocol, dtmf()) == Dtmf(digit="1")
    assert send(protocol, stop()) == Stop(call_sid=CALL)

    assert isinstance(started, Start)
    assert (started.stream_sid, started.call_sid, started.account_sid) == (STREAM, CALL, ACCOUNT)
    assert (started.tracks, started.encoding, started.sample_rate, started.channels) == (
        ("inbound",),
        "audio/x-mulaw",
        8000,
        1,
    )
    assert dict(started.custom_parameters) == {"caller": "+15550100"}
    assert protocol.start == started
    assert protocol.stream_sid == STREAM
    assert protocol.stopped


def test_binary_frames_parse_like_text_frames() -> None:
    protocol = CallProtocol()

    protocol.receive(json.dumps(start()).encode())

    assert protocol.receive(json.dumps(media()).encode()) == Media("inbound", 1, 5, CHUNK)


def test_a_start_without_custom_parameters_has_none() -> None:
    message = start()
    del message["start"]["customParameters"]

    started = send(CallProtocol(), message)

    assert dict(started.custom_parameters) == {}


def test_custom_parameters_cannot_be_changed_through_the_event() -> None:
    started = send(CallProtocol(), start())

    with pytest.raises(TypeError):
        started.custom_parameters["caller"] = "someone else"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{not json", r"^message is not JSON: Expecting property name .* at character 1$"),
        (b'{"event": "\xff"}', r"^message is not UTF-8 text: bad byte at 11$"),
        ("[" * 100_000, r"^message is not JSON this parser takes: nested too deep$"),
        ('{"event": "media", "n": ' + "1" * 5000 + "}", r"^message is not JSON this parser"),
        ("[1, 2]", r"^message is a JSON array, not an object$"),
        ('"media"', r"^message is a JSON string, not an object$"),
        ("null", r"^message is a JSON null, not an object$"),
        ('{"streamSid": "MZ1"}', r"^message has no event$"),
        ('{"event": 7}', r"^message has event 7, not a string$"),
        ('{"event": "foo"}', r"^unknown event 'foo'$"),
    ],
)
def test_a_message_that_is_not_an_event_is_refused_with_one_line(
    message: str | bytes, error: str
) -> None:
    protocol = streaming()

    with pytest.raises(MediaStreamError, match=error) as raised:
        protocol.receive(message)

    assert "\n" not in str(raised.value)
    assert len(str(raised.value)) < 120


def test_the_call_survives_a_refused_message() -> None:
    protocol = streaming()
    for bad in ("{not json", '{"event": "foo"}', json.dumps(media(payload="!!!!"))):
        with pytest.raises(MediaStreamError):
            protocol.receive(bad)

    assert send(protocol, media()) == Media("inbound", 1, 5, CHUNK)
    assert protocol.stream_sid == STREAM


def test_a_hostile_event_name_is_cut_short_in_the_error() -> None:
    with pytest.raises(MediaStreamError, match=r"^unknown event 'xxx") as raised:
        CallProtocol().receive(json.dumps({"event": "x" * 100_000}))

    assert len(str(raised.value)) <= len("unknown event ") + 40


@pytest.mark.parametrize(
    ("event", "message"),
    [("media", media()), ("mark", mark()), ("dtmf", dtmf())],
)
def test_an_event_before_start_is_refused(event: str, message: dict[str, Any]) -> None:
    protocol = CallProtocol()
    send(protocol, connected())

    with pytest.raises(MediaStreamError, match=rf"^{event} event: before the start event$"):
        send(protocol, message)


def test_media_for_another_stream_is_refused_naming_both() -> None:
    protocol = streaming()

    with pytest.raises(
        MediaStreamError, match=rf"^media event: streamSid is 'MZother', not this call's '{STREAM}'"
    ):
        send(protocol, media(stream_sid="MZother"))


def test_a_mark_without_stream_sid_is_refused() -> None:
    protocol = streaming()
    message = mark()
    del message["streamSid"]

    with pytest.raises(MediaStreamError, match=r"^mark event: streamSid is missing$"):
        send(protocol, message)


def test_a_mark_without_its_mark_object_is_refused() -> None:
    message = mark()
    del message["mark"]

    with pytest.raises(MediaStreamError, match=r"^mark event: mark is missing$"):
        send(streaming(), message)


def test_a_second_start_is_refused_and_the_first_stands() -> None:
    protocol = streaming()
    second = start()
    second["start"]["streamSid"] = "MZsecond"

    with pytest.raises(
        MediaStreamError, match=rf"^start event: a second start \(stream '{STREAM}'\)$"
    ):
        send(protocol, second)

    assert protocol.stream_sid == STREAM


@pytest.mark.parametrize(
    ("media_format", "shown"),
    [
        ({"encoding": "audio/x-l16"}, "'audio/x-l16' 8000 Hz 1 channel"),
        ({"sampleRate": 16000}, "'audio/x-mulaw' 16000 Hz 1 channel"),
        ({"channels": 2}, "'audio/x-mulaw' 8000 Hz 2 channel"),
    ],
)
def test_a_start_in_another_audio_format_is_refused_naming_it(
    media_format: dict[str, Any], shown: str
) -> None:
    protocol = CallProtocol()

    with pytest.raises(MediaStreamError, match=rf"^start event: start.mediaFormat is {shown}"):
        send(protocol, start(**media_format))

    assert protocol.start is None
    with pytest.raises(MediaStreamError, match="before the start event"):
        send(protocol, media())


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda m: m["start"].pop("callSid"), r"^start event: start.callSid is missing$"),
        (
            lambda m: m["start"].update(tracks="inbound"),
            r"^start event: start.tracks is 'inbound', not a list of strings$",
        ),
        (
            lambda m: m["start"]["mediaFormat"].update(sampleRate="8k"),
            r"^start event: start.mediaFormat.sampleRate is '8k', not an integer$",
        ),
        (
            lambda m: m["start"]["mediaFormat"].update(channels=True),
            r"^start event: start.mediaFormat.channels is True, not an integer$",
        ),
        (
            lambda m: m["start"].update(customParameters={"n": 1}),
            r"^start event: start.customParameters is \{'n': 1\}, not an object of strings$",
        ),
        (lambda m: m.update(start=[]), r"^start event: start is \[\], not an object$"),
    ],
)
def test_an_ill_formed_start_names_the_field(edit: Any, error: str) -> None:
    message = start()
    edit(message)

    with pytest.raises(MediaStreamError, match=error):
        send(CallProtocol(), message)


@pytest.mark.parametrize(
    "payload",
    ["!!!!", "AAAA\n", "AAA", "AA==AA==", "AAAé"],
)
def test_a_payload_that_is_not_base64_is_refused(payload: str) -> None:
    with pytest.raises(MediaStreamError, match=r"^media event: media.payload is not base64$"):
        send(streaming(), media(payload=payload))


def test_a_payload_of_one_second_is_accepted() -> None:
    payload = bytes(MAX_PAYLOAD_BYTES)
    assert MAX_PAYLOAD_BYTES == 8000  # 1 s of 8 kHz mu-law

    event = send(streaming(), media(payload=base64.b64encode(payload).decode()))

    assert event.payload == payload


def test_a_payload_over_one_second_is_refused_naming_its_size() -> None:
    one_byte_over = base64.b64encode(bytes(MAX_PAYLOAD_BYTES + 1)).decode()

    with pytest.raises(
        MediaStreamError, match=r"^media event: media.payload is 8001 bytes, over 8000 \(1 s"
    ):
        send(streaming(), media(payload=one_byte_over))


def test_a_payload_too_long_to_decode_is_refused_before_decoding() -> None:
    oversized = "A" * 1_000_000

    with pytest.raises(
        MediaStreamError, match=r"^media event: media.payload is 1000000 base64 characters, over"
    ):
        send(streaming(), media(payload=oversized))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("chunk", "-1", r"media.chunk is '-1', not an integer"),
        ("timestamp", "9" * 5000, r"media.timestamp is '9999.*\.\.\., not an integer"),
        ("timestamp", 5, None),
        ("track", None, r"media.track is None, not a string"),
        ("payload", 160, r"media.payload is 160, not a string"),
    ],
)
def test_media_counters_are_decimal_strings_or_numbers(
    field: str, value: Any, error: str | None
) -> None:
    message = media()
    message["media"][field] = value

    if error is None:
        assert send(streaming(), message).timestamp_ms == value
    else:
        with pytest.raises(MediaStreamError, match=rf"^media event: {error}$"):
            send(streaming(), message)


def test_messages_after_stop_are_ignored() -> None:
    protocol = streaming()
    send(protocol, stop())

    assert send(protocol, media()) is None
    assert protocol.receive("{not json") is None
    assert send(protocol, start()) is None
    assert protocol.stopped


def test_a_stop_before_start_ends_the_stream() -> None:
    protocol = CallProtocol()
    message = stop()
    del message["streamSid"]

    assert send(protocol, message) == Stop(call_sid=CALL)
    assert protocol.stopped


def test_a_stop_for_another_stream_is_refused_and_the_call_goes_on() -> None:
    protocol = streaming()
    message = stop()
    message["streamSid"] = "MZother"

    with pytest.raises(MediaStreamError, match=r"^stop event: streamSid is 'MZother'"):
        send(protocol, message)

    assert not protocol.stopped


def test_an_outbound_media_message_has_twilios_shape() -> None:
    message = json.loads(media_message(STREAM, CHUNK))

    assert message == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(CHUNK).decode()},
    }


def test_an_outbound_media_message_of_no_audio_has_an_empty_payload() -> None:
    assert json.loads(media_message(STREAM, b""))["media"] == {"payload": ""}


def test_an_outbound_mark_message_has_twilios_shape() -> None:
    assert json.loads(mark_message(STREAM, "ap1-800")) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "ap1-800"},
    }


def test_an_outbound_clear_message_has_twilios_shape() -> None:
    assert json.loads(clear_message(STREAM)) == {"event": "clear", "streamSid": STREAM}


def test_outbound_strings_are_escaped_as_json() -> None:
    odd = 'MZ"quoted"\\ and \u00e9\n'

    assert json.loads(mark_message(odd, 'a "name"'))["mark"]["name"] == 'a "name"'
    assert json.loads(clear_message(odd))["streamSid"] == odd


def test_what_is_built_parses_back_through_the_protocol() -> None:
    protocol = streaming()
    echoed = json.loads(mark_message(STREAM, "ap0-800"))

    assert send(protocol, echoed) == Mark(name="ap0-800")


def test_a_start_with_an_overlong_sid_is_refused_naming_the_field() -> None:
    protocol = CallProtocol()
    message = start()
    message["start"]["callSid"] = "CA" + "x" * 100
    with pytest.raises(MediaStreamError, match=r"start\.callSid is 102 characters, over 64"):
        protocol.receive(json.dumps(message))
    assert protocol.start is None
