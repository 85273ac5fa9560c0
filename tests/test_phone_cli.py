"""The ``agent-playout phone`` command, run for real in a child process and dialled over
127.0.0.1 by ``SimulatedCaller``, whose played count is the ground truth.

Each server speaks short espeak turns (about a second each), so the whole module plays a
few seconds of audio; argument errors run in-process and play nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("typer")
pytest.importorskip("websockets")
pytest.importorskip("twilio")

from twilio.request_validator import RequestValidator
from websockets.exceptions import InvalidStatus

from agent_playout.cli import main
from agent_playout.cli.phone import check_options
from agent_playout.sinks.twilio import SimulatedCaller
from agent_playout.tts import available_voices

needs_espeak = pytest.mark.skipif("espeak" not in available_voices(), reason="no espeak voice")

FIRST = "The next train leaves at six forty from platform three."
SECOND = "It is on time."
LONG = "This answer is long enough to be playing when the server is told to stop, so it is cut."
HEARD_TOLERANCE = 720
"""30 ms at 24 kHz: the position may be off by 1.5 of the phone's 20 ms chunks."""
START_TIMEOUT = 30.0
CALL_TIMEOUT = 20.0
LISTENING = re.compile(r"listening on (ws://\S+?/)")


@pytest.fixture(autouse=True)
def _wide_terminal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Messages are not wrapped mid-phrase, and files land in a temporary folder."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def default_sigint() -> None:
    """A child started from a non-interactive shell may inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class PhoneServer:
    """``agent-playout phone`` in a child process; its stdout read line by line."""

    def __init__(self, child: asyncio.subprocess.Process) -> None:
        self.child = child
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.url = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, *argv: str, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[PhoneServer]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_playout", "phone", "--port", "0", "--voice", "espeak",
            *argv,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **(env or {})},
            preexec_fn=default_sigint,
        )  # fmt: skip
        server = cls(child)
        try:
            line = await server.wait_for(LISTENING.search, START_TIMEOUT)
            match = LISTENING.search(line)
            assert match is not None
            server.url = match.group(1)
            yield server
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            server._reader.cancel()

    async def _read(self) -> None:
        assert self.child.stdout is not None
        while line := await self.child.stdout.readline():
            self.lines.append(line.decode().rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    async def wait_for(self, found: Any, timeout: float = CALL_TIMEOUT) -> str:
        """The first line ``found(line)`` is true for (a substring, or a predicate)."""
        test = (lambda line: found in line) if isinstance(found, str) else found

        async def first() -> str:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if test(line):
                        return line
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"no line with {found!r} in {self.lines}")
                self._new_line.clear()
                await self._new_line.wait()

        return await asyncio.wait_for(first(), timeout)

    async def stop(self, signum: int) -> tuple[int, str]:
        """Send ``signum``; the exit code and stderr once the child has exited."""
        self.child.send_signal(signum)
        assert self.child.stderr is not None
        err = await asyncio.wait_for(self.child.stderr.read(), CALL_TIMEOUT)
        code = await asyncio.wait_for(self.child.wait(), CALL_TIMEOUT)
        await self._reader
        return code, err.decode()


def report_lines(path: Path, call_sid: str) -> list[dict[str, Any]]:
    """The report lines of one call, each a complete JSON object."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if record["call_sid"] == call_sid]


def cut_at(caller: SimulatedCaller) -> int:
    """The caller's played count (8 kHz) when the one clear of its call reached it."""
    ((_, played),) = caller.cleared_at
    return played


@pytest.mark.realtime
@needs_espeak
async def test_each_turn_is_a_report_line_the_cut_one_where_each_concurrent_caller_was(
    tmp_path: Path,
) -> None:
    report = tmp_path / "calls.jsonl"
    argv = ["--say", FIRST, "--say", SECOND, "--interrupt-at", "0.8", "--report", str(report)]
    async with PhoneServer.running(*argv) as server:
        assert any("listens on loopback only" in line for line in server.lines)
        callers = [
            SimulatedCaller(server.url, call_sid=f"CA{n}", stream_sid=f"MZ{n}") for n in (1, 2)
        ]
        async with callers[0], callers[1]:
            for caller in callers:
                await server.wait_for(f"call {caller.call_sid}: ended: the last turn was played")
            await asyncio.gather(*(caller.wait_idle() for caller in callers))
        code, err = await server.stop(signal.SIGTERM)
    assert (code, err) == (0, "")
    for caller in callers:
        assert caller.close_code == 1000  # hung up cleanly once the phone played the last turn
        first, second = report_lines(report, caller.call_sid)
        assert {first["stream_sid"], second["stream_sid"]} == {caller.stream_sid}
        assert (first["item_id"], second["item_id"]) == ("item_1", "item_2")
        assert first["interrupted"] is True
        assert abs(first["audio_samples"] - 3 * cut_at(caller)) <= HEARD_TOLERANCE
        assert 0 < len(first["heard_text"].strip()) < len(FIRST)
        assert FIRST.startswith(first["heard_text"].strip())
        assert second["interrupted"] is False
        assert second["error"] is None
        assert second["heard_text"].strip() == SECOND
        assert (caller.played - cut_at(caller)) * 3 == second["audio_samples"]  # all of it
        captions = [
            line for line in server.lines if line.startswith(f"call {caller.call_sid}:   [")
        ]
        assert captions, server.lines
    assert server.lines[-1] == "stopped"


