"""Text with its time in the item's audio, as a provider's timestamps deliver it (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

TIMED_TEXT_MAX_SECONDS: Final = 86_400.0
"""Latest time a ``TimedText`` may give: a day into its item is no real position."""


@dataclass(frozen=True)
class TimedText:
    """Text with its time in the item's audio, in seconds from the item's first sample."""

    text: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"TimedText.text must be str, got {type(self.text).__name__}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"TimedText.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"TimedText.{name} must be finite, got {value!r}")
            if not 0 <= value <= TIMED_TEXT_MAX_SECONDS:
                raise ValueError(
                    f"TimedText.{name} must be seconds from the item's first sample, between 0"
                    f" and {TIMED_TEXT_MAX_SECONDS:g}, got {value!r} (text {self.text!r})"
                )
        if self.end < self.start:
            raise ValueError(
                f"TimedText.end must not be before start: {self.text!r} ends before it starts"
                f" ({self.end} < {self.start})"
            )
