from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout import AudioByteStream, AudioFrame
from agent_playout.core import frames as frames_module
from agent_playout.core.frames import (
    PcmQueue,
    SampleChunker,
    as_int16,
    frame_pcm,
    frame_samples,
    pcm_in_format,
)


def test_frame_data_is_an_int16_memoryview_like_rtc() -> None:
    frame = AudioFrame(np.arange(6, dtype=np.int16).tobytes(), 24000, 2, 3)
    assert frame.data.format == "h"
    assert frame.data.tobytes() == np.arange(6, dtype=np.int16).tobytes()
    assert (frame.sample_rate, frame.num_channels, frame.samples_per_channel) == (24000, 2, 3)


def test_frame_rejects_short_data_naming_the_sizes() -> None:
    with pytest.raises(
        ValueError, match=r"fewer than num_channels \* samples_per_channel = 2 \* 4"
    ):
        AudioFrame(bytes(12), 24000, 2, 4)


def test_frame_rejects_float_arrays() -> None:
    with pytest.raises(TypeError, match="float32"):
        AudioFrame(np.zeros(4, dtype=np.float32), 24000, 1, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [0, -8000, 24000.0, True])
def test_frame_rejects_bad_sample_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AudioFrame(bytes(4), rate, 1, 2)  # type: ignore[arg-type]


def test_odd_byte_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="even byte length, got 5"):
        as_int16(bytes(5))


def test_from_array_takes_stereo_shape() -> None:
    stereo = np.arange(8, dtype=np.int16).reshape(4, 2)
    frame = AudioFrame.from_array(stereo, 48000)
    assert (frame.num_channels, frame.samples_per_channel) == (2, 4)
    assert frame.array.tolist() == list(range(8))


def test_frame_samples_reads_livekit_frames() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    data = np.arange(480, dtype=np.int16)
    frame = rtc.AudioFrame(data.tobytes(), 24000, 1, 480)
    assert np.array_equal(frame_samples(frame), data)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"num_channels": 0}, "num_channels must be a positive int, got 0"),
        ({"samples_per_channel": 0}, "samples_per_channel is 0 but its data holds 480"),
        ({"samples_per_channel": -5}, "samples_per_channel must be an int >= 0, got -5"),
        ({"sample_rate": 24000.0}, "sample_rate must be a positive int, got 24000.0"),
        ({"sample_rate": True}, "sample_rate must be a positive int, got True"),
    ],
)
def test_a_livekit_frame_header_that_lies_is_named(header: dict[str, object], message: str) -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    fields: dict[str, object] = {
        "sample_rate": 24000,
        "num_channels": 1,
        "samples_per_channel": 480,
    }
    fields.update(header)
    frame = rtc.AudioFrame(np.arange(480, dtype=np.int16).tobytes(), **fields)
    with pytest.raises(ValueError, match=re.escape(message)):
        frame_samples(frame)


def test_an_empty_livekit_frame_is_read_as_empty() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    assert frame_samples(rtc.AudioFrame(b"", 24000, 1, 0)).size == 0


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_write_refuses_a_typed_buffer_that_is_not_int16(dtype: type) -> None:
    stream = AudioByteStream(24000, 1, 480)
    with pytest.raises(TypeError, match="int16 PCM, got a memoryview of"):
        stream.write(memoryview(np.zeros(480, dtype=dtype)))
    assert stream.pending_bytes == 0


def test_frame_samples_names_wrong_types() -> None:
    with pytest.raises(TypeError, match="got str"):
        frame_samples("not a frame")