@pytest.mark.realtime
@needs_espeak
@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
async def test_a_stop_cuts_the_live_call_where_it_is_after_a_hang_up_left_the_server_serving(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    report, rotated = tmp_path / "calls.jsonl", tmp_path / "calls.jsonl.1"
    async with PhoneServer.running("--say", LONG, "--report", str(report)) as server:
        async with SimulatedCaller(server.url, call_sid="CAgone") as gone:
            await gone.wait_played(2400)
            await gone.hang_up()
        await server.wait_for("call CAgone: item_1 ended by the call:")
        report.rename(rotated)  # as logrotate does: the next line starts a new file
        async with SimulatedCaller(server.url, call_sid="CAlive") as live:
            await live.wait_played(4000)
            code, err = await server.stop(signum)
            await live.wait_idle()
    assert code == exit_code
    assert live.close_code == 1000
    assert err == ("agent-playout: interrupted\n" if signum == signal.SIGINT else "")
    (dropped,) = report_lines(rotated, "CAgone")
    assert dropped["error"] is not None
    assert abs(dropped["audio_samples"] - 3 * gone.played) <= HEARD_TOLERANCE
    assert report_lines(report, "CAgone") == []
    (stopped,) = report_lines(report, "CAlive")
    assert stopped["interrupted"] is True
    assert stopped["error"] is None
    assert abs(stopped["audio_samples"] - 3 * cut_at(live)) <= HEARD_TOLERANCE
    assert LONG.startswith(stopped["heard_text"].strip())
    assert any(line.startswith("stopping (") for line in server.lines)
    assert "call CAlive: ended: the server is stopping" in server.lines


TOKEN = "test-auth-token-do-not-log"
PUBLIC_URL = "wss://phone.example.test"


def signed(url: str) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, {})}


REFUSED_HEADERS = {
    "missing": {},
    "wrong": {"X-Twilio-Signature": "bm90IHRoZSBzaWduYXR1cmU="},
    "for another url": signed(f"{PUBLIC_URL}/elsewhere"),
}


@pytest.mark.realtime
@needs_espeak
async def test_with_a_token_only_signed_connections_are_answered_the_rest_get_403() -> None:
    argv = ["--say", SECOND, "--public-url", PUBLIC_URL]
    async with PhoneServer.running(*argv, env={"TWILIO_AUTH_TOKEN": TOKEN}) as server:
        assert any("must carry a valid X-Twilio-Signature" in line for line in server.lines)
        for case, headers in REFUSED_HEADERS.items():
            with pytest.raises(InvalidStatus) as refused:
                async with SimulatedCaller(server.url, call_sid="CAbad", headers=headers):
                    pass
            assert refused.value.response.status_code == 403, case
        async with SimulatedCaller(server.url, call_sid="CAok", headers=signed(f"{PUBLIC_URL}/")):
            await server.wait_for("call CAok: ended: the last turn was played")
        code, err = await server.stop(signal.SIGTERM)
    assert code == 0
    refusals = [line for line in server.lines if line.startswith("warning: refused a connection")]
    assert len(refusals) == len(REFUSED_HEADERS), server.lines
    assert all(f"to {PUBLIC_URL}/: no valid X-Twilio-Signature" in line for line in refusals)
    assert "call CAbad: answered" not in "\n".join(server.lines)
    assert "call CAok: item_1 completed" in "\n".join(server.lines)
    assert TOKEN not in "\n".join(server.lines) + err


