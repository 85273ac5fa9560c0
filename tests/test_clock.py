from __future__ import annotations

import asyncio

import pytest

from agent_playout import MonotonicClock, VirtualClock
from agent_playout.core.units import NS_PER_SECOND


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


async def test_sleep_wakes_after_its_virtual_seconds_only(clock: VirtualClock) -> None:
    await clock.advance(0.5)
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep(0.25)
        woke.append(clock.now_ns())

    task = asyncio.create_task(sleeper())
    await clock.advance(0.249)
    assert woke == []
    await clock.advance(0.001)
    assert woke == [NS_PER_SECOND * 3 // 4]
    await task


async def test_run_drives_a_sleep_to_its_deadline(clock: VirtualClock) -> None:
    await clock.run(clock.sleep(2.5))
    assert clock.now_ns() == 2_500_000_000


async def test_sleep_of_zero_yields_and_keeps_the_time(clock: VirtualClock) -> None:
    await clock.run(clock.sleep(0))
    assert clock.now_ns() == 0


@pytest.mark.parametrize("seconds", [-0.1, float("nan"), float("inf"), True, "1"])
async def test_sleep_refuses_a_duration_that_is_not_a_finite_count_of_seconds(
    clock: VirtualClock, seconds: object
) -> None:
    with pytest.raises((ValueError, TypeError), match="seconds"):
        await clock.sleep(seconds)  # type: ignore[arg-type]


async def test_the_deadlock_error_says_what_to_use_instead_of_a_real_sleep(
    clock: VirtualClock,
) -> None:
    async def real_sleeper() -> None:
        await asyncio.sleep(0.01)

    with pytest.raises(RuntimeError, match=r"deadlock") as raised:
        await clock.run(real_sleeper())
    message = str(raised.value)
    assert "await clock.sleep(seconds)" in message
    assert "asyncio.sleep" in message


async def test_monotonic_sleep_returns_after_at_least_its_seconds() -> None:
    clock = MonotonicClock()
    start = clock.now_ns()
    await clock.sleep(0.01)
    assert clock.now_ns() - start >= 10_000_000
