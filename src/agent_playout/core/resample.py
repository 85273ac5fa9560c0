"""Streaming rate and channel conversion of int16 audio with soxr, one converter per item."""

from __future__ import annotations

from typing import Any

import numpy as np

from .frames import Int16Array


def map_channels(samples: Int16Array, in_channels: int, out_channels: int) -> Int16Array:
    """Interleaved ``samples`` from ``in_channels`` to ``out_channels``: mix down or copy up."""
    if in_channels == out_channels:
        return samples
    frames = samples.reshape(-1, in_channels)
    if out_channels == 1:
        mixed: Int16Array = frames.mean(axis=1, dtype=np.float32).round().astype(np.int16)
        return mixed
    if in_channels == 1:
        return np.repeat(frames, out_channels, axis=1).reshape(-1)
    raise ValueError(f"cannot map {in_channels} channels to {out_channels}: only to or from mono")


class FormatConverter:
    """Converts one item's audio to the sink's rate and channel count, keeping filter state.

    soxr's streaming resampler is exact over a whole stream: n input samples become
    exactly ``n * out_rate / in_rate`` output samples once flushed, so a long item does
    not drift.
    """

    def __init__(self, in_rate: int, in_channels: int, out_rate: int, out_channels: int) -> None:
        if in_channels != out_channels and 1 not in (in_channels, out_channels):
            raise ValueError(
                f"cannot map {in_channels} channels to {out_channels}: only to or from mono"
            )
        self.in_rate = in_rate
        self.in_channels = in_channels
        self.out_rate = out_rate
        self.out_channels = out_channels
        self._stream_channels = min(in_channels, out_channels)
        self._resampler: Any = None
        if in_rate != out_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                in_rate, out_rate, self._stream_channels, dtype="int16", quality="HQ"
            )
        self.is_identity = self._resampler is None and in_channels == out_channels
        """True when audio passes through unchanged (checked for every frame)."""

    def process(self, samples: Int16Array, *, last: bool = False) -> Int16Array:
        """Convert the next interleaved chunk; ``last`` flushes the resampler's tail."""
        if self.is_identity:
            return samples
        reduced = map_channels(samples, self.in_channels, self._stream_channels)
        if self._resampler is not None:
            channels = self._stream_channels
            shaped = reduced if channels == 1 else reduced.reshape(-1, channels)
            converted = self._resampler.resample_chunk(shaped, last=last)
            reduced = np.ascontiguousarray(converted, dtype=np.int16).reshape(-1)
        return map_channels(reduced, self._stream_channels, self.out_channels)

    def flush(self) -> Int16Array:
        """The resampler's remaining output at the end of the item."""
        return self.process(np.zeros(0, dtype=np.int16), last=True)
