"""The benchmark's workloads, each driving one engine and returning a JSON-able dict.

They run inside ``bench.worker`` under the engine's own interpreter; timings use
``time.process_time`` (whole process, native threads included) and ``time.thread_time``
read in the event-loop thread.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from livekit import rtc

from .common import (
    RATE,
    CpuMeter,
    ErrorCounter,
    Listener,
    LoopClock,
    PacedNullSource,
    Timestamps,
    VirtualClock,
    audio_stream,
    frames_of,
    heard_through,
    live_objects,
    percentile,
    ramp,
)
from .engines import Engine
from .process import peak_rss_mb, rss_mb

CHUNK = RATE // 20
"""Both engines hand 50 ms chunks to the sink."""

QUEUE_MS = 1000
"""``rtc.AudioSource``'s default queue, which LiveKit Agents 0.12 uses."""

WARM_UP_SESSIONS = 10
WARM_UP_S = 0.2
"""``cpu_null`` warms up on this many sessions of items this long, untimed."""


def _per_audio_second(meter: CpuMeter, audio_s: float) -> dict[str, float]:
    return {
        "process_ms_per_audio_s": meter.process_s * 1000 / audio_s,
        "loop_ms_per_audio_s": meter.thread_s * 1000 / audio_s,
        "wall_s": meter.wall_s,
    }


async def _bare_session(sink: PacedNullSource, frames: list[rtc.AudioFrame]) -> None:
    """The least a playout must do: read the frames and hand 50 ms chunks to the sink."""
    chunk = frames_of(np.ones(CHUNK, np.int16), CHUNK)[0]
    pending = 0
    async for frame in audio_stream(frames):
        pending += frame.samples_per_channel
        while pending >= CHUNK:
            pending -= CHUNK
            await sink.capture_frame(chunk)
    await sink.wait_for_playout()


async def cpu_null(engine: Engine, *, sessions: int, seconds: float) -> dict[str, Any]:
    """Workload 1: N sessions, one item each, through paced null sinks on one shared clock.

    The same sessions are first run without an engine (``bare``), so the engine's own cost
    is the difference. A few short sessions, bare and with the engine, run first untimed, so
    that one-time costs (first calls, caches) fall in neither figure: at N=10 they were
    larger than the engine's cost.
    """
    clock = LoopClock()
    frames = frames_of(ramp(round(seconds * RATE)))
    audio_s = sessions * seconds
    warm_frames = frames_of(ramp(round(WARM_UP_S * RATE)))
    warm = range(min(sessions, WARM_UP_SESSIONS))
    await asyncio.gather(*(_bare_session(PacedNullSource(clock), warm_frames) for _ in warm))
    warm_handles = [
        engine.play(engine.playout(PacedNullSource(clock)), f"warm_{i}", audio_stream(warm_frames))
        for i in warm
    ]
    await asyncio.gather(*(engine.finished(handle) for handle in warm_handles))
    bare_sinks = [PacedNullSource(clock) for _ in range(sessions)]
    gc.collect()
    bare = CpuMeter().start()
    await asyncio.gather(*(_bare_session(sink, frames) for sink in bare_sinks))
    bare.stop()
    sinks = [PacedNullSource(clock) for _ in range(sessions)]
    playouts = [engine.playout(sink) for sink in sinks]
    gc.collect()
    meter = CpuMeter().start()
    handles = [
        engine.play(playout, f"item_{i}", audio_stream(frames))
        for i, playout in enumerate(playouts)
    ]
    await asyncio.gather(*(engine.finished(handle) for handle in handles))
    meter.stop()
    samples = round(seconds * RATE)
    result = _per_audio_second(meter, audio_s)
    result["exact_sessions"] = sum(handle.audio_samples == samples for handle in handles)
    harness = _per_audio_second(bare, audio_s)
    result["bare_process_ms_per_audio_s"] = harness["process_ms_per_audio_s"]
    result["engine_ms_per_audio_s"] = (
        result["process_ms_per_audio_s"] - harness["process_ms_per_audio_s"]
    )
    result["sink_captures_per_session"] = sum(sink.captures for sink in sinks) / sessions
    return result


