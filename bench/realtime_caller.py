"""The realtime bench's fake phone, a process of its own: a phone is another device.

``python -m bench.realtime_caller '{"url": ..., "delay_ms": ...}'`` (over a ``DelayedLink``
of ``delay_ms`` each way when set) prints ``{"ready": true}``, then answers each line
``dial`` on its stdin with one call by a ``SimulatedCaller``: it plays what comes at real
time, hangs up once the server's ``clear`` reached it, and prints one JSON line with what
it had played then (8 kHz samples), the ground truth of the trial.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from agent_playout.sinks.twilio.simulator import DelayedLink, SimulatedCaller

CALL_TIMEOUT_S = 15.0


async def one_call(url: str) -> dict[str, Any]:
    """Dial, play what comes, and hang up once cleared; the played count at the clear."""
    async with SimulatedCaller(url) as caller:
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while not caller.cleared_at and not caller.closed:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        cleared = caller.cleared_at[0][1] if caller.cleared_at else None
        await caller.hang_up()
    return {"played": cleared, "samples_received": caller.samples_received}


async def phone(params: dict[str, Any]) -> None:
    """Answer each ``dial`` line on stdin with one call; one JSON line per call."""
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        url: str = params["url"]
        if params.get("delay_ms"):
            host, port = url.removeprefix("ws://").rstrip("/").split(":")
            link = await stack.enter_async_context(
                DelayedLink(host, int(port), delay_ms=float(params["delay_ms"]))
            )
            url = link.url("/")
        print(json.dumps({"ready": True}), flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "dial":
            try:
                result = await one_call(url)
            except (OSError, asyncio.TimeoutError) as error:
                result = {"played": None, "error": f"{type(error).__name__}: {error}"}
            print(json.dumps(result), flush=True)


def main(argv: list[str]) -> int:
    asyncio.run(phone(json.loads(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
