"""``agent-playout phone --realtime URL`` run for real in a child process: ``SimulatedCaller``
dials it over 127.0.0.1, and it bridges each call to ``SimulatedRealtimeServer`` in this
process. Argument errors run in-process and connect to nothing."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("typer")
pytest.importorskip("websockets")
pytest.importorskip("twilio")

from agent_playout.bridges.simulator import ScriptedResponse, SimulatedRealtimeServer
from agent_playout.sinks.twilio import DelayedLink, SimulatedCaller

from .test_phone_cli import PhoneServer, report_lines, run

ANSWER = "Your table for two is booked for eight tonight, by the window."
KEY = "sk-test-not-a-real-key"
REPORT_FIELDS = {
    "call_sid",
    "stream_sid",
    "item_id",
    "audio_samples",
    "audio_end_ms",
    "interrupted",
    "heard_text",
    "truncation",
}
BEHIND_MS = 250
"""How far under what the phone played a truncation may be here. Over a real socket the
phone's position is the sink's model of it, and between two processes on a busy machine the
gap measures the scheduler; tests/test_bridge_phone.py proves the exactness on the virtual
clock."""


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages are not wrapped mid-phrase."""
    monkeypatch.setenv("COLUMNS", "200")


def answer(seconds: float) -> ScriptedResponse:
    rate = 24000
    wave = 6000 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate)
    return ScriptedResponse.spoken(ANSWER, wave.astype(np.int16))


def assert_heard(truncate_ms: int, played_ms: int) -> None:
    """A truncation never claims more than the phone played (which would tell the model the
    caller heard what they did not), and is not far under it."""
    assert played_ms - BEHIND_MS <= truncate_ms <= played_ms + 1, (truncate_ms, played_ms)


def cut_ms(caller: SimulatedCaller) -> int:
    """Milliseconds the caller's phone had played when the clear reached it."""
    ((_, played),) = caller.cleared_at
    return played * 1000 // 8000


