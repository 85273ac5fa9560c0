"""The errors callers can act on."""

from __future__ import annotations


class PlayoutError(Exception):
    """Base class of this package's errors."""


class PlayoutStateError(PlayoutError):
    """An operation is illegal in the item's or the playout's current state."""


class PlayoutClosedError(PlayoutStateError):
    """The playout was closed; create a new one."""


class OutputEndedError(PlayoutError):
    """The output went away mid-item (a phone call hung up): the item ends at its position."""


class PositionUnconfirmedError(PlayoutError):
    """The output could not confirm what the listener heard (a receiver that went silent, or
    a LiveKit clear that ran late)."""
