"""Thousands of items with random interrupts in one process: memory and tasks stay flat.

CI runs a reduced size; ``make soak`` runs 10 000 items (``SOAK_ITEMS``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tracemalloc
from collections.abc import AsyncIterator

import numpy as np

from agent_playout import AgentPlayout, AudioFrame, NullSink, TranscriptForwarder, VirtualClock

RATE = 24000
ITEMS = int(os.environ.get("SOAK_ITEMS", "600"))
WARM_UP = ITEMS // 10


async def frames(count: int, step: int, signal: np.ndarray) -> AsyncIterator[AudioFrame]:
    for _ in range(count):
        yield AudioFrame(signal, RATE, 1, step)


async def texts() -> AsyncIterator[str]:
    yield "A short answer, "
    yield "cut off or not."


async def soak(items: int) -> list[tuple[int, int, int]]:
    """Play ``items`` items; return (items done, traced bytes, task count) at checkpoints."""
    rng = random.Random(11)
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    signal = np.full(480, 1000, np.int16)
    checkpoints: list[tuple[int, int, int]] = []
    for number in range(items):
        handle = playout.play(
            item_id=f"item_{number}",
            content_index=0,
            transcription_fwd=TranscriptForwarder(),
            text_stream=texts(),
            audio_stream=frames(rng.randint(1, 25), 480, signal),
        )
        if rng.random() < 0.5:
            await clock.advance(rng.uniform(0, 0.4))
            handle.interrupt()
        await clock.run(handle.wait_for_playout())
        if number + 1 in (WARM_UP, items):
            await clock.settle()
            gc.collect()
            traced, _ = tracemalloc.get_traced_memory()
            checkpoints.append((number + 1, traced, len(asyncio.all_tasks())))
    await playout.aclose()
    return checkpoints


def test_memory_and_tasks_stay_flat_over_many_items() -> None:
    tracemalloc.start()
    try:
        checkpoints = asyncio.run(soak(ITEMS))
    finally:
        tracemalloc.stop()
    (_, memory_early, tasks_early), (done, memory_late, tasks_late) = checkpoints
    print(
        f"soak: {done} items, memory {memory_early} -> {memory_late} bytes, "
        f"tasks {tasks_early} -> {tasks_late}"
    )
    assert done == ITEMS
    assert tasks_late == tasks_early
    assert memory_late - memory_early < 64 * 1024
