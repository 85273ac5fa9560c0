from __future__ import annotations

import asyncio

import pytest

from agent_playout import VirtualClock
from agent_playout.clock import NS_PER_SECOND


async def test_advance_fires_timers_in_deadline_order(clock: VirtualClock) -> None:
    fired: list[tuple[str, int]] = []
    clock.call_at(3, lambda: fired.append(("c", clock.now_ns())))
    clock.call_at(1, lambda: fired.append(("a", clock.now_ns())))
    cancelled = clock.call_at(2, lambda: fired.append(("x", clock.now_ns())))
    cancelled.cancel()
    await clock.advance_ns(5)
    assert fired == [("a", 1), ("c", 3)]
    assert clock.now_ns() == 5


async def test_sleep_until_wakes_at_the_deadline_only(clock: VirtualClock) -> None:
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep_until(NS_PER_SECOND)
        woke.append(clock.now_ns())

    task = asyncio.create_task(sleeper())
    await clock.advance(0.999)
    assert woke == []
    await clock.advance(0.001)
    assert woke == [NS_PER_SECOND]
    await task


async def test_run_reports_a_deadlock_instead_of_hanging(clock: VirtualClock) -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(RuntimeError, match="deadlock"):
        await clock.run(never)


async def test_clock_refuses_to_go_backwards(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="backwards"):
        await clock.advance_ns(-1)
