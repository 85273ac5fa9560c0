"""``PhoneCall`` over a real socket: the caller's audio, key presses, the round trip, and
listeners that raise."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from agent_playout.sinks.twilio import DelayedLink, PhoneCall, SimulatedCaller, serve_phone

from .conftest import until

pytestmark = pytest.mark.realtime


async def test_the_callers_audio_comes_as_8_khz_frames_of_20_ms() -> None:
    frames: list[tuple[int, int, int]] = []
    silent: list[bool] = []

    async def handler(call: PhoneCall) -> None:
        async for frame in call.inbound_audio():
            samples = np.frombuffer(frame.data, dtype=np.int16)
            frames.append((frame.sample_rate, frame.num_channels, frame.samples_per_channel))
            silent.append(bool(np.all(samples == 0)))  # the simulated caller sends mu-law 0xFF
            if len(frames) == 10:
                return

    async with serve_phone(handler) as server, SimulatedCaller(server.url) as caller:
        await asyncio.wait_for(caller.wait_closed(), 2.0)
    assert frames == [(8000, 1, 160)] * 10
    assert all(silent)


async def test_key_presses_reach_dtmf_listeners_and_a_raising_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    digits: list[str] = []
    listening = asyncio.Event()
    pressed = asyncio.Event()

    async def handler(call: PhoneCall) -> None:
        @call.on("dtmf")
        def broken(digit: str) -> None:
            raise RuntimeError("listener bug")

        @call.on("dtmf")
        def keep(digit: str) -> None:
            digits.append(digit)
            if len(digits) == 2:
                pressed.set()

        listening.set()
        await call.wait_ended()

    caplog.set_level(logging.ERROR, "agent_playout")
    async with serve_phone(handler) as server, SimulatedCaller(server.url) as caller:
        await asyncio.wait_for(listening.wait(), 2.0)
        caller.send_dtmf("4")
        caller.send_dtmf("#")
        await asyncio.wait_for(pressed.wait(), 2.0)
        assert server.active_calls == 1  # the raising listener ended nothing
    assert digits == ["4", "#"]
    assert sum("'dtmf' listener failed" in r.getMessage() for r in caplog.records) == 2


async def test_the_round_trip_is_measured_from_the_first_ping() -> None:
    trips: list[int | None] = []

    async def handler(call: PhoneCall) -> None:
        await until(lambda: call.sink.round_trip_ns is not None)
        trips.append(call.sink.round_trip_ns)
        await call.hang_up()

    async with (
        serve_phone(handler) as server,
        DelayedLink("127.0.0.1", server.port, delay_ms=80) as link,
        SimulatedCaller(link.url()) as caller,
    ):
        await asyncio.wait_for(caller.wait_closed(), 2.0)
    assert trips[0] is not None
    assert 160_000_000 <= trips[0] < 260_000_000
    assert caller.close_code == 1000


async def test_a_caller_that_never_starts_is_closed_with_1008(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agent_playout.sinks.twilio.server.START_TIMEOUT_S", 0.2)
    async with (
        serve_phone(lambda call: call.wait_ended()) as server,
        SimulatedCaller(server.url, announce=False) as caller,
    ):
        await asyncio.wait_for(caller.wait_closed(), 2.0)
        assert caller.close_code == 1008
        assert server.active_calls == 0


async def test_a_hang_up_with_a_long_reason_in_any_script_still_closes_cleanly() -> None:
    async def handler(call: PhoneCall) -> None:
        await call.hang_up("é" * 200)  # 400 bytes: more than a close frame holds

    async with serve_phone(handler) as server, SimulatedCaller(server.url) as caller:
        await asyncio.wait_for(caller.wait_closed(), 2.0)
    assert caller.close_code == 1000
