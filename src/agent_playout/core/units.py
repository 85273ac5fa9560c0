"""The units every layer shares: nanoseconds for time, and the realtime API's 24 kHz."""

from typing import Final

NS_PER_SECOND: Final = 1_000_000_000
"""Clocks count integer nanoseconds; seconds appear only for display and at the edges."""

REALTIME_SAMPLE_RATE: Final = 24000
"""The realtime model's audio rate: ``audio_samples`` and ``audio_end_ms`` are counted in it, as
LiveKit Agents 0.12 defines them."""


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up, for counts and times that must not fall short."""
    return -(-numerator // denominator)
