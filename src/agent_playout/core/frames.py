"""Audio frames and the re-chunking byte stream, shaped like livekit.rtc's."""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

logger = logging.getLogger("agent_playout")

Int16Array = npt.NDArray[np.int16]
_BYTES_PER_SAMPLE = 2
_INT16 = np.dtype(np.int16)
"""numpy calls with a dtype object and positional arguments cost half as much (hot path)."""


@runtime_checkable
class AudioFrameLike(Protocol):
    """What the engine reads from a frame: ours, or a ``livekit.rtc.AudioFrame``."""

    @property
    def data(self) -> memoryview: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def num_channels(self) -> int: ...

    @property
    def samples_per_channel(self) -> int: ...


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


_BYTE_FORMATS = ("B", "b", "c")
"""memoryview formats whose items are bytes, so their raw bytes are the PCM as written."""


class AudioFrame:
    """Interleaved int16 PCM with its rate and layout; API-compatible with ``rtc.AudioFrame``."""

    __slots__ = ("_array", "_num_channels", "_sample_rate", "userdata")

    def __init__(
        self,
        data: bytes | bytearray | memoryview | Int16Array,
        sample_rate: int,
        num_channels: int,
        samples_per_channel: int,
        *,
        userdata: dict[str, Any] | None = None,
    ) -> None:
        _check_positive_int("sample_rate", sample_rate)
        _check_positive_int("num_channels", num_channels)
        if isinstance(samples_per_channel, bool) or not isinstance(samples_per_channel, int):
            raise ValueError(f"samples_per_channel must be an int, got {samples_per_channel!r}")
        if samples_per_channel < 0:
            raise ValueError(f"samples_per_channel must be >= 0, got {samples_per_channel}")
        array = as_int16(data)
        needed = num_channels * samples_per_channel
        if array.size < needed:
            raise ValueError(
                f"data holds {array.size} samples, fewer than num_channels * samples_per_channel"
                f" = {num_channels} * {samples_per_channel}"
            )
        self._array = array[:needed]
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self.userdata: dict[str, Any] = {} if userdata is None else userdata

    @classmethod
    def _trusted(cls, samples: Int16Array, sample_rate: int, num_channels: int) -> AudioFrame:
        """A frame over flat int16 ``samples`` the caller has already checked: the class's own
        initialisation without ``__init__``'s checks, whose call costs twice as much (hot path)."""
        self = cls.__new__(cls)
        self._array = samples
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self.userdata = {}
        return self

    @classmethod
    def from_array(cls, samples: Int16Array, sample_rate: int) -> AudioFrame:
        """Build a frame from an int16 array shaped (n,) for mono or (n, channels)."""
        if samples.dtype != np.int16:
            raise TypeError(f"samples must be int16, got dtype {samples.dtype}")
        if samples.ndim == 1:
            return cls(samples, sample_rate, 1, samples.shape[0])
        if samples.ndim == 2:
            frames, channels = samples.shape
            return cls(np.ascontiguousarray(samples).reshape(-1), sample_rate, channels, frames)
        raise ValueError(f"samples must be 1-D or 2-D, got shape {samples.shape}")

    @staticmethod
    def create(sample_rate: int, num_channels: int, samples_per_channel: int) -> AudioFrame:
        """A frame of silence."""
        zeros = np.zeros(num_channels * samples_per_channel, dtype=np.int16)
        return AudioFrame(zeros, sample_rate, num_channels, samples_per_channel)

    @property
    def data(self) -> memoryview:
        """The samples as an int16 memoryview, as ``rtc.AudioFrame.data`` gives them."""
        return pcm_view(self._array)

    @property
    def array(self) -> Int16Array:
        """The interleaved samples as a numpy int16 array (no copy)."""
        return self._array

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def samples_per_channel(self) -> int:
        return self._array.size // self._num_channels

    @property
    def duration(self) -> float:
        """Length in seconds, for display."""
        return self.samples_per_channel / self._sample_rate

    def __repr__(self) -> str:
        return (
            f"AudioFrame(sample_rate={self._sample_rate}, num_channels={self._num_channels},"
            f" samples_per_channel={self.samples_per_channel})"
        )


def pcm_view(samples: Int16Array) -> memoryview:
    """An int16 memoryview of ``samples`` without copying (``rtc.AudioFrame.data``'s form)."""
    return memoryview(np.ascontiguousarray(samples))  # type: ignore[arg-type]


