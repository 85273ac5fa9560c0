"""The ``agent-playout playground`` command: bad arguments and a busy port in-process (nothing
is served), and the real command in a child process, stopped by SIGTERM and by Ctrl-C with a
tab's session open."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("typer")

import agent_playout
from agent_playout.cli import main
from agent_playout.tts import available_voices

needs_espeak = pytest.mark.skipif("espeak" not in available_voices(), reason="no espeak voice")
SERVING = re.compile(r"playground: open (http://\S+/) in a browser")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SOURCE = os.pathsep.join(
    filter(None, [str(Path(agent_playout.__file__).parents[1]), os.environ.get("PYTHONPATH")])
)
"""The child imports this package (the one under test) from the temporary directory."""


@pytest.fixture(autouse=True)
def _wide_terminal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["playground", *argv])
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--port", "-1"], "Invalid value for '--port'"),
        (["--port", "eighty"], "Invalid value for '--port'"),
        (["--host", " "], "Invalid value for '--host': must name an address"),
        (["--voice", "bogus"], "Invalid value for '--voice'"),
        (["--realtime", "http://example.com"], "Invalid value for '--realtime'"),
        (["--header", "X-A: b"], "Invalid value for '--header': goes with --realtime URL"),
        (["--instructions", "hi"], "Invalid value for '--instructions': goes with --realtime"),
        (["--realtime", "ws://127.0.0.1:1/", "--header", "nocolon"], "'--header'"),
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

    monkeypatch.setattr("agent_playout.cli.playground.warm_voice", no_voice)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "--port", str(port))
    assert (code, out) == (1, "")
    assert (
        err
        == f"error: cannot listen on 127.0.0.1:{port}: the port is in use; choose another --port"
    )


def test_without_the_playground_extra_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "aiortc" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    code, out, err = run(capsys, "--port", "0")
    assert (code, out) == (1, "")
    needs = "error: the playground needs aiortc (the 'playground' extra): pip install"
    assert err == f"{needs} 'agent-playout[playground]'"


def test_help_names_every_option_within_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for option in ("--port", "--host", "--voice", "Interrupt"):
        assert option in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "130 after Ctrl-C" in " ".join(out.split())


# the real command, in a child process


class Playground:
    """``agent-playout playground`` in a child process; its stdout read line by line."""

    def __init__(self, child: asyncio.subprocess.Process) -> None:
        self.child = child
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[Playground]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent_playout", "playground", "--port", "0",
            "--voice", "espeak",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "PYTHONPATH": SOURCE},
        )  # fmt: skip
        server = cls(child)
        try:
            yield server
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            server._reader.cancel()
            await asyncio.gather(server._reader, return_exceptions=True)

    async def _read(self) -> None:
        assert self.child.stdout is not None
        async for raw in self.child.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._new_line.set()

    async def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        return await asyncio.wait_for(self._line_matching(pattern), timeout)

    async def _line_matching(self, pattern: str) -> re.Match[str]:
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            self._new_line.clear()
            await self._new_line.wait()

    async def stop(self, signum: signal.Signals) -> tuple[int, str]:
        self.child.send_signal(signum)
        assert self.child.stderr is not None
        err = await asyncio.wait_for(self.child.stderr.read(), STOP_TIMEOUT)
        code = await asyncio.wait_for(self.child.wait(), STOP_TIMEOUT)
        await asyncio.wait_for(self._reader, STOP_TIMEOUT)
        return code, err.decode()


pytest.importorskip("aiohttp")
pytest.importorskip("aiortc")


@pytest.mark.realtime
@needs_espeak
@pytest.mark.parametrize(
    ("signum", "code", "err"),
    [(signal.SIGTERM, 0, ""), (signal.SIGINT, 130, "agent-playout: interrupted\n")],
)
async def test_the_command_serves_the_page_and_a_stop_closes_the_open_tabs_session(
    signum: signal.Signals, code: int, err: str
) -> None:
    import aiohttp

    async with Playground.running() as server:
        url = (await server.wait_for(SERVING.pattern))[1]
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as page:
                assert page.status == 200
                assert "/static/playground.js" in await page.text()
            async with http.ws_connect(f"{url}session") as tab:
                hello = await asyncio.wait_for(tab.receive_json(), START_TIMEOUT)
                assert hello["type"] == "hello"
                await server.wait_for(f"session {hello['session']}: opened")
                assert await server.stop(signum) == (code, err)
    assert "stopping (" in "\n".join(server.lines)
    closed = [line for line in server.lines if "session s1: closed" in line]
    assert closed == ["session s1: closed (the playground stopped) after 0 item(s)"]
    assert server.lines[-1] == "stopped"
