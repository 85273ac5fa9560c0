"""A realtime session's audio formats, in both dialects of the event shapes (pure, no I/O).

The GA API names a format by MIME type inside ``session.audio.output.format``
(``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}``); the beta API by a
word in ``session.output_audio_format`` (``"pcm16"``, ``"g711_ulaw"``). Azure OpenAI and
other compatible servers use one or the other. Deltas carry base64 audio in that format.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal

import numpy as np

from ..core import mulaw
from ..core.frames import Int16Array
from ..core.units import REALTIME_SAMPLE_RATE

Dialect = Literal["ga", "beta"]
"""Which event shapes a server speaks: the GA API's or the older beta one's."""


class AudioFormat(Enum):
    """A format this package can play: PCM16 at 24 kHz or G.711 mu-law at 8 kHz, mono."""

    PCM16 = "pcm16"
    G711_ULAW = "g711_ulaw"

    @property
    def sample_rate(self) -> int:
        return REALTIME_SAMPLE_RATE if self is AudioFormat.PCM16 else 8000

    @property
    def mime_type(self) -> str:
        """The GA API's name for it."""
        return "audio/pcm" if self is AudioFormat.PCM16 else "audio/pcmu"

    def ga_format(self) -> dict[str, Any]:
        """The GA ``format`` object."""
        if self is AudioFormat.PCM16:
            return {"type": self.mime_type, "rate": REALTIME_SAMPLE_RATE}
        return {"type": self.mime_type}


_BY_NAME: dict[str, AudioFormat] = {
    "pcm16": AudioFormat.PCM16,
    "audio/pcm": AudioFormat.PCM16,
    "g711_ulaw": AudioFormat.G711_ULAW,
    "audio/pcmu": AudioFormat.G711_ULAW,
}


class UnsupportedFormatError(ValueError):
    """The session's output is in a format this package does not decode (A-law, another rate)."""


def output_format_of(session: Mapping[str, Any]) -> AudioFormat | None:
    """The output format a ``session.created``/``session.updated`` session object names, or
    None when it names none (the format is then unchanged). Raises
    ``UnsupportedFormatError`` for one that cannot be played."""
    beta = session.get("output_audio_format")
    if beta is not None:
        return _named(beta, "session.output_audio_format")
    audio = session.get("audio")
    output = audio.get("output") if isinstance(audio, Mapping) else None
    form = output.get("format") if isinstance(output, Mapping) else None
    if form is None:
        return None
    if not isinstance(form, Mapping):
        return _named(form, "session.audio.output.format")
    found = _named(form.get("type"), "session.audio.output.format.type")
    rate = form.get("rate", found.sample_rate)
    if rate != found.sample_rate:
        raise UnsupportedFormatError(
            f"session.audio.output.format.rate is {rate!r}; {found.mime_type} plays at"
            f" {found.sample_rate} Hz only"
        )
    return found


def _named(name: object, field: str) -> AudioFormat:
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is None:
        raise UnsupportedFormatError(
            f"{field} is {name!r}; this package plays pcm16 (audio/pcm at 24 kHz) and"
            " g711_ulaw (audio/pcmu)"
        )
    return found


def decode_audio(delta: object, audio_format: AudioFormat) -> Int16Array:
    """The samples of one audio delta (base64 text); ``ValueError`` saying what is wrong."""
    if not isinstance(delta, str):
        raise ValueError(f"delta must be base64 text, got {type(delta).__name__}")
    try:
        data = base64.b64decode(delta, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"delta is not valid base64 ({error})") from None
    if audio_format is AudioFormat.G711_ULAW:
        return mulaw.decode(data)
    if len(data) % 2:
        raise ValueError(f"delta has {len(data)} bytes; PCM16 needs an even count")
    return np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)


def encode_audio(samples: Int16Array, audio_format: AudioFormat) -> str:
    """Base64 text of ``samples`` in ``audio_format``, as ``input_audio_buffer.append`` takes."""
    if audio_format is AudioFormat.G711_ULAW:
        data = mulaw.encode(samples)
    else:
        data = samples.astype("<i2", copy=False).tobytes()
    return base64.b64encode(data).decode("ascii")


def session_update(
    *,
    dialect: Dialect = "ga",
    output_format: AudioFormat = AudioFormat.PCM16,
    input_format: AudioFormat | None = None,
    instructions: str | None = None,
    interrupt_response: bool | None = None,
) -> dict[str, Any]:
    """A ``session.update`` asking for ``output_format`` (and ``input_format``, if given) in
    the ``dialect``'s shape, with the ``instructions`` if any; other settings stay the
    server's. ``interrupt_response=False`` asks for server VAD that does not cancel the
    response when the user starts speaking, which a false interruption needs to resume
    the whole answer (the bridge cancels it once the turn proves real)."""
    session: dict[str, Any]
    turns = (
        None
        if interrupt_response is None
        else {"type": "server_vad", "interrupt_response": interrupt_response}
    )
    if dialect == "ga":
        audio: dict[str, Any] = {"output": {"format": output_format.ga_format()}}
        if input_format is not None or turns is not None:
            audio["input"] = {}
        if input_format is not None:
            audio["input"]["format"] = input_format.ga_format()
        if turns is not None:
            audio["input"]["turn_detection"] = turns
        session = {"type": "realtime", "audio": audio}
    elif dialect == "beta":
        session = {"output_audio_format": output_format.value}
        if input_format is not None:
            session["input_audio_format"] = input_format.value
        if turns is not None:
            session["turn_detection"] = turns
    else:
        raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
    if instructions is not None:
        session["instructions"] = instructions
    return {"type": "session.update", "session": session}
