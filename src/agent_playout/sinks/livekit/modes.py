"""The LiveKit scheduler's vocabulary: its modes and their transitions, and its actions.

Actions are small frozen dataclasses the shell dispatches on; the ones without fields are
made once, since they are returned on hot paths.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ...core.frames import Int16Array


class SchedulerError(RuntimeError):
    """An event the scheduler's mode cannot take: a bug in the shell, never the caller's."""


class Mode(enum.Enum):
    """What the source is doing, as far as the scheduler knows."""

    LEARNING = "learning"
    """Its queue and grid are being measured; audio waits."""
    IDLE = "idle"
    """Nothing to hand it now (nothing pending, a partial batch, or paused)."""
    ARMED = "armed"
    """The next capture is due at the timer (room for it, or the source running low)."""
    CAPTURING = "capturing"
    """A capture is submitted or in the source (maybe a stopped one, finishing)."""
    STOPPING = "stopping"
    """The native clear is due: at the timer, or once the waiting capture completes."""


MOVES: dict[Mode, frozenset[Mode]] = {
    Mode.LEARNING: frozenset({Mode.IDLE}),
    Mode.IDLE: frozenset({Mode.ARMED, Mode.CAPTURING, Mode.STOPPING}),
    Mode.ARMED: frozenset({Mode.IDLE, Mode.ARMED}),
    Mode.CAPTURING: frozenset({Mode.IDLE, Mode.CAPTURING, Mode.STOPPING}),
    Mode.STOPPING: frozenset({Mode.IDLE, Mode.CAPTURING}),
}
"""The transitions table: the modes each mode may move to. A capture or a stop starts only
from IDLE (an armed timer is cancelled first); ARMED → ARMED re-arms for a new time, and
CAPTURING → CAPTURING hands over the fade-out while a stopped capture is still finishing."""


class Input(enum.Enum):
    """What the producer said of the audio to come."""

    SILENT = "silent"
    """Nothing expected (before any audio, after a clear): running dry is no underrun."""
    STREAMING = "streaming"
    """More is expected: running dry is an underrun; a partial batch waits for more."""
    ENDING = "ending"
    """A flush: what is queued is all; a partial batch goes at once, padded to a frame."""


@dataclass(frozen=True, slots=True)
class Submit:
    """Start capture ``token``: ``count`` samples per channel of ``data`` (interleaved)."""

    token: int
    data: Int16Array
    count: int


@dataclass(frozen=True, slots=True)
class ClearNative:
    """Empty the source's native buffer now."""


@dataclass(frozen=True, slots=True)
class QueueTail:
    """The native buffer was just emptied: call ``queue_tail`` for what goes in next."""


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Call ``timer_fired`` at ``deadline_ns`` (replacing any timer armed before)."""

    deadline_ns: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """The armed timer is no longer wanted."""


@dataclass(frozen=True, slots=True)
class Wake:
    """Something waiters wait for changed: room, a count, a failure."""


@dataclass(frozen=True, slots=True)
class Fail:
    """Raise ``error`` to the next caller."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class Warn:
    """Log ``message`` as a warning: something went wrong that the caller cannot act on."""

    message: str


Action = Submit | ClearNative | QueueTail | ArmTimer | CancelTimer | Wake | Fail | Warn
WAKE = Wake()
CLEAR = ClearNative()
QUEUE_TAIL = QueueTail()
CANCEL = CancelTimer()
"""The actions without fields, made once: they are returned on hot paths."""
