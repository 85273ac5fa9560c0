"""The aiortc track the WebRTC sink feeds: 20 ms 48 kHz s16 frames, paced by the sink."""

from __future__ import annotations

import fractions
from collections.abc import Awaitable, Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from ...core.frames import Int16Array
from .scheduler import RATE

TIME_BASE = fractions.Fraction(1, RATE)

_LAYOUTS = {1: "mono", 2: "stereo"}


class WebRtcTrack(MediaStreamTrack):
    """An audio ``MediaStreamTrack`` whose ``recv()`` gives the sink's next frame when it is due.

    It never waits for audio: with nothing queued the frame is silence, so the receiver's
    counters keep moving with the sent stream (its count reaches the end of each item, and
    its first packet is the track's first frame). ``pull`` waits until the next frame is due
    and returns its interleaved samples and pts; ``on_stop`` is told when the track ends
    (aiortc stops it when its sender stops).
    """

    kind = "audio"

    def __init__(
        self,
        pull: Callable[[], Awaitable[tuple[Int16Array, int]]],
        num_channels: int,
        on_stop: Callable[[], None],
    ) -> None:
        if num_channels not in _LAYOUTS:
            raise ValueError(f"num_channels must be 1 or 2 for WebRTC, got {num_channels}")
        super().__init__()
        self._pull = pull
        self._layout = _LAYOUTS[num_channels]
        self._on_stop = on_stop

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, at its time: real time, no send-ahead beyond this frame."""
        if self.readyState != "live":
            raise MediaStreamError
        samples, pts = await self._pull()
        if self.readyState != "live":
            raise MediaStreamError
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=self._layout)
        frame.sample_rate = RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        return frame

    def stop(self) -> None:
        ended = self.readyState == "ended"
        super().stop()
        if not ended:
            self._on_stop()
