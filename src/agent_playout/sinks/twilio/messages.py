"""The Twilio Media Streams protocol without I/O: inbound messages parsed and checked, outbound
built.

Twilio's messages are JSON text frames. ``CallProtocol`` keeps one call's inbound state (before
``start``, streaming, stopped) so that a message out of place is refused with one clear line and the
call goes on. Echoed bad values are cut short so a hostile message cannot flood the log.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeGuard

MAX_PAYLOAD_BYTES: Final[int] = 8000
"""The largest inbound media payload accepted: 1 s of 8 kHz mu-law (Twilio sends 20 ms)."""

_MAX_PAYLOAD_BASE64: Final[int] = -(-MAX_PAYLOAD_BYTES // 3) * 4
_SHOWN: Final[int] = 40
_MAX_DIGITS: Final[int] = 18  # a counter's string form; longer would be a hostile int() cost


class MediaStreamError(ValueError):
    """An inbound message that breaks the protocol; the text names the event and the field."""


@dataclass(frozen=True, slots=True)
class Connected:
    """The first message of a stream: Twilio's protocol name and version."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    """The stream's metadata: its ids, the tracks sent, the audio format, the TwiML parameters."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Media:
    """One chunk of the caller's audio; ``payload`` is mu-law bytes (decoded from base64)."""

    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    """The phone has played all audio sent before the mark of this name (or a clear flushed it)."""

    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed."""

    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The stream ended: the caller hung up or the call was redirected."""

    call_sid: str


InboundEvent: TypeAlias = Connected | Start | Media | Mark | Dtmf | Stop