async def cpu_rtc(
    engine: Engine, *, sessions: int, seconds: float, timeout_s: float = 90.0
) -> dict[str, Any]:
    """Workload 1 on real ``rtc.AudioSource`` sinks: cost, and whether each stays in real time.

    A session's end is when its handle finishes, measured from the common start; the sources
    exist (their native tick threads running) and the sinks are ready, as sessions set up at
    connect are, before the measurement starts. Sessions still playing after ``timeout_s``
    are stopped; CPU is per second of audio played by then.
    """
    frames = frames_of(ramp(round(seconds * RATE)))
    sources = [rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS) for _ in range(sessions)]
    captures = [0]
    for source in sources:
        _count_captures(source, captures)
    sinks = [engine.rtc_sink(source, QUEUE_MS) for source in sources]
    playouts = [engine.playout(sink) for sink in sinks]
    await asyncio.gather(*(engine.ready(sink) for sink in sinks))
    await asyncio.sleep(0.3)
    gc.collect()
    ends: list[float] = []
    handles: list[Any] = []
    start = time.perf_counter()

    async def session(i: int) -> None:
        handle = engine.play(playouts[i], f"item_{i}", audio_stream(frames))
        handles.append(handle)
        await engine.finished(handle)
        ends.append(time.perf_counter() - start)

    meter = CpuMeter().start()
    tasks = [asyncio.create_task(session(i)) for i in range(sessions)]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    meter.stop()
    played_s = sum(handle.audio_samples for handle in handles) / RATE
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*map(engine.close, playouts, sinks))
    for source in sources:
        await source.aclose()
    result: dict[str, Any] = {**_per_audio_second(meter, max(played_s, 1e-3))}
    result.update(
        sessions=sessions,
        finished=len(ends),
        end_p50_s=statistics.median(ends) if ends else None,
        end_max_s=max(ends) if len(ends) == sessions else None,
        late=sum(end > seconds * 1.1 for end in ends) + len(pending),
        failed=_failed(handles),
        native_captures_per_session=captures[0] / sessions,
    )
    return result


def _failed(handles: list[Any]) -> int | None:
    """How many items ended with an error; None for an engine whose handles do not say
    (0.12's: its failures are only logged)."""
    if not handles or not hasattr(handles[0], "error"):
        return None
    return sum(handle.error is not None for handle in handles)


def _count_captures(source: rtc.AudioSource, counter: list[int]) -> None:
    capture = source.capture_frame

    async def counted(frame: rtc.AudioFrame) -> None:
        counter[0] += 1
        await capture(frame)

    source.capture_frame = counted  # type: ignore[method-assign]


