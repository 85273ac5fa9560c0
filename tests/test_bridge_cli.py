"""The ``agent-playout realtime`` command, run for real in a child process against
``SimulatedRealtimeServer`` on 127.0.0.1. The WAV file it writes is the ground truth: a
truncation must say exactly the whole milliseconds of the item that the file holds.

The answers are tones of about a second, so the module plays a few seconds of audio;
argument errors and a refused connection run in-process and play nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("typer")
pytest.importorskip("websockets")

from agent_playout.bridges.simulator import ScriptedResponse, SimulatedRealtimeServer
from agent_playout.cli import main

RATE = 24000
FIRST = "The next train to Boston leaves at six forty from platform three."
SECOND = "Anything else?"
EXIT_TIMEOUT = 30.0
"""Only guards a hang: the child imports, connects and plays a few seconds at most."""


@pytest.fixture(autouse=True)
def _wide_terminal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Messages are not wrapped mid-phrase, and files land in a temporary folder."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def tone(seconds: float, frequency: float = 220.0) -> np.ndarray:
    """A sine at 24 kHz, loud enough that every sample but the zero crossings is non-zero."""
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)


def default_sigint() -> None:
    """A child started from a non-interactive shell may inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.asynccontextmanager
async def command(*argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``agent-playout realtime ARGV`` in a child process; killed if the test leaves early."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_playout", "realtime", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        yield child
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def ended(child: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """The child's exit code, stdout and stderr once it has exited by itself."""
    out, err = await asyncio.wait_for(child.communicate(), EXIT_TIMEOUT)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


def wav_samples(path: Path) -> int:
    with wave.open(str(path), "rb") as written:
        assert written.getframerate() == RATE
        return written.getnframes()


def report_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def client_events(server: SimulatedRealtimeServer, *types: str) -> list[dict[str, Any]]:
    return [event for event in server.received if event.get("type") in types]


async def after_audio_began(server: SimulatedRealtimeServer, seconds: float) -> None:
    """``seconds`` after the server sent its first audio delta: the command is mid-item."""
    await server.wait_sent("response.output_audio.delta", timeout=EXIT_TIMEOUT)
    await asyncio.sleep(seconds)


@pytest.mark.realtime
async def test_a_barge_in_truncates_at_what_the_wav_file_holds_and_a_whole_item_is_not_truncated(
    tmp_path: Path,
) -> None:
    first, second = tone(1.5), tone(0.4, 330.0)
    responses = [ScriptedResponse.spoken(FIRST, first), ScriptedResponse.spoken(SECOND, second)]
    async with (
        SimulatedRealtimeServer(responses) as server,
        command(
            "--url", server.url, "--instructions", "Be brief.",
            "--out", "wav:answer.wav", "--report", "items.jsonl",
        ) as child,
    ):  # fmt: skip
        await after_audio_began(server, 0.6)
        await server.speech_started()
        truncate = await server.wait_for("conversation.item.truncate")
        await server.speech_stopped()
        await server.wait_sent("response.done", count=2)
        await server.close()  # the second answer was all sent; it plays out, then exit 0
        code, out, err = await ended(child)
    assert code == 0, err
    update, create = server.received[:2]
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": RATE}
    assert update["session"]["instructions"] == "Be brief."
    assert create == {"type": "response.create", "event_id": "agent_playout_response_create"}
    cut, whole = report_lines(tmp_path / "items.jsonl")
    # The file holds the heard part of the first answer, then all of the second one.
    first_in_file = wav_samples(tmp_path / "answer.wav") - second.size
    assert 0 < first_in_file < first.size
    assert cut["interrupted"] is True
    assert cut["audio_end_ms"] == truncate["audio_end_ms"] == first_in_file * 1000 // RATE
    assert cut["audio_samples"] == first_in_file
    assert cut["truncation"] == {**truncate, "type": "conversation.item.truncate"}
    assert truncate["item_id"] == cut["item_id"]
    assert FIRST.startswith(cut["heard_text"].strip())
    assert cut["heard_text"].strip() != FIRST
    assert whole["interrupted"] is False
    assert whole["truncation"] is None
    assert whole["audio_samples"] == second.size == server.audio_sent_samples(whole["item_id"])
    assert whole["heard_text"].strip() == SECOND
    sent_about_second = [
        event
        for event in client_events(server, "conversation.item.truncate", "conversation.item.delete")
        if event["item_id"] == whole["item_id"]
    ]
    assert sent_about_second == []
    assert f'"audio_end_ms": {truncate["audio_end_ms"]}' in out
    assert "the server closed the connection" in out


@pytest.mark.realtime
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
async def test_a_signal_mid_item_truncates_and_reports_it_before_exiting(
    tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    responses = [ScriptedResponse.spoken(FIRST, tone(2.0))]
    async with (
        SimulatedRealtimeServer(responses) as server,
        command("--url", server.url, "--out", "wav:answer.wav", "--report", "items.jsonl") as child,
    ):
        await after_audio_began(server, 0.5)
        child.send_signal(signum)
        code, _, err = await ended(child)
        truncate = await server.wait_for("conversation.item.truncate")
    assert code == exit_code, err
    (item,) = report_lines(tmp_path / "items.jsonl")
    heard = wav_samples(tmp_path / "answer.wav")
    assert 0 < heard < 2 * RATE
    assert item["interrupted"] is True
    assert item["audio_end_ms"] == truncate["audio_end_ms"] == heard * 1000 // RATE
    assert item["truncation"] == {**truncate, "type": "conversation.item.truncate"}


@pytest.mark.realtime
async def test_the_beta_header_asks_in_the_beta_shape_and_its_events_play(tmp_path: Path) -> None:
    answer = tone(0.3)
    responses = [ScriptedResponse.spoken(SECOND, answer)]
    async with (
        SimulatedRealtimeServer(responses, dialect="beta") as server,
        command(
            "--url", server.url, "--header", "OpenAI-Beta: realtime=v1",
            "--out", "null", "--report", "items.jsonl",
        ) as child,
    ):  # fmt: skip
        await server.wait_sent("response.done")
        await server.close()
        code, _, err = await ended(child)
    assert code == 0, err
    assert server.received[0]["session"]["output_audio_format"] == "pcm16"
    (item,) = report_lines(tmp_path / "items.jsonl")
    assert item["audio_samples"] == answer.size
    assert item["interrupted"] is False
    assert item["heard_text"].strip() == SECOND


async def test_a_wrong_key_is_refused_with_the_http_status_and_exit_1() -> None:
    async with (
        SimulatedRealtimeServer([], require_bearer="sk-right") as server,
        command("--url", server.url, "--header", "Authorization: Bearer sk-wrong") as child,
    ):
        code, _, err = await ended(child)
    assert code == 1
    assert server.url in err
    assert "401" in err
    assert "Traceback" not in err


def free_port() -> int:
    """A port nothing listens on (just released by the OS)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_exits_1_naming_the_url_but_not_its_query(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    assert main(["realtime", "--url", f"{url}?api-key=sk-secret", "--out", "null"]) == 1
    out, err = capsys.readouterr()
    assert f"connecting to {url}?api-key=...…" in out
    assert err.startswith(f"error: {url}?api-key=...: cannot connect")
    assert len(err.strip().splitlines()) == 1
    assert "sk-secret" not in out + err  # Azure's key goes in the query


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--url", "http://127.0.0.1/v1/realtime"], "--url"),
        (["--header", "Authorization Bearer sk"], "--header"),
        (["--out", "wav:"], "--out"),
        (["--report", "no/such/folder/items.jsonl"], "--report"),
        (["--false-interruption-timeout", "0"], "--false-interruption-timeout"),
        (["--false-interruption-timeout", "-1"], "--false-interruption-timeout"),
    ],
)
def test_a_bad_argument_exits_2_naming_the_option_before_connecting(
    capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime"
        assert main(["realtime", "--url", url, *args]) == 2
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert option in capsys.readouterr().err


def test_without_the_realtime_extra_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "websockets" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["realtime", "--url", "ws://127.0.0.1:9/v1/realtime", "--out", "null"]) == 1
    err = capsys.readouterr().err
    assert "error: the realtime command needs websockets (the 'realtime' extra)" in err
    assert "pip install 'agent-playout[realtime]'" in err
