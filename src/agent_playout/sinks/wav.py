"""A WAV file as the listener: it receives exactly the audio that was played.

Position source: the reference sink's integer clock (``PacedSink``); the file's length in
samples equals the played count, fade-out included, so it is the ground truth for tests.
"""

from __future__ import annotations

import wave
from pathlib import Path
from types import TracebackType

from ..clock import Clock
from ..frames import Int16Array
from .paced import PacedSink


class WavSink(PacedSink):
    """Plays at real time on ``clock`` and writes what is played to a 16-bit WAV file."""

    def __init__(
        self,
        path: str | Path,
        sample_rate: int = 24000,
        num_channels: int = 1,
        *,
        queue_size_ms: int = 200,
        fade_ms: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._path = Path(path)
        self._file = wave.open(str(self._path), "wb")  # noqa: SIM115 - closed in close()
        self._file.setnchannels(num_channels)
        self._file.setsampwidth(2)
        self._file.setframerate(sample_rate)
        self._frames_written = 0
        super().__init__(
            sample_rate,
            num_channels,
            queue_size_ms=queue_size_ms,
            fade_ms=fade_ms,
            clock=clock,
            on_audio=self._write,
        )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def frames_written(self) -> int:
        """Samples per channel written to the file so far."""
        return self._frames_written

    def _write(self, samples: Int16Array) -> None:
        self._file.writeframes(samples.astype("<i2", copy=False).tobytes())
        self._frames_written += samples.size // self.num_channels

    def close(self) -> None:
        """Write out what has played so far and close the file; queued audio is dropped."""
        self._advance()
        self._file.close()

    def __enter__(self) -> WavSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
