"""G.711 mu-law (the phone's audio, a realtime model's ``g711_ulaw``): int16 <-> bytes.

Both tables are built once at import from the G.711 algorithm (as CPython's ``audioop`` implements
it), so encoding a chunk is one numpy gather and the result is bit-exact with
``audioop.lin2ulaw``/``ulaw2lin``, which are gone from the standard library on Python 3.13+.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from .frames import Int16Array

SILENCE: Final[int] = 0xFF
"""The mu-law byte of a zero sample (what a phone plays as silence)."""

_BIAS: Final[int] = 0x84
_CLIP: Final[int] = 8159
_SEGMENT_ENDS: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _encode_table() -> npt.NDArray[np.uint8]:
    """The mu-law byte of every int16 sample, indexed by the sample's bits read as uint16."""
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    value = samples >> 2  # G.711 works on 14-bit linear samples
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    quantised = (segment << 4) | ((magnitude >> (segment + 1)) & 0xF)
    code = np.where(segment >= len(_SEGMENT_ENDS), 0x7F, quantised)
    return (code ^ mask).astype(np.uint8)


def _decode_table() -> Int16Array:
    """The int16 sample of every mu-law byte."""
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((inverted & 0x0F) << 3) + _BIAS) << ((inverted & 0x70) >> 4)
    linear = np.where(inverted & 0x80, _BIAS - magnitude, magnitude - _BIAS)
    return linear.astype(np.int16)


_ENCODE: Final = _encode_table()
_DECODE: Final = _decode_table()


def encode(pcm: Int16Array) -> bytes:
    """Mono int16 samples to mu-law bytes, one byte a sample (== ``audioop.lin2ulaw(.., 2)``)."""
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
        kind = f"an array of {pcm.dtype}" if isinstance(pcm, np.ndarray) else type(pcm).__name__
        raise TypeError(f"mu-law encode needs an int16 numpy array, got {kind}")
    if pcm.ndim != 1:
        raise ValueError(f"mu-law encode needs mono samples (1-D), got shape {pcm.shape}")
    return _ENCODE.take(pcm.view(np.uint16)).tobytes()


def decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Mu-law bytes to int16 samples (== ``audioop.ulaw2lin(data, 2)``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"mu-law decode needs bytes, got {type(data).__name__}")
    decoded: Int16Array = _DECODE.take(np.frombuffer(data, dtype=np.uint8))
    return decoded
