"""G.711 mu-law tables: bit-exact with the standard library's ``audioop`` for every value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from agent_playout.core import mulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference G.711 (``audioop-lts`` provides it on Python 3.13+)

EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16)
EVERY_BYTE = bytes(range(256))


def test_encoding_every_int16_sample_matches_audioop() -> None:
    encoded = mulaw.encode(EVERY_INT16)

    assert encoded == audioop.lin2ulaw(EVERY_INT16.tobytes(), 2)


def test_decoding_every_mulaw_byte_matches_audioop() -> None:
    decoded = mulaw.decode(EVERY_BYTE)

    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.ulaw2lin(EVERY_BYTE, 2)


def test_a_decoded_byte_encodes_back_to_itself_except_negative_zero() -> None:
    # 0x7F is mu-law's "negative zero": it decodes to 0, which encodes as 0xFF.
    round_trip = mulaw.encode(mulaw.decode(EVERY_BYTE))

    assert [i for i in range(256) if round_trip[i] != i] == [0x7F]
    assert round_trip[0x7F] == mulaw.SILENCE


def test_encoding_then_decoding_keeps_order_sign_and_each_sample_within_half_a_step() -> None:
    restored = mulaw.decode(mulaw.encode(EVERY_INT16)).astype(np.int32)
    original = EVERY_INT16.astype(np.int32)
    loudest = 32124  # G.711's largest magnitude: louder samples clip to it
    unclipped = np.abs(original) <= loudest

    assert np.all(np.diff(restored) >= 0)
    assert np.all(np.sign(restored) * np.sign(original) >= 0)
    # The coarsest step is 1024 at 16-bit scale; G.711 first drops 2 bits (up to 3 more).
    assert np.max(np.abs(restored - original)[unclipped]) <= 1024 // 2 + 3
    assert set(np.abs(restored[~unclipped]).tolist()) == {loudest}


def test_silence_is_the_byte_of_zero() -> None:
    assert mulaw.encode(np.zeros(3, dtype=np.int16)) == bytes([mulaw.SILENCE]) * 3
    assert mulaw.decode(bytes([mulaw.SILENCE])).tolist() == [0]


def test_empty_input_gives_empty_output() -> None:
    assert mulaw.encode(np.zeros(0, dtype=np.int16)) == b""
    assert mulaw.decode(b"").shape == (0,)


def test_a_strided_view_is_encoded_by_value() -> None:
    samples = EVERY_INT16[::7]

    assert mulaw.encode(samples) == audioop.lin2ulaw(samples.tobytes(), 2)


def test_bytearray_and_memoryview_decode_like_bytes() -> None:
    payload = bytes(range(0, 256, 5))

    assert mulaw.decode(bytearray(payload)).tolist() == mulaw.decode(payload).tolist()
    assert mulaw.decode(memoryview(payload)).tolist() == mulaw.decode(payload).tolist()


def test_encoding_a_float_array_names_its_dtype() -> None:
    with pytest.raises(TypeError, match="float32"):
        mulaw.encode(np.zeros(4, dtype=np.float32))


def test_encoding_a_list_names_its_type() -> None:
    with pytest.raises(TypeError, match="list"):
        mulaw.encode([0, 1, 2])  # type: ignore[arg-type]


def test_encoding_two_channels_names_the_shape() -> None:
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        mulaw.encode(np.zeros((4, 2), dtype=np.int16))


def test_decoding_a_string_names_its_type() -> None:
    with pytest.raises(TypeError, match="str"):
        mulaw.decode("\xff")  # type: ignore[arg-type]
