"""Audio frames and the re-chunking byte stream, shaped like livekit.rtc's."""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

logger = logging.getLogger("agent_playout")

Int16Array = npt.NDArray[np.int16]
_BYTES_PER_SAMPLE = 2


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
        """A frame over flat int16 ``samples`` the caller has already checked (hot path)."""
        frame = cls.__new__(cls)
        frame._array = samples
        frame._sample_rate = sample_rate
        frame._num_channels = num_channels
        frame.userdata = {}
        return frame

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
        if data.format not in ("h", "B", "b", "c"):
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


def frame_samples(frame: object) -> Int16Array:
    """The interleaved int16 samples of any frame-like object, validated against its header."""
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
    array = as_int16(frame.data)
    needed = frame.num_channels * frame.samples_per_channel
    if array.size < needed:
        raise ValueError(
            f"frame holds {array.size} samples, fewer than its header's"
            f" {frame.num_channels} * {frame.samples_per_channel}"
        )
    return array[:needed]


class SampleChunker:
    """Re-chunks int16 arrays into frames of exactly ``samples_per_channel`` (the engine's
    internal twin of ``AudioByteStream``: no bytes round trip, one copy per frame)."""

    def __init__(self, sample_rate: int, num_channels: int, samples_per_channel: int) -> None:
        self._rate = sample_rate
        self._channels = num_channels
        self._size = samples_per_channel * num_channels
        self._pending: list[Int16Array] = []
        self._pending_size = 0

    def push(self, samples: Int16Array) -> list[AudioFrame]:
        """Add interleaved ``samples``; return the whole frames now available."""
        if samples.size == 0:
            return []
        self._pending.append(samples)
        self._pending_size += samples.size
        if self._pending_size < self._size:
            self._pending[-1] = samples.copy()
            return []
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else samples.copy()
        whole = joined.size // self._size * self._size
        rest = joined[whole:]
        self._pending = [rest] if rest.size else []
        self._pending_size = rest.size
        return [
            AudioFrame._trusted(joined[start : start + self._size], self._rate, self._channels)
            for start in range(0, whole, self._size)
        ]

    def flush(self) -> list[AudioFrame]:
        """The remainder as one shorter frame."""
        if not self._pending_size:
            return []
        tail = np.concatenate(self._pending)
        self._pending, self._pending_size = [], 0
        return [AudioFrame._trusted(tail, self._rate, self._channels)]


class AudioByteStream:
    """Re-chunks PCM16 bytes of any write size into frames of a fixed number of samples.

    A write may split a sample (an odd byte) or a multi-channel sample group; the remainder
    is carried to the next write, so nothing is lost or shifted.
    """

    def __init__(
        self, sample_rate: int, num_channels: int, samples_per_channel: int | None = None
    ) -> None:
        self._sample_rate = _check_positive_int("sample_rate", sample_rate)
        self._num_channels = _check_positive_int("num_channels", num_channels)
        if samples_per_channel is None:
            samples_per_channel = sample_rate // 10
        self._samples_per_channel = _check_positive_int("samples_per_channel", samples_per_channel)
        self._frame_bytes = samples_per_channel * num_channels * _BYTES_PER_SAMPLE
        self._buffer = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back until a whole frame is available."""
        return len(self._buffer)

    def write(self, data: bytes | bytearray | memoryview) -> list[AudioFrame]:
        """Append ``data`` and return every whole frame now available."""
        if isinstance(data, memoryview):
            data = data.cast("B") if data.format != "B" else data
        elif not isinstance(data, bytes | bytearray):
            raise TypeError(f"write() takes bytes-like PCM16 data, got {type(data).__name__}")
        self._buffer += data
        whole = len(self._buffer) // self._frame_bytes
        if whole == 0:
            return []
        cut = whole * self._frame_bytes
        with memoryview(self._buffer) as view:
            chunk = np.frombuffer(view[:cut].tobytes(), dtype=np.int16)
        del self._buffer[:cut]
        step = self._samples_per_channel * self._num_channels
        return [
            AudioFrame(
                chunk[i * step : (i + 1) * step],
                self._sample_rate,
                self._num_channels,
                self._samples_per_channel,
            )
            for i in range(whole)
        ]

    def flush(self) -> list[AudioFrame]:
        """Return what is left as one shorter frame and empty the buffer.

        Only whole sample groups (one sample per channel) can form a frame; a trailing
        partial group is dropped with a warning, because no player could play it.
        """
        group = self._num_channels * _BYTES_PER_SAMPLE
        usable = len(self._buffer) - len(self._buffer) % group
        if usable != len(self._buffer):
            logger.warning(
                "AudioByteStream.flush dropped %d trailing bytes that do not form a whole sample"
                " for %d channel(s)",
                len(self._buffer) - usable,
                self._num_channels,
            )
        tail = bytes(self._buffer[:usable])
        self._buffer.clear()
        if not tail:
            return []
        samples = np.frombuffer(tail, dtype=np.int16)
        return [
            AudioFrame(
                samples, self._sample_rate, self._num_channels, samples.size // self._num_channels
            )
        ]