def _shown(value: object) -> str:
    """``repr(value)`` cut to about 40 characters, for an error line."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


_JSON_KINDS: Final[Mapping[type, str]] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _parsed(message: str | bytes) -> Any:
    """The JSON value of one message; the error says why it is not JSON without echoing it."""
    try:
        return json.loads(message)
    except json.JSONDecodeError as error:
        problem = f"is not JSON: {error.msg} at character {error.pos}"
    except UnicodeDecodeError as error:
        problem = f"is not UTF-8 text: bad byte at {error.start}"
    except RecursionError:
        problem = "is not JSON this parser takes: nested too deep"
    except ValueError as error:  # a number of more digits than int() converts
        problem = f"is not JSON this parser takes: {_shown(str(error))}"
    raise MediaStreamError(f"message {problem}")


class _Fields:
    """Typed reads from one JSON object, each failure naming the event and the dotted field."""

    __slots__ = ("_event", "_object", "_prefix")

    def __init__(self, event: str, value: Any, prefix: str = "") -> None:
        if not isinstance(value, dict):
            field = prefix.rstrip(".") or "message"
            raise MediaStreamError(f"{event} event: {field} is {_shown(value)}, not an object")
        self._event = event
        self._object: dict[str, Any] = value
        self._prefix = prefix

    def _fail(self, key: str, wanted: str) -> MediaStreamError:
        """The error for a field that is missing or is not ``wanted``."""
        if key not in self._object:
            problem = "is missing"
        else:
            problem = f"is {_shown(self._object[key])}, not {wanted}"
        return MediaStreamError(f"{self._event} event: {self._prefix}{key} {problem}")

    # The reads test the exact type first: they run for every media message (50 a second a call).
    def text(self, key: str) -> str:
        value = self._object.get(key)
        if type(value) is str:
            return value
        raise self._fail(key, "a string")

    def integer(self, key: str) -> int:
        """An integer, given as a JSON number or, as Twilio does for counters, a decimal string
        (of ASCII digits: ``str.isdigit`` alone takes "²", which ``int()`` refuses)."""
        value = self._object.get(key)
        if type(value) is str and len(value) <= _MAX_DIGITS and value.isascii() and value.isdigit():
            return int(value)
        if type(value) is int:
            return value
        raise self._fail(key, "an integer")

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._object.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def text_map(self, key: str) -> Mapping[str, str]:
        """A string-to-string object; absent means empty (Twilio omits it without parameters)."""
        value = self._object.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "an object of strings")
        return MappingProxyType(dict(value))

    def nested(self, key: str) -> _Fields:
        if key not in self._object:
            raise self._fail(key, "an object")
        return _Fields(self._event, self._object[key], f"{self._prefix}{key}.")


MAX_SID_CHARS = 64
"""The longest sid a start may carry (Twilio's are 34 characters): they go in every log line."""


def _is_counter(value: object) -> TypeGuard[str]:
    """A counter as Twilio sends it: a short string of ASCII digits."""
    return type(value) is str and len(value) <= _MAX_DIGITS and value.isascii() and value.isdigit()


class CallProtocol:
    """One call's inbound state: before ``start``, streaming, stopped."""

    def __init__(self) -> None:
        self.start: Start | None = None
        self.stopped = False
        self._handlers: dict[str, Callable[[_Fields], InboundEvent]] = {
            "connected": self._connected,
            "start": self._start,
            "media": self._media,
            "mark": self._mark,
            "dtmf": self._dtmf,
            "stop": self._stop,
        }

    @property
    def stream_sid(self) -> str | None:
        """The stream's id, once ``start`` has come."""
        return None if self.start is None else self.start.stream_sid

    def receive(self, message: str | bytes) -> InboundEvent | None:
        """Parse one WebSocket message: its event, or None once the stream has stopped.

        Raises MediaStreamError for anything out of protocol; the state is then unchanged, so the
        caller can log the error and go on with the call.
        """
        if self.stopped:
            return None
        parsed = _parsed(message)
        if type(parsed) is dict and parsed.get("event") == "media":
            media = self._well_formed_media(parsed)
            if media is not None:
                return media
        if not isinstance(parsed, dict):
            kind = _JSON_KINDS.get(type(parsed), "value")
            raise MediaStreamError(f"message is a JSON {kind}, not an object")
        event = parsed.get("event")
        if not isinstance(event, str):
            problem = "no event" if event is None else f"event {_shown(event)}, not a string"
            raise MediaStreamError(f"message has {problem}")
        handler = self._handlers.get(event)
        if handler is None:
            raise MediaStreamError(f"unknown event {_shown(event)}")
        return handler(_Fields(event, parsed))

    def _well_formed_media(self, parsed: dict[str, Any]) -> Media | None:
        """The media event Twilio sends 50 times a second, checked inline as ``_media`` checks
        it; None for anything else, which ``_media`` then refuses with the precise error."""
        start, media = self.start, parsed.get("media")
        if start is None or parsed.get("streamSid") != start.stream_sid or type(media) is not dict:
            return None
        track, chunk, timestamp = media.get("track"), media.get("chunk"), media.get("timestamp")
        encoded = media.get("payload")
        if not (
            type(track) is str
            and type(encoded) is str
            and len(encoded) <= _MAX_PAYLOAD_BASE64
            and _is_counter(chunk)
            and _is_counter(timestamp)
        ):
            return None
        try:
            payload = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(payload) > MAX_PAYLOAD_BYTES:
            return None
        return Media(track=track, chunk=int(chunk), timestamp_ms=int(timestamp), payload=payload)

    def _streaming(self, fields: _Fields, event: str) -> None:
        """Refuse an event before ``start`` or for another stream."""
        if self.start is None:
            raise MediaStreamError(f"{event} event: before the start event")
        stream_sid = fields.text("streamSid")
        if stream_sid != self.start.stream_sid:
            raise MediaStreamError(
                f"{event} event: streamSid is {_shown(stream_sid)}, "
                f"not this call's {_shown(self.start.stream_sid)}"
            )

    def _connected(self, fields: _Fields) -> Connected:
        return Connected(protocol=fields.text("protocol"), version=fields.text("version"))

    def _start(self, fields: _Fields) -> Start:
        if self.start is not None:
            raise MediaStreamError(
                f"start event: a second start (stream {_shown(self.start.stream_sid)})"
            )
        start = fields.nested("start")
        media_format = start.nested("mediaFormat")
        parsed = Start(
            stream_sid=start.text("streamSid"),
            call_sid=start.text("callSid"),
            account_sid=start.text("accountSid"),
            tracks=start.texts("tracks"),
            encoding=media_format.text("encoding"),
            sample_rate=media_format.integer("sampleRate"),
            channels=media_format.integer("channels"),
            custom_parameters=start.text_map("customParameters"),
        )
        for field, sid in (
            ("streamSid", parsed.stream_sid),
            ("callSid", parsed.call_sid),
            ("accountSid", parsed.account_sid),
        ):
            if len(sid) > MAX_SID_CHARS:
                raise MediaStreamError(
                    f"start event: start.{field} is {len(sid)} characters, over {MAX_SID_CHARS}"
                )
        if (parsed.encoding, parsed.sample_rate, parsed.channels) != ("audio/x-mulaw", 8000, 1):
            raise MediaStreamError(
                f"start event: start.mediaFormat is {_shown(parsed.encoding)} "
                f"{parsed.sample_rate} Hz {parsed.channels} channel(s), "
                "not 'audio/x-mulaw' 8000 Hz mono"
            )
        self.start = parsed
        return parsed

    def _media(self, fields: _Fields) -> Media:
        self._streaming(fields, "media")
        media = fields.nested("media")
        encoded = media.text("payload")
        if len(encoded) > _MAX_PAYLOAD_BASE64:
            raise MediaStreamError(
                f"media event: media.payload is {len(encoded)} base64 characters, "
                f"over {MAX_PAYLOAD_BYTES} bytes (1 s of audio)"
            )
        try:
            payload = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MediaStreamError("media event: media.payload is not base64") from None
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise MediaStreamError(
                f"media event: media.payload is {len(payload)} bytes, "
                f"over {MAX_PAYLOAD_BYTES} (1 s of audio)"
            )
        return Media(
            track=media.text("track"),
            chunk=media.integer("chunk"),
            timestamp_ms=media.integer("timestamp"),
            payload=payload,
        )

    def _mark(self, fields: _Fields) -> Mark:
        self._streaming(fields, "mark")
        return Mark(name=fields.nested("mark").text("name"))

    def _dtmf(self, fields: _Fields) -> Dtmf:
        self._streaming(fields, "dtmf")
        return Dtmf(digit=fields.nested("dtmf").text("digit"))

    def _stop(self, fields: _Fields) -> Stop:
        """The end of the stream; accepted before ``start`` too (a caller can hang up at once)."""
        if self.start is not None:
            self._streaming(fields, "stop")
        stop = Stop(call_sid=fields.nested("stop").text("callSid"))
        self.stopped = True
        return stop


@functools.lru_cache(maxsize=1024)
def _quoted_stream_sid(stream_sid: str) -> str:
    """A stream id as a JSON string, cached: it is in every outbound message of its call."""
    return json.dumps(stream_sid)


def media_message(stream_sid: str, payload: bytes) -> str:
    """An outbound ``media`` message carrying mu-law ``payload`` (base64 inside)."""
    encoded = binascii.b2a_base64(payload, newline=False).decode("ascii")
    return (
        f'{{"event":"media","streamSid":{_quoted_stream_sid(stream_sid)},'
        f'"media":{{"payload":"{encoded}"}}}}'
    )


def mark_message(stream_sid: str, name: str) -> str:
    """An outbound ``mark``: Twilio echoes it once the audio sent before it has played."""
    return (
        f'{{"event":"mark","streamSid":{_quoted_stream_sid(stream_sid)},'
        f'"mark":{{"name":{json.dumps(name)}}}}}'
    )


def clear_message(stream_sid: str) -> str:
    """An outbound ``clear``: Twilio drops its buffered audio and echoes every pending mark."""
    return f'{{"event":"clear","streamSid":{_quoted_stream_sid(stream_sid)}}}'