# bad arguments, in-process


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["phone", *argv])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "8000"], "Invalid value for '--say': give at least one turn to speak, or"),
        (["--say", "hi"], "Missing option '--port'"),
        (["--port", "70000", "--say", "hi"], "Invalid value for '--port'"),
        (["--port", "-1", "--say", "hi"], "Invalid value for '--port'"),
        (
            ["--port", "0", "--say", "a", "--interrupt-at", "1", "--interrupt-at", "2"],
            "Invalid value for '--interrupt-at': 2 cuts for 1 turns",
        ),
        (["--port", "0", "--say", "a", "--interrupt-at", "-0.5"], "'--interrupt-at': must be 0"),
        (["--port", "0", "--say", "  "], "Invalid value for '--say': a turn has nothing to say"),
        (["--port", "0", "--say", "a", "--max-calls", "0"], "Invalid value for '--max-calls'"),
        (["--port", "0", "--say", "a", "--public-url", "example.com"], "'--public-url'"),
        (["--port", "0", "--say", "a", "--report", "no/such/dir/r.jsonl"], "'--report'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err, err
    assert out == ""


def test_a_port_in_use_is_one_line_and_exit_1_before_the_voice_loads(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_voice(*args: object) -> None:
        raise AssertionError("the voice was loaded for a port in use")

    monkeypatch.setattr("agent_playout.cli.phone.warm_voice", no_voice)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "--port", str(port), "--say", "hi")
    assert code == 1
    assert (
        err
        == f"error: cannot listen on 127.0.0.1:{port}: the port is in use; choose another --port"
    )


@pytest.mark.realtime
@needs_espeak
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to refuse writes")
async def test_a_report_that_cannot_be_written_stops_the_server_with_one_line() -> None:
    async with PhoneServer.running("--say", SECOND, "--report", "/dev/full") as server:
        async with SimulatedCaller(server.url, call_sid="CAfull") as caller:
            await server.wait_for("call CAfull: item_1 completed")
            await caller.wait_idle()
        assert server.child.stderr is not None
        err = (await asyncio.wait_for(server.child.stderr.read(), CALL_TIMEOUT)).decode()
        code = await asyncio.wait_for(server.child.wait(), CALL_TIMEOUT)
    assert code == 1
    assert err == "error: cannot write the report to /dev/full: No space left on device\n"


@pytest.mark.parametrize(
    ("token", "host", "public_url", "listens_on", "says"),
    [
        (None, None, None, "127.0.0.1", ["listens on loopback only (--host to listen elsewhere)"]),
        (None, "127.0.0.1", None, "127.0.0.1", ["not set: anyone who reaches 127.0.0.1 may"]),
        (None, "0.0.0.0", None, "0.0.0.0", []),  # the server warns of it itself
        (
            TOKEN,
            None,
            None,
            "127.0.0.1",
            ["must carry a valid X-Twilio-Signature (for wss://<Host"],
        ),
        (TOKEN, None, PUBLIC_URL, "127.0.0.1", [f"X-Twilio-Signature (for {PUBLIC_URL})"]),
        (
            None,
            None,
            PUBLIC_URL,
            "127.0.0.1",
            ["loopback only", "warning: --public-url has no effect without TWILIO_AUTH_TOKEN"],
        ),
    ],
)
def test_who_may_connect_is_settled_and_said_at_start(
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    host: str | None,
    public_url: str | None,
    listens_on: str,
    says: list[str],
) -> None:
    if token is None:
        monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    else:
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", token)
    listener = check_options(
        say=["hi"],
        interrupt_at=[],
        report=None,
        host=host,
        port=0,
        max_calls=1,
        public_url=public_url,
    )
    assert (listener.host, listener.auth_token) == (listens_on, token)
    assert len(listener.said_at_start) == len(says)
    for line, said in zip(listener.said_at_start, says, strict=True):
        assert said in line
        assert TOKEN not in line


@pytest.mark.realtime
@needs_espeak
async def test_beyond_loopback_without_a_token_the_start_warns_once_and_of_the_public_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    argv = ["--say", SECOND, "--host", "0.0.0.0", "--public-url", PUBLIC_URL]
    async with PhoneServer.running(*argv) as server:
        code, err = await server.stop(signal.SIGTERM)
    assert (code, err) == (0, "")
    warnings = [line for line in server.lines if line.startswith("warning:")]
    assert len(warnings) == 2, server.lines
    assert "accepting calls on 0.0.0.0 without TWILIO_AUTH_TOKEN" in warnings[0]
    assert "--public-url has no effect without TWILIO_AUTH_TOKEN" in warnings[1]
    assert sum("TWILIO_AUTH_TOKEN" in line for line in server.lines) == 2


def test_without_the_phone_extra_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "websockets" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    code, out, err = run(capsys, "--port", "0", "--say", "hi")
    assert (code, out) == (1, "")
    needs = "error: the phone command needs websockets (the 'phone' extra): pip install"
    assert err == f"{needs} 'agent-playout[phone]'"


def test_help_names_every_option_within_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for option in ("--port", "--say", "--interrupt-at", "--report", "--host", "--max-calls",
                   "--public-url", "--voice", "TWILIO_AUTH_TOKEN"):  # fmt: skip
        assert option in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "2 for bad arguments" in " ".join(out.split())
