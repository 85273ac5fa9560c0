"""Shared helpers: signal frames, streams and a virtual-clock playout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import numpy as np
import pytest

from agent_playout import AudioFrame, VirtualClock

RATE = 24000


def ramp(samples: int, start: int = 0) -> np.ndarray:
    """Distinct non-zero int16 samples, so any played sample can be traced to its index."""
    values = (np.arange(start, start + samples) % 30000) + 1
    return values.astype(np.int16)


def frames_of(signal: np.ndarray, frame_samples: int, rate: int = RATE) -> list[AudioFrame]:
    return [
        AudioFrame(signal[i : i + frame_samples], rate, 1, signal[i : i + frame_samples].size)
        for i in range(0, signal.size, frame_samples)
    ]


async def stream(items: Iterable[Any], *, delay: float = 0.0) -> AsyncIterator[Any]:
    """An async stream of ``items``; ``delay`` real seconds between them when non-zero."""
    for item in items:
        if delay:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        yield item


async def failing_stream(items: Iterable[Any], error: Exception) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(0)
        yield item
    raise error


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()