async def interrupts(engine: Engine, *, trials: int, seed: int = 8) -> dict[str, Any]:
    """Workloads 2 and 3: latencies, and the position at random interrupts vs ground truth."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    stamps = Timestamps(source)
    listener = Listener(source)
    sink = engine.rtc_sink(source, QUEUE_MS)
    fade = getattr(sink, "fade_samples", 0)
    playout = engine.playout(sink)
    await engine.ready(sink)
    rng = random.Random(seed)
    first_ms, cleared_ms, finished_ms, errors = [], [], [], []
    wrong_audio = 0
    heard_before = (await listener.heard()).size
    try:
        for trial in range(trials):
            signal = ramp(round(1.5 * RATE), start=trial * 7)
            audio = audio_stream(frames_of(signal))
            stamps.reset()
            played_at = time.perf_counter_ns()
            handle = engine.play(playout, f"it_{trial}", audio)
            await asyncio.sleep(rng.uniform(0.05, 0.45))
            interrupted_at = time.perf_counter_ns()
            handle.interrupt()
            await engine.finished(handle)
            finished_at = time.perf_counter_ns()
            heard_all = await listener.heard()
            heard = heard_all[heard_before:]
            heard_before = heard_all.size
            assert stamps.first_capture_ns is not None
            first_ms.append((stamps.first_capture_ns - played_at) / 1e6)
            if stamps.clear_ns is not None:
                cleared_ms.append((stamps.clear_ns - interrupted_at) / 1e6)
            finished_ms.append((finished_at - interrupted_at) / 1e6)
            went_out = heard_through(heard, signal, fade)
            if went_out is None:
                errors.append(handle.audio_samples - heard.size)
                wrong_audio += 1
            else:
                errors.append(handle.audio_samples - went_out[0])
                wrong_audio += went_out[1] != heard.size
    finally:
        await engine.close(playout, sink)
        await listener.aclose()
        await source.aclose()
    abs_errors = [abs(error) for error in errors]
    return {
        "trials": trials,
        "first_frame_ms": _summary(first_ms),
        "interrupt_to_cleared_ms": _summary(cleared_ms),
        "interrupt_to_finished_ms": _summary(finished_ms),
        "position_exact": sum(error == 0 for error in errors),
        "position_error_mean_abs": statistics.fmean(abs_errors),
        "position_error_max_abs": max(abs_errors),
        "wrong_audio": wrong_audio,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


async def robustness(engine: Engine, *, trials: int, seed: int = 4) -> dict[str, Any]:
    """Workload 4: interrupt then play at once, and play while playing; count failures.

    A trial fails if an error is logged, a handle does not finish, the new item is not heard
    whole and in order, or a reported position differs from what was heard. The first item
    is longer than the source's queue, so its captures wait and the sink learns the ticks.
    """
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    listener = Listener(source)
    sink = engine.rtc_sink(source, QUEUE_MS)
    fade = getattr(sink, "fade_samples", 0)
    playout = engine.playout(sink)
    await engine.ready(sink)
    rng = random.Random(seed)
    failures: dict[str, int] = {"interrupt_then_play": 0, "play_while_playing": 0}
    reasons: dict[str, int] = {}
    heard_before = (await listener.heard()).size
    try:
        for trial in range(trials):
            for kind in failures:
                first = ramp(2 * RATE, start=trial * 11)
                second = ramp(round(0.3 * RATE), start=trial * 13, sign=-1)
                with ErrorCounter() as logged:
                    handle_a = engine.play(playout, f"a_{trial}", audio_stream(frames_of(first)))
                    await asyncio.sleep(rng.uniform(0.03, 0.3))
                    if kind == "interrupt_then_play":
                        handle_a.interrupt()
                    handle_b = engine.play(playout, f"b_{trial}", audio_stream(frames_of(second)))
                    done = await _finish_all(engine, [handle_a, handle_b], timeout_s=3.0)
                    heard_all = await listener.heard()
                heard = heard_all[heard_before:]
                heard_before = heard_all.size
                heard_a, heard_b = heard[heard > 0], heard[heard < 0]
                went_out = heard_through(heard_a, first, fade)
                problems = {
                    "error logged": logged.count > 0,
                    "handle never finished": not done,
                    "new item not heard whole": not np.array_equal(heard_b, second),
                    "position differs from heard": done
                    and (
                        went_out != (handle_a.audio_samples, heard_a.size)
                        or handle_b.audio_samples != heard_b.size
                    ),
                }
                for reason, happened in problems.items():
                    reasons[reason] = reasons.get(reason, 0) + bool(happened)
                failures[kind] += any(bool(happened) for happened in problems.values())
    finally:
        await engine.close(playout, sink)
        await listener.aclose()
        await source.aclose()
    return {"trials_per_kind": trials, "failures": failures, "reasons": reasons}


async def _finish_all(engine: Engine, handles: list[Any], *, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(
            asyncio.gather(*(engine.finished(handle) for handle in handles)), timeout_s
        )
    except asyncio.TimeoutError:
        return False
    return True


async def growth(engine: Engine, *, minutes: float, window_minutes: float) -> dict[str, Any]:
    """Workload 5: one item of ``minutes`` of audio in 20 ms frames, paced on a virtual clock.

    CPU per audio-second is taken over the first and the last ``window_minutes``; memory
    and live objects after the first window and before the last.
    """
    clock = VirtualClock()
    playout = engine.playout(PacedNullSource(clock))
    frame = frames_of(ramp(RATE // 50))[0]
    total = round(minutes * 60 * 50)
    window = round(window_minutes * 60 * 50)
    marks: dict[str, float] = {}

    async def hour_of_audio() -> AsyncIterator[rtc.AudioFrame]:
        marks["cpu_0"] = time.process_time()
        for i in range(total):
            if i == window:
                marks["cpu_1"] = time.process_time()
                marks["rss_start"], marks["objects_start"] = rss_mb(), live_objects()
            if i == total - window:
                marks["rss_end"], marks["objects_end"] = rss_mb(), live_objects()
                marks["cpu_2"] = time.process_time()
            yield frame
        marks["cpu_3"] = time.process_time()

    handle = engine.play(playout, "hour", hour_of_audio())
    await clock.run(engine.finished(handle))
    window_s = window_minutes * 60
    return {
        "audio_minutes": minutes,
        "virtual_s": clock.now_ns() / 1e9,
        "position_s": handle.audio_samples / RATE,
        "start_ms_per_audio_s": (marks["cpu_1"] - marks["cpu_0"]) * 1000 / window_s,
        "end_ms_per_audio_s": (marks["cpu_3"] - marks["cpu_2"]) * 1000 / window_s,
        "rss_start_mb": marks["rss_start"],
        "rss_end_mb": marks["rss_end"],
        "objects_start": marks["objects_start"],
        "objects_end": marks["objects_end"],
        "peak_rss_mb": peak_rss_mb(),
    }


def _import_s(engine: Engine) -> float:
    """Seconds ``engine.import_statement`` takes in a fresh interpreter (this one's, same env)."""
    code = (
        "import time\nstart = time.perf_counter()\n"
        f"{engine.import_statement}\nprint(time.perf_counter() - start)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


async def _idle_cpu_ms_per_s(engine: Engine | None, sessions: int, seconds: float) -> float:
    """Process CPU (ms per second) of ``sessions`` idle rtc sources, each with a playout if
    ``engine`` is given; measured ``seconds`` long once their native tick threads run."""
    sources = [rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS) for _ in range(sessions)]
    sinks: list[Any] = []
    playouts: list[Any] = []
    if engine is not None:
        sinks = [engine.rtc_sink(source, QUEUE_MS) for source in sources]
        playouts = [engine.playout(sink) for sink in sinks]
        await asyncio.gather(*(engine.ready(sink) for sink in sinks))
    await asyncio.sleep(0.3)
    start = time.process_time()
    await asyncio.sleep(seconds)
    cpu_s = time.process_time() - start
    if engine is not None:
        await asyncio.gather(*map(engine.close, playouts, sinks))
    for source in sources:
        await source.aclose()
    return cpu_s * 1000 / seconds


async def single_session(
    engine: Engine,
    *,
    item_s: float = 2.0,
    idle_sessions: int = 20,
    idle_s: float = 5.0,
    import_runs: int = 3,
) -> dict[str, Any]:
    """Workload 7: what a one-job-per-process deployment pays for the engine.

    Import time is the median of ``import_runs`` fresh interpreters each timing only the
    engine's import (so this worker's own imports preload nothing). RSS is this worker's
    after one ``item_s`` item played to the end on a real ``rtc.AudioSource``. Idle CPU is
    ``idle_sessions`` playouts on real sources left without an item, and as many sources
    with no engine, each for ``idle_s`` in two halves ordered bare, engine, engine, bare (so
    drift in the machine's load falls on both alike); the difference is the engine's share.
    """
    import_s = statistics.median(_import_s(engine) for _ in range(import_runs))
    source = rtc.AudioSource(RATE, 1, queue_size_ms=QUEUE_MS)
    sink = engine.rtc_sink(source, QUEUE_MS)
    playout = engine.playout(sink)
    await engine.ready(sink)
    samples = round(item_s * RATE)
    rss_before = rss_mb()
    handle = engine.play(playout, "one", audio_stream(frames_of(ramp(samples))))
    await engine.finished(handle)
    rss_after = rss_mb()
    await engine.close(playout, sink)
    await source.aclose()
    idle_runs: dict[bool, list[float]] = {False: [], True: []}
    for with_engine in (False, True, True, False):
        idle_runs[with_engine].append(
            await _idle_cpu_ms_per_s(engine if with_engine else None, idle_sessions, idle_s / 2)
        )
    bare, idle = (statistics.fmean(idle_runs[with_engine]) for with_engine in (False, True))
    return {
        "import_s": import_s,
        "item_samples": handle.audio_samples,
        "item_exact": handle.audio_samples == samples,
        "rss_before_item_mb": rss_before,
        "rss_after_item_mb": rss_after,
        "idle_sessions": idle_sessions,
        "idle_ms_per_s_per_session": idle / idle_sessions,
        "idle_bare_ms_per_s_per_session": bare / idle_sessions,
        "idle_engine_ms_per_s_per_session": (idle - bare) / idle_sessions,
    }


async def many_items(engine: Engine, *, items: int, item_s: float = 0.1) -> dict[str, Any]:
    """Workload 8: ``items`` short items one after another on one playout, on a virtual clock.

    Tasks, memory and live objects are read after item ``items // 10`` (start) and after the
    last (end): a leak per item shows as growth between them.
    """
    clock = VirtualClock()
    playout = engine.playout(PacedNullSource(clock))
    frames = frames_of(ramp(round(item_s * RATE)))
    samples = round(item_s * RATE)
    checkpoint = max(items // 10, 1)
    marks: dict[str, float] = {}
    exact = 0

    async def one_after_another() -> None:
        nonlocal exact
        for i in range(1, items + 1):
            handle = engine.play(playout, f"item_{i}", audio_stream(frames))
            await engine.finished(handle)
            exact += handle.audio_samples == samples
            for side, at in (("start", checkpoint), ("end", items)):
                if i == at:
                    marks[f"tasks_{side}"] = len(asyncio.all_tasks())
                    marks[f"rss_{side}_mb"], marks[f"objects_{side}"] = rss_mb(), live_objects()

    await clock.run(one_after_another())
    return {
        "items": items,
        "checkpoint": checkpoint,
        "exact_items": exact,
        "virtual_s": clock.now_ns() / 1e9,
        **marks,
    }


def bytestream(engine: Engine, *, megabytes: float, seed: int = 6) -> dict[str, Any]:
    """Workload 6: re-chunking into 50 ms frames, in MB/s of input, for three write sizes."""
    rng = random.Random(seed)
    total = round(megabytes * 1e6) // 2 * 2
    data = np.random.default_rng(seed).integers(-3000, 3000, total // 2, np.int16).tobytes()
    sizes: dict[str, Callable[[], int]] = {
        "10ms": lambda: RATE // 100 * 2,
        "20ms": lambda: RATE // 50 * 2,
        "random": lambda: rng.randint(1, RATE // 5 * 2),
    }
    result: dict[str, Any] = {}
    for name, size in sizes.items():
        pieces, offset = [], 0
        while offset < total:
            step = size()
            pieces.append(data[offset : offset + step])
            offset += step
        stream = engine.byte_stream(CHUNK)
        start = time.process_time()
        for piece in pieces:
            stream.write(piece)
        stream.flush()
        result[f"{name}_mb_per_s"] = total / 1e6 / (time.process_time() - start)
    return result


WORKLOADS: dict[str, Callable[..., Any]] = {
    "cpu_null": cpu_null,
    "cpu_rtc": cpu_rtc,
    "interrupts": interrupts,
    "robustness": robustness,
    "growth": growth,
    "bytestream": bytestream,
    "single_session": single_session,
    "many_items": many_items,
}
