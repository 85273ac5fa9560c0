"""The realtime bench's phone output: each trial a call bridged to a simulated model.

The phone server (``serve_phone``, one ``PhoneSink`` per call, a ``RealtimeBridge`` on it,
G.711 both ways as a phone agent runs) lives in the bench's process; the fake phone
(``bench.realtime_caller``) in its own, directly or over a ``DelayedLink``. The truth is
what that phone had played when the server's ``clear`` reached it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from agent_playout import AgentPlayout
from agent_playout.bridges import (
    AudioFormat,
    ItemHeard,
    RealtimeBridge,
    SimulatedRealtimeServer,
    connect_realtime,
    session_update,
)
from agent_playout.sinks.twilio import PhoneCall, serve_phone

from .realtime_trial import (
    WAIT_S,
    Cut,
    Script,
    TimedConnection,
    TruthError,
    cut_now,
    finish,
    judged,
    outcome,
    script_for,
)

ROOT = Path(__file__).resolve().parent.parent
PHONE_RATE = 8000
CALL_TIMEOUT_S = 15.0
"""The fake phone's longest call (``bench.realtime_caller``)."""


class PhoneProcess:
    """The fake phone's process, driven line by line."""

    def __init__(self, url: str, delay_ms: int) -> None:
        self._params = {"url": url, "delay_ms": delay_ms}
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> PhoneProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.realtime_caller",
            json.dumps(self._params),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        if not (await self._line()).get("ready"):
            raise RuntimeError("the fake phone's process did not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    def dial(self) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(b"dial\n")

    async def result(self) -> dict[str, Any]:
        """The last call's record, once the phone hung up."""
        return await asyncio.wait_for(self._line(), CALL_TIMEOUT_S + 5.0)

    async def _line(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fake phone's process ended")
        loaded: dict[str, Any] = json.loads(line)
        return loaded


class PhoneBridge:
    """The phone server's call handler: each call bridged to the model at ``model_url``;
    what each call's bridge saw is queued for the trial that dialed it."""

    def __init__(self) -> None:
        self.model_url = ""
        self.calls: asyncio.Queue[BridgedCall] = asyncio.Queue()

    async def answer(self, call: PhoneCall) -> None:
        connection = await connect_realtime(self.model_url)
        bridged = BridgedCall(TimedConnection(connection))
        playout = AgentPlayout(audio_source=call.sink)
        bridge = RealtimeBridge(playout, bridged.timed.send, output_format=AudioFormat.G711_ULAW)
        bridge.on("item_started", lambda *_: bridged.started.set())
        bridge.on("item_ended", bridged.end)
        runner = asyncio.create_task(bridge.run(bridged.timed.events()))
        self.calls.put_nowait(bridged)
        try:
            await connection.send(session_update(output_format=AudioFormat.G711_ULAW))
            await connection.send({"type": "response.create"})
            await call.wait_ended()
        finally:
            await bridge.aclose()
            await playout.aclose()
            await connection.aclose()
            await finish(runner)


class BridgedCall:
    """One call's bridge, as the trial sees it: its connection's clocks, its items."""

    def __init__(self, timed: TimedConnection) -> None:
        self.timed = timed
        self.started = asyncio.Event()
        self.ended: list[ItemHeard] = []
        self.item_ended = asyncio.Event()

    def end(self, heard: ItemHeard) -> None:
        self.ended.append(heard)
        self.item_ended.set()


async def phone_trials(
    trials: int, rng: random.Random, log: Callable[[str], None], *, delay_ms: int = 0
) -> list[dict[str, Any]]:
    """A fresh call per trial to one phone server, from one fake phone process (over a
    ``DelayedLink`` of ``delay_ms`` each way if set)."""
    handler = PhoneBridge()
    records = []
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(serve_phone(handler.answer))
        url = f"ws://127.0.0.1:{server.port}/"
        fake_phone = await stack.enter_async_context(PhoneProcess(url, delay_ms))
        for index in range(trials):
            script = script_for(rng)
            records.append(await judged(script, _phone_trial(handler, fake_phone, script)))
            log(f"    phone {delay_ms} ms {index + 1}/{trials}: {outcome(records[-1])}")
    return records


async def _phone_trial(
    handler: PhoneBridge, fake_phone: PhoneProcess, script: Script
) -> dict[str, Any]:
    async with SimulatedRealtimeServer([script.response()]) as model:
        handler.model_url = model.url
        fake_phone.dial()
        bridged = await asyncio.wait_for(handler.calls.get(), WAIT_S)
        await asyncio.wait_for(bridged.started.wait(), WAIT_S)
        await asyncio.sleep(script.cut_s)
        truncation, round_trip = await cut_now(model)
        phone = await fake_phone.result()
        await asyncio.wait_for(bridged.item_ended.wait(), WAIT_S)
    if phone["played"] is None:
        raise TruthError(f"the fake phone was never cleared: {phone}")
    cut = Cut(script, truncation, round_trip, bridged.timed, bridged.ended[0])
    return cut.record(phone["played"], PHONE_RATE)