@given(
    channels=st.integers(1, 2),
    per_frame=st.integers(1, 700),
    writes=st.lists(st.integers(0, 3000), max_size=25),
)
def test_bytestream_reassembles_any_write_sizes_exactly(
    channels: int, per_frame: int, writes: list[int]
) -> None:
    total = sum(writes)
    payload = (np.arange(total // 2 + 1, dtype=np.int16) * 7).tobytes()[:total]
    stream = AudioByteStream(24000, channels, per_frame)
    out: list[AudioFrame] = []
    offset = 0
    for size in writes:
        out += stream.write(payload[offset : offset + size])
        offset += size
    whole_frames = len(out)
    assert all(f.samples_per_channel == per_frame for f in out)
    out += stream.flush()
    assert stream.pending_bytes == 0
    group = 2 * channels
    usable = total - total % group
    joined = b"".join(f.data.tobytes() for f in out)
    assert joined == payload[:usable]
    assert whole_frames == usable // (per_frame * group)
    assert all(f.num_channels == channels for f in out)


def test_flush_keeps_whole_stereo_samples_and_warns_about_a_partial_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = AudioByteStream(24000, 2, 100)
    assert stream.write(bytes(range(10)) + b"\x01") == []
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        (tail,) = stream.flush()
    assert tail.samples_per_channel == 2
    assert tail.data.tobytes() == bytes(range(8))
    assert "dropped 3 trailing bytes" in caplog.text
    assert stream.flush() == []


def test_write_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="got list"):
        AudioByteStream(24000, 1, 10).write([1, 2])  # type: ignore[arg-type]


@given(
    channels=st.integers(1, 2),
    per_frame=st.integers(1, 500),
    sizes=st.lists(st.integers(0, 1500), max_size=20),
)
def test_sample_chunker_cuts_exact_frames_and_keeps_the_order(
    channels: int, per_frame: int, sizes: list[int]
) -> None:
    chunker = SampleChunker(24000, channels, per_frame)
    total = sum(sizes) * channels
    source = (np.arange(total) % 32000).astype(np.int16)
    out: list[AudioFrame] = []
    offset = 0
    for size in sizes:
        piece = source[offset : offset + size * channels].copy()
        out += chunker.push(piece)
        piece[:] = -1  # the producer may reuse its buffer: nothing kept may change
        offset += size * channels
    assert all(frame.samples_per_channel == per_frame for frame in out)
    out += chunker.flush()
    joined = np.concatenate([f.array for f in out]) if out else np.zeros(0, np.int16)
    assert np.array_equal(joined, source)


def test_frame_samples_trims_data_longer_than_the_header_and_reads_byte_views() -> None:
    from types import SimpleNamespace

    data = np.arange(6, dtype=np.int16)
    longer = SimpleNamespace(
        data=memoryview(data), sample_rate=24000, num_channels=1, samples_per_channel=4
    )
    assert frame_samples(longer).tolist() == [0, 1, 2, 3]
    raw = SimpleNamespace(
        data=memoryview(data.tobytes()), sample_rate=24000, num_channels=2, samples_per_channel=3
    )
    assert frame_samples(raw).tolist() == list(range(6))


def test_sample_chunker_flush_drops_a_partial_sample_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunker = SampleChunker(24000, 2, 10)
    assert chunker.push(np.arange(6, dtype=np.int16).tobytes()[:-2]) == []
    (frame,) = chunker.flush()
    assert frame.array.tolist() == [0, 1, 2, 3]
    assert "dropped 2 trailing bytes" in caplog.text


@pytest.mark.parametrize(
    ("rate", "channels", "per_channel", "dtype", "error"),
    [
        (True, 1, 4, np.int16, ValueError),
        (24000, 0, 4, np.int16, ValueError),
        (24000, 1, True, np.int16, ValueError),
        (24000, 1.0, 4, np.int16, ValueError),
        (24000, 1, 4, ">i2", TypeError),
    ],
)
def test_an_int16_array_of_exactly_the_frame_is_checked_like_any_data(
    rate: object, channels: object, per_channel: object, dtype: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        AudioFrame(np.zeros(4, dtype=dtype), rate, channels, per_channel)  # type: ignore[arg-type]


def test_frames_cut_by_the_chunker_carry_their_own_length_in_the_header() -> None:
    chunker = SampleChunker(16000, 2, 3)
    frames = chunker.push(np.arange(16, dtype=np.int16)) + chunker.flush()
    assert [(f.sample_rate, f.num_channels, f.samples_per_channel) for f in frames] == [
        (16000, 2, 3),
        (16000, 2, 3),
        (16000, 2, 2),
    ]
    assert [f.data.tobytes() for f in frames] == [
        np.arange(start, min(start + 6, 16), dtype=np.int16).tobytes() for start in (0, 6, 12)
    ]


def test_pcm_in_format_passes_frames_of_the_format_and_refers_the_rest_to_the_full_check() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    data = np.arange(480, dtype=np.int16)
    ours = AudioFrame(data, 24000, 2, 240)
    theirs = rtc.AudioFrame(data.tobytes(), 24000, 2, 240)
    assert np.array_equal(np.asarray(pcm_in_format(ours, 24000, 2)), data)
    assert np.array_equal(np.asarray(pcm_in_format(theirs, 24000, 2)), data)
    assert pcm_in_format(ours, 16000, 2) is None
    assert pcm_in_format(theirs, 24000, 1) is None
    assert pcm_in_format(AudioFrame(b"", 24000, 2, 0), 24000, 2) is None
    assert pcm_in_format(rtc.AudioFrame(b"", 24000, 2, 0), 24000, 2) is None


def test_pcm_in_format_reads_rtc_frames_through_their_fields_once_a_first_one_is_checked() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    data = np.arange(480, dtype=np.int16)
    frame_pcm(rtc.AudioFrame(data.tobytes(), 24000, 2, 240))
    assert rtc.AudioFrame in frames_module._RTC_LAYOUT
    for buffer in (data.tobytes(), bytearray(data.tobytes()), memoryview(data)):
        pcm = pcm_in_format(rtc.AudioFrame(buffer, 24000, 2, 240), 24000, 2)
        assert np.array_equal(np.asarray(pcm), data)
    no_channels = rtc.AudioFrame(b"", 0, 0, 5)
    assert pcm_in_format(no_channels, 0, 0) is None  # an item's first frame is asked so
    oversized = rtc.AudioFrame(data.tobytes() + bytes(4), 24000, 2, 240)
    assert pcm_in_format(oversized, 24000, 2) is None
    assert np.array_equal(np.asarray(frame_pcm(oversized)), data)


class _PosingAsRtc:
    """A frame whose private fields disagree with its properties, from rtc's module name."""

    def __init__(self) -> None:
        self._data, self._sample_rate, self._num_channels = bytes(8), 24000, 1
        self._samples_per_channel = 4

    data = property(lambda self: memoryview(bytes([1, 0] * 4)).cast("h"))
    sample_rate = property(lambda self: 24000)
    num_channels = property(lambda self: 1)
    samples_per_channel = property(lambda self: 4)


_PosingAsRtc.__module__ = "livekit.rtc.audio_frame"


def test_pcm_in_format_never_trusts_fields_that_disagree_with_the_frames_properties() -> None:
    frame = _PosingAsRtc()
    assert list(frame_pcm(frame)) == [1, 1, 1, 1]
    assert _PosingAsRtc not in frames_module._RTC_LAYOUT
    assert list(pcm_in_format(frame, 24000, 1) or []) == [1, 1, 1, 1]


class _Lying:
    """A frame-like object whose header or data disagree with what it claims."""

    def __init__(self, data: object, count: object, rate: object = 24000) -> None:
        self.data, self.samples_per_channel = data, count
        self.sample_rate, self.num_channels = rate, 1


@pytest.mark.parametrize(
    "frame",
    [
        _Lying(memoryview(bytes(8)).cast("h"), 5),
        _Lying(memoryview(bytes(8)), 8),
        _Lying(bytes(8), 4),
        _Lying(memoryview(bytes(8)).cast("h"), 4.0),
        _Lying(memoryview(bytes(8)).cast("h"), 4, rate=24000.0),
        _Lying(memoryview(bytes(16)).cast("h", (4, 2)), 8),
        object(),
    ],
)
def test_pcm_in_format_refers_any_frame_it_cannot_trust(frame: object) -> None:
    assert pcm_in_format(frame, 24000, 1) is None


def test_pcm_queue_puts_trusted_rtc_frames_of_its_format_as_a_copy_and_refers_the_rest() -> None:
    rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    data = np.arange(480, dtype=np.int16)
    frame_pcm(rtc.AudioFrame(data.tobytes(), 24000, 2, 240))
    queue = PcmQueue(24000, 2)
    reused = bytearray(data.tobytes())
    assert queue.put_frame(rtc.AudioFrame(reused, 24000, 2, 240)) == 240
    reused[:] = bytes(len(reused))
    assert queue.put_frame(rtc.AudioFrame(memoryview(data), 24000, 2, 240)) == 240
    refused = [
        rtc.AudioFrame(data.tobytes(), 16000, 2, 240),
        rtc.AudioFrame(data.tobytes(), 24000, 1, 480),
        rtc.AudioFrame(b"", 24000, 2, 0),
        rtc.AudioFrame(data.tobytes() + bytes(4), 24000, 2, 240),
        AudioFrame(data, 24000, 2, 240),
        _PosingAsRtc(),
    ]
    float_rate = rtc.AudioFrame(data.tobytes(), 24000, 2, 240)
    float_rate._sample_rate = 24000.0  # type: ignore[assignment]
    refused.append(float_rate)
    assert [queue.put_frame(frame) for frame in refused] == [0] * len(refused)
    assert queue.samples == 480
    assert np.array_equal(queue.take(480).array, np.concatenate([data, data]))


def test_pcm_queue_hands_out_what_was_put_in_order_in_frames_of_at_most_the_asked_size() -> None:
    queue = PcmQueue(24000, 2)
    source = np.arange(2 * 700, dtype=np.int16)
    reused = bytearray(source[:600].tobytes())
    queue.put(memoryview(reused).cast("h"), 300)
    reused[:] = bytes(len(reused))
    queue.put(source[600:], 400)
    assert queue.samples == 700
    frames = [queue.take(250) for _ in range(3)]
    assert [frame.samples_per_channel for frame in frames] == [250, 250, 200]
    assert queue.samples == 0
    assert all((frame.sample_rate, frame.num_channels) == (24000, 2) for frame in frames)
    assert np.array_equal(np.concatenate([frame.array for frame in frames]), source)


def test_pcm_queue_frames_taken_between_puts_keep_their_samples_and_the_stream_its_order() -> None:
    rng = np.random.default_rng(7)
    source = rng.integers(-32768, 32767, 24000, dtype=np.int16)
    queue = PcmQueue(24000, 1)
    taken: list[tuple[int, np.ndarray, np.ndarray]] = []
    put = offset = 0
    while offset < source.size:
        if put < source.size and (queue.samples < 1200 or rng.random() < 0.5):
            size = int(rng.integers(1, 700))
            queue.put(source[put : put + size], min(size, source.size - put))
            put += size
            continue
        frame = queue.take(int(rng.integers(1, 1500)))
        count = frame.samples_per_channel
        taken.append((offset, frame.array, frame.array.copy()))
        offset += count
    assert queue.samples == 0
    for start, view, copied in taken:
        assert np.array_equal(view, copied)
        assert np.array_equal(copied, source[start : start + copied.size])