def as_int16(data: object) -> Int16Array:
    """View PCM16 ``data`` (bytes-like or int16 array) as a flat int16 array without copying."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.int16:
            raise TypeError(f"audio data must be int16 PCM, got a numpy array of {data.dtype}")
        return data.reshape(-1)
    if isinstance(data, memoryview):
        if data.format != "h" and data.format not in _BYTE_FORMATS:
            raise TypeError(f"audio data must be int16 PCM, got a memoryview of {data.format!r}")
        return _bytes_to_int16(data.cast("B") if data.format != "B" else data)
    if isinstance(data, bytes | bytearray):
        return _bytes_to_int16(data)
    raise TypeError(
        "audio data must be bytes, bytearray, memoryview or an int16 array,"
        f" got {type(data).__name__}"
    )


def _bytes_to_int16(raw: bytes | bytearray | memoryview) -> Int16Array:
    if len(raw) % _BYTES_PER_SAMPLE:
        raise ValueError(f"PCM16 data must have an even byte length, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.int16)


_FRAME_FIELDS = ("data", "sample_rate", "num_channels", "samples_per_channel")
_FRAME_TYPES: set[type] = set()
"""Classes seen to define the frame surface (``rtc.AudioFrame``): a runtime Protocol check
costs ~50 µs a frame. Objects with the fields only on the instance are checked each time."""

_RTC_MODULE = "livekit.rtc.audio_frame"
_RTC_LAYOUT_CHECKED: set[type] = set()
_RTC_LAYOUT: set[type] = set()
"""``livekit.rtc.AudioFrame`` classes seen to keep their header and buffer in ``_data``,
``_sample_rate``, ``_num_channels`` and ``_samples_per_channel`` (1.1 and 1.2 do): the
per-frame path reads those, not four properties and two casts. Checked on a first frame."""

Pcm = Int16Array | memoryview
"""Flat, contiguous interleaved int16 samples: an array, or a memoryview of format "h"."""


def frame_pcm(frame: object) -> Pcm:
    """The interleaved int16 samples of any frame-like object, validated against its header.

    No copy and no numpy call for ``rtc.AudioFrame``s (their int16 memoryview is used as
    is): this runs for every frame the model sends.
    """
    if isinstance(frame, AudioFrame):
        return frame.array
    kind = type(frame)
    if kind not in _FRAME_TYPES:
        if not isinstance(frame, AudioFrameLike):
            raise TypeError(
                "audio_stream must yield AudioFrame or livekit.rtc.AudioFrame objects,"
                f" got {kind.__name__}"
            )
        if all(hasattr(kind, name) for name in _FRAME_FIELDS):
            _FRAME_TYPES.add(kind)
    frame = cast(AudioFrameLike, frame)
    rate, channels, count = frame.sample_rate, frame.num_channels, frame.samples_per_channel
    if type(rate) is not int or rate <= 0:
        _check_positive_int("the frame's sample_rate", rate)
    if type(channels) is not int or channels <= 0:
        _check_positive_int("the frame's num_channels", channels)
    if type(count) is not int or count <= 0:
        _check_count(count)
    data = frame.data
    pcm: Pcm
    if isinstance(data, memoryview) and data.format == "h" and data.ndim == 1 and data.contiguous:
        pcm = data
    else:
        pcm = as_int16(data)
    needed = channels * count
    if len(pcm) < needed:
        raise ValueError(
            f"frame holds {len(pcm)} samples, fewer than its header's {channels} * {count}"
        )
    if count == 0 and len(pcm):
        raise ValueError(
            f"the frame's samples_per_channel is 0 but its data holds {len(pcm)} samples"
        )
    if kind not in _RTC_LAYOUT_CHECKED and kind.__module__ == _RTC_MODULE:
        _check_rtc_layout(frame, (rate, channels, count), pcm)
    return pcm if len(pcm) == needed else pcm[:needed]


def _check_rtc_layout(frame: object, header: tuple[int, int, int], pcm: Pcm) -> None:
    """Trust ``frame``'s class's fields (``_RTC_LAYOUT``) if they hold what its properties say."""
    kind = type(frame)
    _RTC_LAYOUT_CHECKED.add(kind)
    fields: Any = frame
    try:
        stored = (fields._sample_rate, fields._num_channels, fields._samples_per_channel)
        raw = bytes(fields._data)
    except (AttributeError, TypeError):
        return
    if stored == header and raw[: len(pcm) * _BYTES_PER_SAMPLE] == bytes(pcm):
        _RTC_LAYOUT.add(kind)


def pcm_in_format(frame: object, sample_rate: int, num_channels: int) -> Pcm | None:
    """The samples of a well-formed, non-empty ``frame`` of exactly ``sample_rate`` Hz x
    ``num_channels``, or None when anything about it differs (then ``frame_pcm`` says what).

    The engine's per-frame path once an item's format is known: a frame of that format
    needs only its count and its data checked, so this reads each field once and calls no
    numpy (an ``rtc.AudioFrame``'s buffer is viewed as int16, from its fields once trusted).
    """
    if type(frame) is AudioFrame:
        if frame._sample_rate != sample_rate or frame._num_channels != num_channels:
            return None
        samples = frame._array
        return samples if samples.size else None
    if type(frame) in _RTC_LAYOUT:
        if _rtc_samples(frame, sample_rate, num_channels):
            return memoryview(frame._data).cast("h")  # type: ignore[attr-defined]
        return None
    try:
        rate, channels = frame.sample_rate, frame.num_channels  # type: ignore[attr-defined]
        if rate != sample_rate or channels != num_channels:
            return None
        count = frame.samples_per_channel  # type: ignore[attr-defined]
        data = frame.data  # type: ignore[attr-defined]
    except Exception:
        return None
    if (
        _plain_header(rate, channels, count)
        and type(data) is memoryview
        and data.format == "h"
        and data.ndim == 1
        and data.contiguous
        and len(data) == count * num_channels
    ):
        return data
    return None


def _rtc_samples(frame: Any, sample_rate: int, num_channels: int) -> int:
    """Samples per channel of ``frame``, an ``rtc.AudioFrame`` of a trusted layout, read
    from its fields, if it is of exactly ``sample_rate`` Hz x ``num_channels`` with plain int
    fields, samples, and data of just that length; else 0."""
    rate, channels = frame._sample_rate, frame._num_channels
    count = frame._samples_per_channel
    if (
        rate == sample_rate
        and channels == num_channels
        and type(rate) is int
        and type(channels) is int
        and type(count) is int
        and count > 0
        and channels > 0
        and len(frame._data) == count * num_channels * _BYTES_PER_SAMPLE
    ):
        return count
    return 0


def _plain_header(rate: object, channels: object, count: object) -> bool:
    """Whether a header is plain ints with samples and channels: what ``pcm_in_format``
    needs to trust a frame (anything else goes to ``frame_pcm``, which names the field)."""
    return (
        type(rate) is int
        and type(channels) is int
        and type(count) is int
        and count > 0
        and channels > 0
    )


def _check_count(count: object) -> None:
    """``samples_per_channel`` of a frame must be an int >= 0 (0 only for empty data)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"the frame's samples_per_channel must be an int >= 0, got {count!r}")


