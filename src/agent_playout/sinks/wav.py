"""A WAV file as the listener: it receives exactly the audio that was played.

Position source: the reference sink's integer clock (``PacedSink``); the file's length in
samples equals the played count, fade-out included, so it is the ground truth for tests.
That holds however the ``with`` block is left: closing right after an interrupt writes the
fade-out the engine already counted, and closing while an item plays ends that item with
``PlayoutClosedError`` at the sample the file ends on.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from ..clock import Clock
from ..core.frames import Int16Array
from ..core.units import REALTIME_SAMPLE_RATE
from ..errors import PlayoutClosedError
from .base import ClosesOnExit
from .paced import PacedSink


class WavSink(PacedSink, ClosesOnExit):
    """Plays at real time on ``clock`` and writes what is played to a 16-bit WAV file.

    Reading a count (``samples_played``, ``underruns``...) never touches the file: played
    audio is buffered and written by the calls that change the sink (``capture_frame``,
    ``wait_for_playout``, ``clear_queue``, ``pause``, ``resume``, ``close``). After
    ``close`` the counts stay at what the file holds, and ``capture_frame`` and
    ``wait_for_playout`` raise ``PlayoutClosedError`` (those waiting are woken with it).
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int = REALTIME_SAMPLE_RATE,
        num_channels: int = 1,
        *,
        queue_size_ms: int = 200,
        fade_ms: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            sample_rate,
            num_channels,
            queue_size_ms=queue_size_ms,
            fade_ms=fade_ms,
            clock=clock,
            on_audio=self._buffer,
        )
        self._path = Path(path)
        self._pending: list[Int16Array] = []
        self._frames_written = 0
        self._owes_tail = False
        self._closed_counts: tuple[int, int, int] | None = None
        self._file = wave.open(str(self._path), "wb")  # noqa: SIM115 - closed in close()
        self._file.setnchannels(num_channels)
        self._file.setsampwidth(2)
        self._file.setframerate(sample_rate)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def closed(self) -> bool:
        """True once ``close`` ran: the file is complete and the counts are final."""
        return self._closed_counts is not None

    @property
    def frames_written(self) -> int:
        """Samples per channel the file holds, or will once the played audio is written."""
        if self._closed_counts is not None:
            return self._frames_written
        return self._frames_written + super().samples_played - self._emitted

    @property
    def samples_played(self) -> int:
        if self._closed_counts is not None:
            return self._closed_counts[0]
        return super().samples_played

    @property
    def samples_written(self) -> int:
        if self._closed_counts is not None:
            return self._closed_counts[0]
        return super().samples_written

    def _underrun_totals(self) -> tuple[int, int]:
        if self._closed_counts is not None:
            return self._closed_counts[1:]
        return super()._underrun_totals()

    async def capture_frame(self, frame: Any) -> None:
        self._check_open()
        self._owes_tail = False
        self._write_pending()
        await super().capture_frame(frame)
        self._check_open()
        self._write_pending()

    async def wait_for_playout(self) -> None:
        self._check_open()
        await super().wait_for_playout()
        self._check_open()
        self._write_pending()

    def clear_queue(self) -> None:
        if self.closed:
            return
        super().clear_queue()
        self._owes_tail = True  # the engine counts the faded tail as played from now on
        self._write_pending()

    def pause(self) -> None:
        if not self.closed:
            super().pause()
            self._write_pending()

    def resume(self) -> None:
        if not self.closed:
            super().resume()
            self._write_pending()

    def close(self) -> None:
        """Write what has played, and the faded tail of a cleared queue (already counted as
        played), then close the file. Other queued audio is dropped, and the captures and
        waits in progress fail with ``PlayoutClosedError``."""
        if self._closed_counts is not None:
            return
        try:
            self._advance()  # hand what has played to the file's buffer
            underruns, underrun_ns = self._underrun_totals()
            if self._owes_tail and self._chunks:
                # After a clear the queue holds only the faded tail not yet handed over,
                # which the engine already counted as played. Read, not taken: the base
                # class's queue stays consistent. (A count read here could run ahead of
                # what was handed over, so the tail is not sized from one.)
                self._buffer(np.concatenate(list(self._chunks)))
            self._closed_counts = (self._frames_written, underruns, underrun_ns)
            super().clear_queue()  # wakes whoever waits; they then raise PlayoutClosedError
        finally:
            if self._closed_counts is None:
                self._closed_counts = (self._frames_written, 0, 0)
            try:
                self._write_pending()
            finally:
                self._file.close()

    def _check_open(self) -> None:
        if self._closed_counts is not None:
            raise PlayoutClosedError(f"WavSink for {self._path} is closed; create a new one")

    def _buffer(self, samples: Int16Array) -> None:
        """``on_audio``: keep what just played for the next write (never after close)."""
        if self._closed_counts is None:
            self._pending.append(samples)
            self._frames_written += samples.size // self.num_channels

    def _write_pending(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            for samples in pending:
                self._file.writeframes(samples.astype("<i2", copy=False).tobytes())
