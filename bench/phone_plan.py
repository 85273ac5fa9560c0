"""What every phone benchmark server plays and when it cuts: one plan, for ours and Pipecat.

Stdlib and numpy only: the Pipecat venv imports it too. A call's plan comes from its seed
(sent by the fake phone as a custom parameter), so both servers cut the same calls at the
same moments and the phones can judge them alike.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .process import peak_rss_mb, rss_mb

RATE = 24000
"""The model's audio rate: what the servers are fed."""
PHONE_RATE = 8000
FRAME_SAMPLES = RATE // 50
"""The source yields 20 ms frames."""
LEAD_FRAMES = 10
"""The first 200 ms come at once, then a frame every 20 ms: a TTS streaming at real time."""
SECOND_CUT_S = 0.3
SECOND_CUT_CHANCE = 0.3


@dataclass(frozen=True)
class Plan:
    """A call: ``turns`` items of ``turn_s`` seconds each, the n-th cut ``cuts[n]`` s after play."""

    seed: int
    turn_s: float
    cuts: tuple[float, ...]


def plan_for(seed: int, *, turns: int, turn_s: float, min_cut_s: float = 0.4) -> Plan:
    """Every turn is cut at a random time from ``min_cut_s`` on; after a cut, sometimes the
    next turn 0.3 s in."""
    rng = random.Random(seed)
    cuts: list[float] = []
    for index in range(turns):
        if index and rng.random() < SECOND_CUT_CHANCE:
            cuts.append(SECOND_CUT_S)
        else:
            cuts.append(round(rng.uniform(min_cut_s, turn_s - 0.4), 3))
    return Plan(seed, turn_s, tuple(cuts))


def speech_like(seconds: float) -> np.ndarray:
    """A voiced, syllable-shaped int16 signal at 24 kHz (never a long run of silence)."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    envelope = 0.35 + 0.65 * np.abs(np.sin(2 * np.pi * 2.0 * t))
    return (voice * envelope * 6000).astype(np.int16)


async def paced_chunks(signal: np.ndarray, started: float) -> AsyncIterator[np.ndarray]:
    """``signal`` in 20 ms chunks: the first ``LEAD_FRAMES`` at once, then one per 20 ms."""
    for index, start in enumerate(range(0, signal.size, FRAME_SAMPLES)):
        due = started + max(index - LEAD_FRAMES + 1, 0) * 0.02
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield signal[start : start + FRAME_SAMPLES]


class LagMonitor:
    """How late the event loop wakes (a 10 ms timer's overshoot), the busiest second's CPU,
    and the garbage collector's pauses, over the calls."""

    def __init__(self, period_s: float = 0.01) -> None:
        self._period = period_s
        self.lags_ms: list[float] = []
        self.cpu_peak = 0.0
        self.gc_pauses_ms: list[float] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif info.get("generation") == 2:
            self.gc_pauses_ms.append((time.perf_counter() - self._gc_started) * 1000)

    async def _run(self) -> None:
        window_cpu, window_wall = time.process_time(), time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(self._period)
            now = time.monotonic()
            self.lags_ms.append((now - before - self._period) * 1000)
            if now - window_wall >= 1.0:
                cpu = time.process_time()
                self.cpu_peak = max(self.cpu_peak, (cpu - window_cpu) / (now - window_wall))
                window_cpu, window_wall = cpu, now

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags_ms) or [0.0]
        return {
            "lag_p99_ms": round(lags[min(int(len(lags) * 0.99), len(lags) - 1)], 2),
            "lag_max_ms": round(lags[-1], 2),
            "cpu_peak_cores": round(self.cpu_peak, 2),
            "gc_full_collections": len(self.gc_pauses_ms),
            "gc_full_pause_max_ms": round(max(self.gc_pauses_ms, default=0.0), 1),
        }


class ServerTally:
    """What each benchmark server keeps, ours and Pipecat's alike: one record per call, and
    the process's CPU, wall time, memory and loop lag from its first call on."""

    def __init__(self, calls: int, turns: int, turn_s: float, min_cut_s: float) -> None:
        self.expected = calls
        self.turns = turns
        self.turn_s = turn_s
        self.min_cut_s = min_cut_s
        self.records: list[dict[str, Any]] = []
        self.all_ended = asyncio.Event()
        self.lag = LagMonitor()
        self.first_call: tuple[float, float] | None = None
        self.rss_before_mb = rss_mb()

    def call_started(self) -> None:
        """A call came: the first one starts the measurement."""
        if self.first_call is None:
            self.first_call = (time.process_time(), time.monotonic())
            self.lag.start()

    def call_ended(self, record: dict[str, Any]) -> None:
        """A call's record; once every expected call has one, ``all_ended`` is set."""
        self.records.append(record)
        if len(self.records) >= self.expected:
            self.all_ended.set()

    def result(self, engine: str) -> dict[str, Any]:
        cpu_0, wall_0 = self.first_call or (time.process_time(), time.monotonic())
        return {
            "engine": engine,
            "calls": len(self.records),
            "cpu_s": round(time.process_time() - cpu_0, 3),
            "wall_s": round(time.monotonic() - wall_0, 3),
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_peak_mb": round(peak_rss_mb(), 1),
            **self.lag.summary(),
            "records": self.records,
        }