def frame_samples(frame: object) -> Int16Array:
    """The interleaved int16 samples of any frame-like object as an array (see ``frame_pcm``)."""
    return pcm_array(frame_pcm(frame))


def pcm_array(pcm: Pcm) -> Int16Array:
    """``pcm`` as an int16 array, without copying."""
    return pcm if isinstance(pcm, np.ndarray) else np.frombuffer(pcm, _INT16)


class SampleChunker:
    """Re-chunks interleaved int16 PCM into frames of exactly ``samples_per_channel``.

    Input (bytes-like or an int16 array) is copied once into a byte buffer, so a producer
    may reuse its own; each batch of whole frames is cut out of it with one more copy. A
    write may split a sample or a sample group: the remainder waits for the next one.
    """

    def __init__(self, sample_rate: int, num_channels: int, samples_per_channel: int) -> None:
        self._rate = sample_rate
        self._channels = num_channels
        self._size = samples_per_channel * num_channels
        self._frame_bytes = self._size * _BYTES_PER_SAMPLE
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back until a whole frame is available."""
        return len(self._pending)

    def push(self, pcm: bytes | bytearray | Pcm) -> list[AudioFrame]:
        """Add ``pcm``; return the whole frames now available."""
        pending = self._pending
        pending.extend(pcm)
        if len(pending) < self._frame_bytes:
            return []
        return self._cut(len(pending) - len(pending) % self._frame_bytes)

    def flush(self) -> list[AudioFrame]:
        """Return what is left as one shorter frame and empty the buffer.

        Only whole sample groups (one sample per channel) can form a frame; a trailing
        partial group is dropped with a warning, because no player could play it.
        """
        pending = self._pending
        usable = len(pending) - len(pending) % (self._channels * _BYTES_PER_SAMPLE)
        if usable != len(pending):
            logger.warning(
                "AudioByteStream.flush dropped %d trailing bytes that do not form a whole sample"
                " for %d channel(s)",
                len(pending) - usable,
                self._channels,
            )
        frames = self._cut(usable) if usable else []
        pending.clear()
        return frames

    def _cut(self, end: int) -> list[AudioFrame]:
        """Frames of the first ``end`` pending bytes; the last may be shorter."""
        block = np.frombuffer(self._pending[:end], _INT16)
        del self._pending[:end]
        size, rate, channels = self._size, self._rate, self._channels
        if block.size <= size:
            return [AudioFrame._trusted(block, rate, channels)]
        return [
            AudioFrame._trusted(block[start : start + size], rate, channels)
            for start in range(0, block.size, size)
        ]


class PcmQueue:
    """Interleaved int16 PCM waiting for the sink, taken out in frames of at most a chunk.

    ``put`` copies each piece once into bytes of its own (a producer may reuse its buffer).
    ``take`` views one joined block: once the block runs short, everything queued is joined
    into the next, so a read-ahead of any length costs one join, not one per frame taken.
    Immutable blocks are kept rather than one growing buffer: the frames taken view them,
    and a bytearray cut at the front and extended at the back reallocates on most writes.
    """

    __slots__ = ("_block", "_channels", "_group_bytes", "_head", "_pieces", "_rate", "samples")

    def __init__(self, sample_rate: int, num_channels: int) -> None:
        self._rate = sample_rate
        self._channels = num_channels
        self._group_bytes = num_channels * _BYTES_PER_SAMPLE
        self._block = b""
        """The joined bytes that frames are taken from."""
        self._head = 0
        """Bytes of the block already taken."""
        self._pieces: list[bytes] = []
        """Pieces put since the block was joined."""
        self.samples = 0
        """Samples per channel waiting."""

    def put(self, pcm: Pcm, samples: int) -> None:
        """Queue ``pcm``, which holds ``samples`` samples per channel."""
        self._pieces.append(bytes(pcm))
        self.samples += samples

    def put_frame(self, frame: object) -> int:
        """Queue ``frame`` if it is an ``rtc.AudioFrame`` (of a layout ``frame_pcm`` has
        trusted) in the queue's own format with samples; its samples per channel, else 0.

        The reader's per-frame path when no conversion is needed: ``pcm_in_format``'s checks
        and ``put`` in one call, copying the frame's bytes without viewing them as int16.
        A frame it does not take (0) goes the general way, which says what is wrong with it.
        """
        if type(frame) not in _RTC_LAYOUT:
            return 0
        count = _rtc_samples(frame, self._rate, self._channels)
        if count:
            self._pieces.append(bytes(frame._data))  # type: ignore[attr-defined]
            self.samples += count
        return count

    def take(self, samples: int) -> AudioFrame:
        """A frame of the first ``samples`` per channel waiting (fewer if fewer wait; at least
        one must). The frame is read-only: it views the queue's block."""
        count = min(samples, self.samples)
        size = count * self._group_bytes
        block, head = self._block, self._head
        if len(block) - head < size:
            pieces = self._pieces
            pieces.insert(0, block[head:])
            block = self._block = b"".join(pieces)
            pieces.clear()
            head = 0
        self._head = head + size
        self.samples -= count
        array = np.frombuffer(block, _INT16, count * self._channels, head)
        return AudioFrame._trusted(array, self._rate, self._channels)