@pytest.mark.realtime
async def test_a_bridged_call_sends_the_phones_truncation_and_reports_it(tmp_path: Path) -> None:
    report = tmp_path / "calls.jsonl"
    async with SimulatedRealtimeServer([answer(3.0)], require_bearer=KEY) as model:
        argv = [
            "--realtime", model.url, "--header", f"Authorization: Bearer {KEY}",
            "--instructions", "Be brief.", "--report", str(report),
        ]  # fmt: skip
        async with PhoneServer.running(*argv) as server:
            async with SimulatedCaller(server.url, call_sid="CAbridged") as caller:
                await caller.wait_played(4800)
                await model.speech_started()
                truncate = await model.wait_for("conversation.item.truncate")
                await server.wait_for(f"call CAbridged: {truncate['item_id']} interrupted")
                await model.close(1000, "session over")
                await asyncio.wait_for(caller.wait_closed(), 10)
            await server.wait_for("the realtime model closed the connection (code 1000")
            code, err = await server.stop(signal.SIGTERM)
        update = await model.wait_for("session.update")
    assert (code, err) == (0, "")
    assert caller.close_code == 1000
    assert update["session"]["instructions"] == "Be brief."
    assert update["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert_heard(truncate["audio_end_ms"], cut_ms(caller))
    (line,) = report_lines(report, "CAbridged")
    assert set(line) >= REPORT_FIELDS
    assert line["stream_sid"] == caller.stream_sid
    assert line["item_id"] == truncate["item_id"]
    assert line["interrupted"] is True
    assert line["truncation"] == {k: v for k, v in truncate.items() if k != "event_id"}
    assert line["audio_end_ms"] == truncate["audio_end_ms"]
    assert line["audio_samples"] == line["heard_samples"] * 3  # 8 kHz heard, 24 kHz unit
    assert ANSWER.startswith(line["heard_text"].strip())
    (logged,) = [
        text for text in server.lines if text.startswith(f"call CAbridged: {line['item_id']}")
    ]
    assert f"interrupted after {line['heard_samples'] / 8000:.2f} s" in logged
    assert f"audio_end_ms={truncate['audio_end_ms']} · sent conversation.item.truncate" in logged
    assert KEY not in "\n".join(server.lines) + err


@pytest.mark.realtime
async def test_a_stop_hangs_up_each_live_call_and_reports_what_its_caller_heard(
    tmp_path: Path,
) -> None:
    report = tmp_path / "calls.jsonl"
    async with (
        SimulatedRealtimeServer([answer(5.0), answer(5.0)]) as model,
        PhoneServer.running("--realtime", model.url, "--report", str(report)) as server,
        SimulatedCaller(server.url, call_sid="CAone") as one,
        SimulatedCaller(server.url, call_sid="CAtwo") as two,
    ):
        await one.wait_played(4000)
        await two.wait_played(4000)
        code, err = await server.stop(signal.SIGTERM)
        await one.wait_closed()
        await two.wait_closed()
        await model.wait_for("conversation.item.truncate", count=2)
    assert (code, err) == (0, "")
    updates = [e for e in model.received if e["type"] == "session.update"]
    assert len(updates) == 2  # one connection per call
    truncates = {
        e["item_id"]: e for e in model.received if e["type"] == "conversation.item.truncate"
    }
    for caller in (one, two):
        assert caller.close_code == 1000
        assert f"call {caller.call_sid}: ended: the server is stopping" in server.lines
        (line,) = report_lines(report, caller.call_sid)
        assert line["interrupted"] is True
        assert line["truncation"] == {
            k: v for k, v in truncates[line["item_id"]].items() if k != "event_id"
        }
        assert_heard(line["audio_end_ms"], caller.played * 1000 // 8000)


@pytest.mark.realtime
async def test_a_model_that_cannot_be_reached_hangs_up_the_call_and_the_server_serves_on() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    url = f"ws://user:{KEY}@127.0.0.1:{port}/v1/realtime?api-key={KEY}"
    async with PhoneServer.running("--realtime", url) as server:
        for sid in ("CAfirst", "CAsecond"):
            async with SimulatedCaller(server.url, call_sid=sid) as caller:
                await asyncio.wait_for(caller.wait_closed(), 15)
            assert caller.close_code == 1000
            assert caller.samples_received == 0
            line = await server.wait_for(f"call {sid}: cannot connect to the realtime model")
            assert line.startswith("warning: ")
            assert f"ws://127.0.0.1:{port}/v1/realtime?api-key=...: cannot connect" in line
        code, err = await server.stop(signal.SIGTERM)
    assert (code, err) == (0, "")
    assert KEY not in "\n".join(server.lines)  # nor in the reasons the callers were given


@asynccontextmanager
async def unanswered_handshakes() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A ws:// URL whose server takes the connection and never answers the handshake, and an
    event set when a connection arrives."""
    arrived = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        await reader.read()  # until the client gives up
        writer.close()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with listener:
        yield f"ws://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1/realtime", arrived


@pytest.mark.realtime
async def test_a_call_that_ends_while_the_model_connects_is_not_bridged() -> None:
    async with (
        SimulatedRealtimeServer([answer(3.0)]) as model,
        DelayedLink("127.0.0.1", urlsplit(model.url).port or 0, delay_ms=500) as link,
        PhoneServer.running("--realtime", link.url("/v1/realtime")) as server,
    ):  # the handshake takes a second: the caller is gone before the model answers it
        async with SimulatedCaller(server.url, call_sid="CAgone") as caller:
            await caller.hang_up()
        await server.wait_for("call CAgone: ended: the caller hung up")
        code, err = await server.stop(signal.SIGTERM)
        with pytest.raises(TimeoutError):  # a response nobody would hear costs all the same
            await model.wait_for("session.update", timeout=2.0)
    assert (code, err) == (0, "")
    assert "call CAgone: bridged to the realtime model" not in server.lines
    assert model.received == []


@pytest.mark.realtime
async def test_a_stop_cancels_a_pending_model_connection_and_the_command_exits() -> None:
    async with (
        unanswered_handshakes() as (url, arrived),
        PhoneServer.running("--realtime", url) as server,
        SimulatedCaller(server.url, call_sid="CAwaiting") as caller,
    ):
        await asyncio.wait_for(arrived.wait(), 10)
        code, err = await server.stop(signal.SIGTERM)
        await caller.wait_closed()
    assert (code, err) == (0, "")
    assert caller.close_code == 1000
    assert "call CAwaiting: ended: the server is stopping" in server.lines
    assert not [line for line in server.lines if "cannot connect" in line]  # no 10 s timeout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "'--say': give at least one turn to speak, or --realtime URL"),
        (
            ["--port", "0", "--realtime", "ws://127.0.0.1:1/", "--say", "hi"],
            "Invalid value for '--realtime' / '--say': the model speaks",
        ),
        (
            ["--port", "0", "--realtime", "ws://127.0.0.1:1/", "--interrupt-at", "1"],
            "Invalid value for '--realtime' / '--interrupt-at'",
        ),
        (["--port", "0", "--realtime", "http://example.com/"], "Invalid value for '--realtime'"),
        (
            ["--port", "0", "--realtime", "ws://127.0.0.1:1/", "--header", "no colon"],
            "Invalid value for '--header'",
        ),
        (["--port", "0", "--say", "hi", "--header", "A: b"], "'--header': goes with --realtime"),
        (["--port", "0", "--say", "hi", "--instructions", "x"], "'--instructions': goes with"),
    ],
)
def test_bad_realtime_arguments_exit_2_naming_the_options(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err, err
    assert out == ""
