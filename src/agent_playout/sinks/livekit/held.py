"""The audio a LiveKit sink still holds: what it has not handed to the source yet, and a copy
of what the source has not released (its native buffer can only be emptied whole).

Pure: numpy only. The scheduler takes captures from it, and on a stop rebuilds the next
audio (the faded tail, then what a pause keeps) from it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ...core.frames import Int16Array
from ..base import faded, take_samples


class HeldAudio:
    """Pending audio (not handed to the source) and the history of what was handed to it."""

    __slots__ = ("_channels", "_history", "_pending", "_tick", "pending_count")

    def __init__(self, channels: int, tick_samples: int) -> None:
        self._channels = channels
        self._tick = tick_samples
        self._pending: deque[Int16Array] = deque()
        self.pending_count = 0
        """Samples per channel not handed to the source yet."""
        self._history: deque[tuple[int, Int16Array]] = deque()

    def append(self, samples: Int16Array, count: int) -> None:
        """Queue ``count`` samples per channel (interleaved ``samples``) after the rest."""
        self._pending.append(samples)
        self.pending_count += count

    def take(self, count: int) -> Int16Array:
        """Remove the next ``count`` pending samples per channel (silence past the end)."""
        taken = take_samples(self._pending, count * self._channels)
        self.pending_count = max(self.pending_count - count, 0)
        missing = count * self._channels - taken.size
        if missing > 0:
            return np.concatenate([taken, np.zeros(missing, dtype=np.int16)])
        return taken

    def handed(self, start: int, data: Int16Array, released: int) -> None:
        """``data`` goes to the source from native index ``start``; forget what was released."""
        history = self._history
        history.append((start, data))
        channels = self._channels
        while history and history[0][0] + history[0][1].size // channels <= released:
            history.popleft()

    def replace_pending(self, *pieces: Int16Array) -> None:
        """Make ``pieces`` (interleaved) the whole of the pending audio; the history is gone."""
        self._history.clear()
        self._pending.clear()
        self._pending.extend(piece for piece in pieces if piece.size)
        self.pending_count = sum(piece.size for piece in pieces) // self._channels

    def _from_index(self, index: int, *, with_pending: bool, limit: int | None) -> Int16Array:
        """What is not yet released from native index ``index`` on, history then pending;
        only the first ``limit`` samples per channel of it when that is all a stop needs."""
        channels = self._channels
        wanted = None if limit is None else limit * channels
        sources = [
            data[max(index - start, 0) * channels :]
            for start, data in self._history
            if start + data.size // channels > index
        ]
        if with_pending:
            sources.extend(self._pending)
        pieces = []
        gathered = 0
        for piece in sources:
            if wanted is not None and gathered >= wanted:
                break
            pieces.append(piece)
            gathered += piece.size
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        return audio if wanted is None else audio[:wanted]

    def restart_at(
        self, index: int, fade: int, *, playing: bool, hold: bool, native_only: bool
    ) -> int:
        """A stop at native index ``index``: the pending audio becomes the faded tail (if the
        source was ``playing``), then, with ``hold``, the rest; returns the tail's length.

        ``native_only`` takes the tail only from what the source holds, not from the audio
        not handed to it yet (which a pause holds back).
        """
        rest = self._from_index(index, with_pending=not native_only, limit=None if hold else fade)
        tail = self._faded_tail(rest, fade, whole_frames=hold) if playing else rest[:0]
        self.replace_pending(tail, rest[tail.size :] if hold else rest[:0])
        return tail.size // self._channels

    def _faded_tail(self, rest: Int16Array, fade: int, *, whole_frames: bool) -> Int16Array:
        """The first ``fade`` samples of ``rest``, faded out, in whole 10 ms frames.

        A stop that holds the rest takes only whole frames of audio (padding would put
        silence inside the item); one that drops it pads the tail with silence instead.
        """
        channels = self._channels
        frame = self._tick * channels
        tail = rest[: fade * channels]
        if whole_frames:
            tail = tail[: tail.size // frame * frame]
        if not tail.size:
            return tail
        tail = faded(tail.reshape(-1, channels)).reshape(-1)
        if tail.size % frame:
            tail = np.concatenate([tail, np.zeros(frame - tail.size % frame, dtype=np.int16)])
        return tail

    def fade_in_after(self, tail_count: int, fade: int) -> None:
        """Fade in the first ``fade`` samples after the first ``tail_count`` (a resume)."""
        held_count = self.pending_count - tail_count
        if not fade or held_count <= 0:
            return
        tail = self.take(tail_count) if tail_count else None
        held = self.take(held_count)
        lead = held[: fade * self._channels]
        held[: lead.size] = faded(lead.reshape(-1, self._channels), down=False).reshape(-1)
        self._pending.extend(piece for piece in (tail, held) if piece is not None)
        self.pending_count = tail_count + held_count