class AudioByteStream(SampleChunker):
    """Re-chunks PCM16 bytes of any write size into frames of a fixed number of samples.

    ``SampleChunker`` with its arguments checked and only bytes-like input, shaped like
    LiveKit's: a write may split a sample or a multi-channel sample group; the remainder
    is carried to the next write, so nothing is lost or shifted.
    """

    def __init__(
        self, sample_rate: int, num_channels: int, samples_per_channel: int | None = None
    ) -> None:
        _check_positive_int("sample_rate", sample_rate)
        _check_positive_int("num_channels", num_channels)
        if samples_per_channel is None:
            samples_per_channel = sample_rate // 10
        _check_positive_int("samples_per_channel", samples_per_channel)
        super().__init__(sample_rate, num_channels, samples_per_channel)

    def write(self, data: bytes | bytearray | memoryview) -> list[AudioFrame]:
        """Append ``data`` and return every whole frame now available."""
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"write() takes bytes-like PCM16 data, got {type(data).__name__}")
        if isinstance(data, memoryview) and data.format != "h" and data.format not in _BYTE_FORMATS:
            raise TypeError(
                f"write() takes int16 PCM, got a memoryview of {data.format!r}"
                " (convert the samples to int16 first)"
            )
        pending = self._pending
        pending += data
        if len(pending) < self._frame_bytes:
            return []
        return self._cut(len(pending) - len(pending) % self._frame_bytes)


_BYTES_LIKE = (bytes, bytearray, memoryview)
