"""Fake phones: ``SimulatedCaller``s dialing a benchmark server, judged by what they played.

``python -m bench.phone_callers '{"url": ..., "seeds": [...], ...}'`` runs one process's share
of the calls and prints one JSON line. Each caller announces its seed (a custom parameter),
hangs up once the server has cut all its turns, and reports per turn what the phone played
(the truth) and how long it ran dry after the turn's first audio (an underrun: the server
fell behind real time). Only ``SimulatedCaller``'s public surface is read: ``cleared_at``
gives the played count at each cut, ``played_at`` the history, from which the first audio of
a turn and its gaps follow.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from agent_playout.sinks.twilio.simulator import DelayedLink, SimulatedCaller

from .phone_plan import LagMonitor

NS_PER_SAMPLE = 1_000_000_000 // 8000


def _first_audio_ns(caller: SimulatedCaller, after_ns: int, before_ns: int, played: int) -> int:
    """When the phone started playing sample ``played`` (in ``[after_ns, before_ns]``)."""
    low, high = after_ns, before_ns
    while low < high:
        middle = (low + high) // 2
        if caller.played_at(middle) > played:
            high = middle
        else:
            low = middle + 1
    return low - NS_PER_SAMPLE


def judge(caller: SimulatedCaller, dialed_ns: int) -> list[dict[str, Any]]:
    """Per cut turn: samples played (8 kHz) and the phone's silence after the turn's first audio."""
    turns = []
    previous_ns, previous_played = dialed_ns, 0
    for cleared_ns, played in caller.cleared_at:
        heard = played - previous_played
        gap_ms = 0.0
        if heard > 0:
            start = _first_audio_ns(caller, previous_ns, cleared_ns, previous_played)
            gap_ms = ((cleared_ns - start) - heard * NS_PER_SAMPLE) / 1e6
        turns.append({"played": heard, "gap_ms": round(gap_ms, 3), "cleared_ns": cleared_ns})
        previous_ns, previous_played = cleared_ns, played
    return turns


async def call(
    url: str, seed: int, turns: int, timeout_s: float, start_at: float
) -> dict[str, Any]:
    """One call: dial at ``start_at``, wait for ``turns`` clears, hang up; what the phone saw."""
    await asyncio.sleep(max(start_at - time.monotonic(), 0.0))
    dialed_ns = time.monotonic_ns()
    record: dict[str, Any] = {"seed": seed, "complete": False}
    try:
        async with SimulatedCaller(url, custom_parameters={"seed": str(seed)}) as caller:
            deadline = time.monotonic() + timeout_s
            while len(caller.cleared_at) < turns and not caller.closed:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            record["complete"] = len(caller.cleared_at) >= turns
            await asyncio.sleep(0.2)
            await caller.hang_up()
            ended_ns = time.monotonic_ns()
            record.update(
                turns=judge(caller, dialed_ns),
                seconds=(ended_ns - dialed_ns) / 1e9,
                media=caller.media_received,
                other=len(caller.received),
                marks_echoed=len(caller.marks_echoed),
                inbound_media=caller.inbound_sent,
                ignored=caller.ignored,
            )
    except (OSError, asyncio.TimeoutError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
    return record


async def dial_all(params: dict[str, Any]) -> dict[str, Any]:
    """This process's calls, over a ``DelayedLink`` when ``delay_ms`` is set."""
    url: str = params["url"]
    cpu_0, wall_0 = time.process_time(), time.monotonic()
    lag = LagMonitor()
    lag.start()
    async with AsyncExitStack() as stack:
        if params.get("delay_ms"):
            host, port = url.removeprefix("ws://").rstrip("/").split(":")
            link = await stack.enter_async_context(
                DelayedLink(host, int(port), delay_ms=float(params["delay_ms"]))
            )
            url = link.url("/")
        start = time.monotonic() + params.get("first_at_s", 0.0)
        stagger = params.get("stagger_s", 0.0)
        records = await asyncio.gather(
            *(
                call(url, seed, params["turns"], params["timeout_s"], start + index * stagger)
                for index, seed in enumerate(params["seeds"])
            )
        )
    lag.stop()
    return {
        **lag.summary(),
        "records": list(records),
        "cpu_s": round(time.process_time() - cpu_0, 3),
        "wall_s": round(time.monotonic() - wall_0, 3),
    }


def main(argv: list[str]) -> int:
    print(json.dumps(asyncio.run(dial_all(json.loads(argv[0])))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
