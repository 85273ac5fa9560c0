"""Speakers: a PortAudio output stream through ``sounddevice`` (extra ``[device]``).

Position source: the stream's callback. PortAudio asks the callback for each block the
device will play; the sink fills it from its queue, then with silence (an underrun, a
pause, or idle time), and ``PlayedCounter`` notes where in the stream the audio went.
A sample counts as played once the stream has been handed ``latency`` more frames after
it, where ``latency`` is ``round(stream.latency * sample_rate)``: PortAudio's output
latency, the depth of the device's buffer ahead of the speaker. So ``samples_played`` is
the number of audio samples at least ``latency`` frames behind the stream's write head.
It moves only when the callback runs (never with wall time), the silence the callback
emits never counts, and its exactness rests on the latency the host API reports.

The callback runs on PortAudio's thread. The queue and every count are shared with the
event loop under one lock, so ``clear_queue`` runs wholly before or after a callback,
never during one: once it returns, ``samples_written`` is what the device will have
played when the faded tail has drained.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.frames import Int16Array
from ..core.units import NS_PER_SECOND, REALTIME_SAMPLE_RATE
from ..errors import PlayoutClosedError, PlayoutError
from .base import (
    NEVER,
    AudioCallback,
    ClosesOnExit,
    SinkSurface,
    Waiters,
    buffer_settings,
    faded,
    sink_samples,
)

logger = logging.getLogger("agent_playout")

_INSTALL_HINT = "pip install 'agent-playout[device]'"
_STREAM_STOPPED = "the audio output stream stopped by itself (device lost or failed)"


class NoOutputDeviceError(PlayoutError):
    """There is nothing to play to here: no ``sounddevice`` package, no PortAudio library,
    or no output device (no sound card or sound server). The message says which, and what
    to install; play to a file with ``WavSink`` instead."""


_PORTAUDIO_HINT = "Debian/Ubuntu: apt-get install libportaudio2"


def _sounddevice() -> Any:
    """Import ``sounddevice``, or raise ``NoOutputDeviceError`` saying what to install."""
    try:
        import sounddevice
    except ImportError as error:
        raise NoOutputDeviceError(
            f"DeviceSink needs the sounddevice package: {_INSTALL_HINT}"
        ) from error
    except OSError as error:  # sounddevice's import raises this when PortAudio is missing
        raise NoOutputDeviceError(
            f"DeviceSink needs the PortAudio library ({error}); {_PORTAUDIO_HINT}"
        ) from error
    return sounddevice


def output_device_available() -> bool:
    """True when ``sounddevice`` and PortAudio load and PortAudio has a default output."""
    try:
        sd = _sounddevice()
    except NoOutputDeviceError:
        return False
    try:
        info = sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError):
        return False
    return int(info["max_output_channels"]) > 0


@dataclass(frozen=True, slots=True)
class DeviceCounts:
    """The sink's counts read together, in samples per channel.

    ``frames`` is everything handed to the device, silence included; ``delivered`` the
    audio among it; ``played`` the part of that audio which has left the device's buffer;
    ``written`` where the next captured sample will play.
    """

    frames: int
    delivered: int
    played: int
    written: int


class PlayedCounter:
    """Pure accounting for an output stream: where its audio went, and how much is played.

    Each callback block is ``audio`` samples then silence. A sample is played once the
    stream has been handed ``latency`` more frames after it; silence never counts.
    """

    __slots__ = ("_blocks", "delivered", "frames", "latency", "played")

    def __init__(self, latency: int) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 samples, got {latency}")
        self.latency = latency
        self.frames = 0
        self.delivered = 0
        self.played = 0
        # (first frame, audio delivered before it, audio frames) of each block with audio
        # that may still straddle the played position.
        self._blocks: deque[tuple[int, int, int]] = deque()

    def add_block(self, frames: int, audio: int) -> None:
        """Count one block of ``frames``, the first ``audio`` of them audio."""
        if not 0 <= audio <= frames:
            raise ValueError(f"a block of {frames} frames cannot carry {audio} of audio")
        if audio:
            self._blocks.append((self.frames, self.delivered, audio))
            self.delivered += audio
        self.frames += frames
        position = self.frames - self.latency
        blocks = self._blocks
        while blocks and blocks[0][0] + blocks[0][2] <= position:
            blocks.popleft()
        if blocks:
            start, before, count = blocks[0]
            self.played = before + min(max(position - start, 0), count)
        else:
            self.played = self.delivered


class DeviceSink(SinkSurface, ClosesOnExit):
    """Plays to a sound card with the ``PacedSink`` surface, counting from the callback.

    ``capture_frame`` returns once the sink's own queue holds at most ``queue_size_ms``
    (the device's buffer comes on top of that). On ``clear_queue`` the first ``fade_ms`` of
    the queue is kept, faded out, and played. ``on_audio`` receives, on the event loop's
    thread, each stretch of audio as it is handed to the device, in order. ``device`` and
    ``latency`` go to ``sounddevice.OutputStream``; a lower latency shortens the time from
    an interrupt to silence (at most the device's latency plus the fade).

    Raises ``NoOutputDeviceError`` when there is nothing to play to: ``sounddevice`` or the
    PortAudio library is missing, or PortAudio has no output device.
    """

    def __init__(
        self,
        sample_rate: int = REALTIME_SAMPLE_RATE,
        num_channels: int = 1,
        *,
        queue_size_ms: int = 200,
        fade_ms: float = 5.0,
        device: int | str | None = None,
        latency: float | str = "high",
        on_audio: AudioCallback | None = None,
    ) -> None:
        self._queue_limit, self._fade_samples = buffer_settings(
            sample_rate, num_channels, queue_size_ms, fade_ms
        )
        sd = _sounddevice()
        super().__init__(sample_rate, num_channels)
        self._on_audio = on_audio
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Shared with the callback, under the lock.
        self._ring: deque[Int16Array] = deque()
        self._head = 0
        self._pieces: list[Int16Array] | None = [] if on_audio is not None else None
        self._expecting_more = False
        # The underrun meter's axis: frames of the blocks that ran short while audio was
        # expected, so a pause or the idle silence after the last audio never counts.
        self._short_frames = 0
        self._device_underflows = 0
        self._next_delivered = NEVER
        self._next_played = NEVER
        self._wake_pending = False
        self._stream_stopped = False
        # Loop thread only.
        self._written = 0
        self._closed = False
        self._failed = False
        self._capture_waiters = Waiters()
        self._playout_waiters = Waiters()
        try:
            self._stream = sd.OutputStream(
                samplerate=sample_rate,
                channels=num_channels,
                dtype="int16",
                device=device,
                latency=latency,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except sd.PortAudioError as error:
            if device is None and not output_device_available():
                raise NoOutputDeviceError(
                    f"no audio output device: PortAudio found none ({error}); play to a file"
                    " with agent_playout.sinks.wav.WavSink instead"
                ) from error
            wanted = f"{sample_rate} Hz x{num_channels}"
            raise PlayoutError(
                f"cannot open output device {device!r} at {wanted}: {error}"
            ) from error
        try:
            self._count = PlayedCounter(round(float(self._stream.latency) * sample_rate))
            self._stream.start()
        except BaseException:
            self._stream.close()
            raise

    @property
    def latency_samples(self) -> int:
        """The device's buffer ahead of the speaker, from PortAudio's output latency."""
        return self._count.latency

    @property
    def samples_played(self) -> int:
        return self._count.played

    @property
    def samples_written(self) -> int:
        return self._written

    @property
    def underrun_samples(self) -> int:
        """Silence the callback emitted because the queue was dry while audio was expected."""
        with self._lock:
            return self._underrun_meter.length(self._short_frames)

    def _underrun_totals(self) -> tuple[int, int]:
        """The underruns and their length as device time (not wall time)."""
        with self._lock:
            meter = self._underrun_meter
            samples = meter.length(self._short_frames)
            return meter.count(), samples * NS_PER_SECOND // self._rate

    @property
    def device_underflows(self) -> int:
        """Blocks PortAudio reported as late: the device ran out before the callback filled
        them, a glitch the count cannot see."""
        return self._device_underflows

    def counts(self) -> DeviceCounts:
        """All the counts, read together (the callback may run meanwhile)."""
        with self._lock:
            count = self._count
            return DeviceCounts(count.frames, count.delivered, count.played, self._written)

    async def capture_frame(self, frame: Any) -> None:
        """Queue ``frame`` and return once the sink's queue is back within its limit."""
        samples = sink_samples(frame, self._rate, self._channels)
        if self._closed:
            raise PlayoutClosedError("DeviceSink is closed; create a new one")
        self._raise_if_failed()
        count = samples.size // self._channels
        if count == 0:
            return
        # A copy: the device reads it later, on its own thread.
        chunk = samples.reshape(count, self._channels).copy()
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            self._ring.append(chunk)
            self._written += count
            self._expecting_more = True
            target = self._written - self._queue_limit
            if self._count.delivered >= target:
                return
            future = loop.create_future()
            self._capture_waiters.add(target, future)
            self._next_delivered = min(self._next_delivered, target)
        await future

    def clear_queue(self) -> None:
        """Drop what is queued, keeping a short faded tail that still plays and counts.

        Audio already in the device's buffer cannot be recalled: it plays and counts too.
        """
        with self._lock:
            keep = min(self._fade_samples, self._written - self._count.delivered)
            tail = self._faded_head(keep) if keep else None
            self._ring.clear()
            self._head = 0
            if tail is not None:
                self._ring.append(tail)
            self._written = self._count.delivered + keep
            self._expecting_more = False
            self._underrun_meter.refilled(self._short_frames)  # a clear ends a span, counted
            self._capture_waiters.end()
            self._playout_waiters.end()
            self._next_delivered = self._next_played = NEVER

    async def wait_for_playout(self) -> None:
        """Return once everything captured so far has been played (or cleared)."""
        if self._closed:
            return
        self._raise_if_failed()
        loop = asyncio.get_running_loop()
        with self._lock:
            self._expecting_more = False
            target = self._written
            done = self._count.played >= target
            if not done:
                self._loop = loop
                future = loop.create_future()
                self._playout_waiters.add(target, future)
                self._next_played = min(self._next_played, target)
        if done:
            self._flush_audio()
            return
        await future

    def pause(self) -> None:
        """Hand the device silence instead of the queue: nothing is dropped.

        What the device already holds still plays; then the position stays still.
        """
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Continue from the first sample not yet handed to the device."""
        with self._lock:
            self._paused = False

    def close(self) -> None:
        """Stop and release the stream; queued audio is dropped and waiters are released."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.abort()
        finally:
            self._stream.close()
            with self._lock:
                self._ring.clear()
                self._head = 0
                self._written = self._count.played
                self._capture_waiters.end()
                self._playout_waiters.end()
            self._flush_audio()

    def _raise_if_failed(self) -> None:
        if self._stream_stopped and not self._closed:
            self._fail()
        if self._failed:
            raise PlayoutError(_STREAM_STOPPED)

    def _faded_head(self, keep: int) -> Int16Array:
        """The next ``keep`` samples of the queue, faded out to zero. Called under the lock."""
        pieces: list[Int16Array] = []
        needed = keep
        start = self._head
        for chunk in self._ring:
            piece = chunk[start : start + needed]
            pieces.append(piece)
            needed -= piece.shape[0]
            start = 0
            if needed == 0:
                break
        return faded(np.concatenate(pieces))

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: fill ``outdata`` from the queue, then silence; count."""
        with self._lock:
            filled = 0 if self._paused else self._fill(outdata, frames)
            meter = self._underrun_meter
            if filled:
                meter.refilled(self._short_frames)
            if filled < frames:
                outdata[filled:] = 0
                if self._expecting_more and not self._paused:
                    meter.went_dry(self._short_frames + filled)
                    self._short_frames += frames
            if status.output_underflow:
                self._device_underflows += 1
            count = self._count
            count.add_block(frames, filled)
            if not self._wake_pending and (
                count.delivered >= self._next_delivered
                or count.played >= self._next_played
                or self._pieces
            ):
                self._wake_pending = self._schedule_wake()

    def _fill(self, outdata: Any, frames: int) -> int:
        """Copy up to ``frames`` from the queue into ``outdata``. Called under the lock."""
        ring = self._ring
        filled = 0
        while filled < frames and ring:
            chunk = ring[0]
            take = min(frames - filled, chunk.shape[0] - self._head)
            piece = chunk[self._head : self._head + take]
            outdata[filled : filled + take] = piece
            if self._pieces is not None:
                self._pieces.append(piece)
            filled += take
            self._head += take
            if self._head == chunk.shape[0]:
                ring.popleft()
                self._head = 0
        return filled

    def _schedule_wake(self) -> bool:
        """Ask the event loop to run ``_on_wake``; False when there is no loop to ask."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(self._on_wake)
        except RuntimeError:  # the loop was closed while the stream still ran
            return False
        return True

    def _on_finished(self) -> None:
        """PortAudio's thread: the stream stopped (on ``close``, or because the device failed)."""
        with self._lock:
            self._stream_stopped = True
            if not self._wake_pending:
                self._wake_pending = self._schedule_wake()

    def _on_wake(self) -> None:
        """The loop's thread: pass on delivered audio and release the waiters now due."""
        with self._lock:
            self._wake_pending = False
            self._next_delivered = self._capture_waiters.release(self._count.delivered)
            self._next_played = self._playout_waiters.release(self._count.played)
            stopped = self._stream_stopped
        if stopped and not self._closed:
            self._fail()
        self._flush_audio()

    def _flush_audio(self) -> None:
        """The loop's thread: pass the audio delivered so far to ``on_audio``, in order."""
        if self._on_audio is None:
            return
        with self._lock:
            pieces, self._pieces = self._pieces, []
        if pieces:
            audio = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            self._on_audio(audio.reshape(-1))

    def _fail(self) -> None:
        """The stream stopped by itself: nothing more will play, so fail whoever waits."""
        if self._failed:
            return
        self._failed = True
        logger.error("DeviceSink: %s", _STREAM_STOPPED)
        with self._lock:
            self._written = self._count.played
            self._ring.clear()
            self._head = 0
            self._capture_waiters.end(PlayoutError(_STREAM_STOPPED))
            self._playout_waiters.end(PlayoutError(_STREAM_STOPPED))
            self._next_delivered = self._next_played = NEVER
