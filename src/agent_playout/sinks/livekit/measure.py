"""Measuring an ``rtc.AudioSource``'s queue and grid: the captures, on an injected clock.

The policy is pure (``QueueMeter``, ``settled_queue`` in ``meter.py``); this module only runs
the silent captures it asks for, times them with the ``Clock``, and empties the source after
each one, so the listener hears nothing.
"""

from __future__ import annotations

import contextlib
import logging

from livekit import rtc

from ...clock import Clock
from .meter import (
    QueueMeter,
    fill_limit,
    first_fill,
    second_opinion,
    settled_queue,
    told_queue_holds,
)
from .ticks import TICK_NS, TickCounter, between_ticks, grid_phase

logger = logging.getLogger("agent_playout")

_ROUNDS = 6
_CHECKS = 2
_CHECK_TRIES = 6


def _silence(source: rtc.AudioSource, samples: int) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        bytes(samples * source.num_channels * 2), source.sample_rate, source.num_channels, samples
    )


def _empty(source: rtc.AudioSource) -> None:
    """Empty the source after a measuring capture (it may be closed already, on cancel)."""
    with contextlib.suppress(Exception):
        source.clear_queue()


async def _fill(
    source: rtc.AudioSource, meter: QueueMeter, phase: int | None, clock: Clock
) -> int | None:
    """Run one fill of ``meter`` into the emptied source; its estimate, if it tells one.

    With the grid's ``phase`` known (from an earlier fill) it starts between two ticks.
    """
    source.clear_queue()
    if phase is not None:
        await clock.sleep_until(between_ticks(clock.now_ns(), phase))
    try:
        while size := meter.next_fill():
            requested = clock.now_ns()
            await source.capture_frame(_silence(source, size))
            meter.filled(size, requested, clock.now_ns())
    finally:
        _empty(source)
    return meter.estimate()


async def _confirmed(
    source: rtc.AudioSource, meter: QueueMeter, queue: int, clock: Clock
) -> bool | None:
    """Check ``meter``'s estimate ``queue`` against the source: True if it holds, False if
    the queue proved larger, None if the checks told nothing (a loaded process)."""
    confirmations = 0
    for _ in range(_CHECK_TRIES):
        await clock.sleep_until(meter.check_start(clock.now_ns()))
        try:
            requested = clock.now_ns()
            await source.capture_frame(_silence(source, queue))
            held = clock.now_ns()
            await source.capture_frame(_silence(source, meter.tick_samples))
            done = clock.now_ns()
        finally:
            _empty(source)
        verdict = meter.judge(requested, held, held, done)
        if verdict is False:
            return False
        confirmations += verdict is True
        if confirmations == _CHECKS:
            return True
    return None


async def measure_queue(
    source: rtc.AudioSource, counter: TickCounter | None, clock: Clock
) -> TickCounter:
    """The source's queue, measured from silent captures while it is idle, as a counter.

    ``counter`` holds the queue the sink was told (None if it was not). A told queue costs
    one fill, so that it stays cheap when many sources start together: it is taken unless
    the fill proves the queue larger, or its first capture (a frame short of the told queue,
    into the empty source) had to wait; then the queue is measured, and a told one that
    proves different in two measurements that agree is a ``SourceQueueError``, as is one
    that cannot be measured without being told (two that disagree leave the told one,
    unconfirmed). Audio waits meanwhile, since until the grid is known the count would rest
    on a guess. The listener hears only silence, emptied out after each capture.
    """
    rate = source.sample_rate
    tick = rate // 100
    told = None if counter is None else counter.queue_limit
    limit = fill_limit(rate, told)
    floor = 0
    if counter is not None and told is not None:
        meter = QueueMeter(tick, limit, first=first_fill(told, tick))
        await _fill(source, meter, None, clock)
        floor = meter.proven_floor()
        if told_queue_holds(meter, told):
            counter.adopt_grid(meter.completions_ns)
            return counter
    measured = await _measured(source, tick, limit, told, clock)
    if counter is not None and measured is not None and measured.queue_limit != told:
        again = await _measured(source, tick, limit, told, clock)
        measured = second_opinion(counter, measured, again)
    settled, unconfirmed = settled_queue(counter, floor, measured, rate)
    if unconfirmed:
        logger.warning(
            "LiveKitSink could not confirm the source's queue_size_ms=%d",
            settled.queue_limit * 1000 // rate,
        )
    return settled


async def _measured(
    source: rtc.AudioSource, tick: int, limit: int, expected: int | None, clock: Clock
) -> TickCounter | None:
    """Measure the queue by fills, each estimate confirmed; None if no round could tell."""
    phase: int | None = None
    for _ in range(_ROUNDS):
        meter = QueueMeter(tick, limit, first=first_fill(expected, tick))
        estimate = await _fill(source, meter, phase, clock)
        if meter.completions_ns:
            phase = grid_phase(done % TICK_NS for done in meter.completions_ns)
        if meter.rough is not None:
            expected = max(meter.rough - tick, tick)
        if estimate is None or await _confirmed(source, meter, estimate, clock) is not True:
            continue
        measured = TickCounter(tick, estimate)
        measured.adopt_grid(meter.completions_ns)
        return measured
    return None
