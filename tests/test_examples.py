"""Every example in ``examples/`` runs as a user would run it, and says what the README says.

Each example runs in a fresh interpreter (the suite's own), in a temporary directory, and
the test checks what it printed against what its numbers must be. The README's code blocks
are checked to be the examples' code, so the README cannot drift from what runs. The
examples that play at real time (WAV, speakers, LiveKit, the command) play under 1.5 s each.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import pytest

from .livekit_agents_required import require_livekit_agents

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RATE = 24000


def run_example(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``examples/name`` as a script; it must exit 0. Returns what it printed."""
    command = [sys.executable, str(EXAMPLES / name), *args]
    if name.endswith(".sh"):
        command = ["sh", str(EXAMPLES / name), *args]
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def printed(output: str, label: str) -> str:
    """The rest of the line that starts with ``label: ``."""
    match = re.search(rf"^{re.escape(label)}: (.*)$", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


def test_usage_hears_exactly_the_second_before_the_barge_in(tmp_path: Path) -> None:
    output = run_example("usage.py", cwd=tmp_path)
    # The answer's audio starts at 0 and the listener barges in after 1.0 s; the null sink
    # has no fade, so exactly one second at 24 kHz was heard.
    assert int(printed(output, "audio_samples")) == RATE
    heard = ast.literal_eval(printed(output, "played_text"))
    answer = "The next train to Boston leaves at 6:40 from platform three."
    assert heard
    assert answer.startswith(heard)
    assert heard.strip() != answer
    event = ast.literal_eval(printed(output, "send"))
    assert event == {
        "type": "conversation.item.truncate",
        "item_id": "it_1",
        "content_index": 0,
        "audio_end_ms": 1000,
    }
    report = json.loads(printed(output, "report"))
    assert report["interrupted"] is True
    assert report["audio_samples"] == RATE
    assert report["truncation"] == event
    assert [word["text"] for word in report["words"] if word["heard"]] == heard.split()
    assert " ".join(word["text"] for word in report["words"]) == answer


def test_virtual_clock_plays_two_seconds_and_names_the_real_sleep(tmp_path: Path) -> None:
    output = run_example("virtual_clock.py", cwd=tmp_path)
    assert "completed: True, audio_samples: 48000" in output
    refusal = printed(output, "clock.run refused")
    assert refusal.startswith("deadlock: the awaitable waits but no timer is scheduled")
    assert "await clock.sleep(seconds)" in refusal


def test_timestamps_hear_exactly_the_words_started_before_the_cut(tmp_path: Path) -> None:
    output = run_example("timestamps.py", cwd=tmp_path)
    cartesia = ast.literal_eval(printed(output, "cartesia"))
    assert cartesia == [
        ("Hello, ", 0.0),
        ("how ", 0.5),
        ("can ", 0.8),
        ("I ", 1.0),
        ("help? ", 1.2),
    ]
    elevenlabs = ast.literal_eval(printed(output, "elevenlabs"))
    assert [text for text, _ in elevenlabs] == ["Hi ", "there"]
    # "there" starts at its first character, 180 ms into a message offset by 1.6 s.
    assert [round(start, 6) for _, start in elevenlabs] == [1.6, 1.78]
    # Cut at 0.9 s: "Hello," (0.0), "how" (0.5) and "can" (0.8) had started, "I" (1.0) not.
    assert "cut at 0.90 s, heard: 'Hello, how can '" in output
    assert "segment [0.00 → 0.90 s] 'Hello, how can'" in output


def test_truncation_gives_nothing_a_truncate_or_a_delete(tmp_path: Path) -> None:
    lines = dict(
        line.split(": ", 1) for line in run_example("truncation.py", cwd=tmp_path).splitlines()
    )
    events = {name: json.loads(value) for name, value in lines.items()}
    assert events["heard to the end"] is None
    assert events["cut after 1.005 s"]["audio_end_ms"] == 1005
    assert events["cut before 1 ms was heard"] == {
        "type": "conversation.item.delete",
        "item_id": "item_7",
    }
    assert events["cut in the fade tail, past what was sent"]["audio_end_ms"] == 3000


@pytest.mark.realtime
def test_wav_output_file_holds_exactly_what_was_heard(tmp_path: Path) -> None:
    output = run_example("wav_output.py", "answer.wav", cwd=tmp_path)
    match = re.search(r"heard: (\d+) samples, in answer.wav: (\d+)", output)
    assert match, output
    heard, in_file = int(match.group(1)), int(match.group(2))
    assert 0 < heard < RATE  # cut after 0.4 s of a 1 s answer
    assert in_file == heard


@pytest.mark.realtime
def test_speakers_fall_back_to_a_wav_file_without_an_output_device(tmp_path: Path) -> None:
    # A HOME without sound configuration: on a machine without a sound card the example
    # must take its documented NoOutputDeviceError path, PortAudio installed or not.
    env = {**os.environ, "HOME": str(tmp_path)}
    output = run_example("speakers.py", "fallback.wav", cwd=tmp_path, env=env)
    assert int(printed(output, "audio_samples")) == RATE // 2
    if "playing on the default output device" not in output:
        assert "no speakers" in output
        with wave.open(str(tmp_path / "fallback.wav"), "rb") as written:
            assert written.getnframes() == RATE // 2


@pytest.mark.realtime
def test_livekit_output_plays_through_a_real_source_without_a_room(tmp_path: Path) -> None:
    pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
    output = run_example("livekit_output.py", cwd=tmp_path)
    assert "room not connected: captions are not published" in output
    assert "audio_samples: 12000, heard: 'Half a second through LiveKit.'" in output


@pytest.mark.realtime
def test_the_livekit_agents_example_runs(tmp_path: Path) -> None:
    require_livekit_agents()
    output = run_example("livekit_agents.py", cwd=tmp_path)
    played = int(printed(output, "played").removesuffix(" samples"))
    # cut after 1 s of a 4 s speech, at a 10 ms tick, with its 10 ms fade counted
    assert 0 < played < RATE
    assert played % (RATE // 100) == 0
    heard, interrupted = re.fullmatch(
        r"(.*), interrupted=(\w+)", printed(output, "chat context")
    ).groups()
    text = ast.literal_eval(heard)
    assert interrupted == "True"
    assert text
    assert "The next train to Boston leaves at six forty from platform three.".startswith(text)
    assert len(text.split()) < 12


@pytest.mark.realtime
def test_command_line_writes_the_heard_audio_and_plays_it_back(tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="the [tts] extra is not installed")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    output = run_example("command_line.sh", cwd=tmp_path, env=env)
    said, played = re.findall(r"^item_1: (\w+) .* audio_samples=(\d+)", output, re.MULTILINE)
    assert said[0] == "interrupted"
    assert played[0] == "completed"
    with wave.open(str(tmp_path / "answer.wav"), "rb") as written:
        frames = written.getnframes()
    # The file holds what was heard of the cut answer, and plays back whole.
    assert int(said[1]) == frames == int(played[1])
    assert f"wrote answer.wav: {frames} samples at 24000 Hz" in output
    assert (tmp_path / "cut.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.realtime
def test_phone_server_reports_what_the_phone_played(tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="the [phone] extra is not installed")
    env = {key: value for key, value in os.environ.items() if key != "TWILIO_AUTH_TOKEN"}
    output = run_example("phone_server.py", cwd=tmp_path, env=env)
    match = re.search(r"CA_example: heard (\d+) samples at 24 kHz", output)
    truth = re.search(r"= (\d+) at 24 kHz", output)
    assert match, output
    assert truth, output
    heard, played = int(match[1]), int(truth[1])
    assert 0.7 * RATE < played < 1.0 * RATE  # cut 0.8 s in, over a link 80 ms each way
    assert abs(heard - played) <= RATE * 30 // 1000  # within 1.5 chunks (30 ms)


@pytest.mark.realtime
def test_phone_realtime_truncates_the_model_where_the_callers_phone_was(tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="the [realtime] extra is not installed")
    output = run_example("phone_realtime.py", cwd=tmp_path)
    heard = re.search(r"^CA_example: interrupted, heard (\d+) ms: '(.*)'$", output, re.MULTILINE)
    played = re.search(r"^the phone played (\d+) ms$", output, re.MULTILINE)
    assert heard, output
    assert played, output
    heard_ms, played_ms = int(heard[1]), int(played[1])
    assert played_ms > 800  # the model hears the caller 0.8 s in
    # never more than the phone played; the gap measures the scheduler (exact on the virtual
    # clock in tests/test_bridge_phone.py)
    assert played_ms - 250 <= heard_ms <= played_ms + 1
    assert "Your table is booked for eight.".startswith(heard[2])
    told = ast.literal_eval(printed(output, "the model was told"))
    assert told["type"] == "conversation.item.truncate"
    assert told["audio_end_ms"] == heard_ms


@pytest.mark.realtime
def test_webrtc_loopback_hears_what_the_receiver_confirmed(tmp_path: Path) -> None:
    pytest.importorskip("aiortc", reason="the [webrtc] extra is not installed")
    output = run_example("webrtc_loopback.py", cwd=tmp_path)
    assert printed(output, "confirmed by the receiver") == "True"
    heard = re.search(r"^heard: (\d+) samples at 48 kHz: '(.*)'$", output, re.MULTILINE)
    settled = re.search(r"^sent: (\d+), lost or discarded: (\d+)$", output, re.MULTILINE)
    delays = re.search(r"^sent to played: median (\d+) ms, max (\d+) ms$", output, re.MULTILINE)
    assert heard, output
    assert settled, output
    assert delays, output
    sent, lost = int(settled[1]), int(settled[2])
    assert int(heard[1]) == sent - lost
    assert 0.3 * 48000 < sent < 0.8 * 48000  # cut 0.6 s after play(), 5 ms fade included
    answer = "Your table is booked for eight, on the terrace by the river."
    assert heard[2]
    assert answer.startswith(heard[2].strip())
    assert heard[2].strip() != answer
    assert 0 < int(delays[1]) <= int(delays[2])


async def listening_url(server: asyncio.subprocess.Process) -> str:
    """The URL the command's start line names; its stderr if it ended before listening."""
    assert server.stdout is not None
    assert server.stderr is not None
    while line := await asyncio.wait_for(server.stdout.readline(), 60):
        if listening := re.search(r"listening on (ws://\S+?/)", line.decode()):
            return listening[1]
    err = await asyncio.wait_for(server.stderr.read(), 10)
    raise AssertionError(f"the command ended before it listened:\n{err.decode()}")


@pytest.mark.realtime
async def test_phone_command_answers_a_call_and_reports_each_turn(tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="the [tts] extra is not installed")
    pytest.importorskip("websockets", reason="the [phone] extra is not installed")
    from agent_playout.sinks.twilio import SimulatedCaller

    env = {key: value for key, value in os.environ.items() if key != "TWILIO_AUTH_TOKEN"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    server = await asyncio.create_subprocess_exec(
        "sh",
        str(EXAMPLES / "phone_command.sh"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, "PORT": "0", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
    )  # PORT=0: the command picks a free port and its start line says which
    assert server.stderr is not None
    try:
        url = await listening_url(server)
        async with SimulatedCaller(url) as caller:
            await asyncio.wait_for(caller.wait_closed(), 30)
        server.send_signal(signal.SIGTERM)
        err = await asyncio.wait_for(server.stderr.read(), 10)
        assert await asyncio.wait_for(server.wait(), 10) == 0, err.decode()
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    first, second = (
        json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()
    )
    assert first["interrupted"]
    assert not second["interrupted"]
    assert "Thanks for calling" in first["heard_text"]
    assert second["heard_text"].strip() == "Anything else?"
    cut = caller.cleared_at[0][1]
    assert abs(first["audio_samples"] - cut * 3) <= RATE * 30 // 1000
    assert (caller.played - cut) * 3 == second["audio_samples"]  # the whole second turn


@pytest.mark.realtime
def test_realtime_bridge_truncates_to_what_the_wav_file_holds(tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="the [realtime] extra is not installed")
    output = run_example("realtime_bridge.py", cwd=tmp_path)
    heard = ast.literal_eval(printed(output, "heard"))
    received = ast.literal_eval(printed(output, "server got"))
    with wave.open(str(tmp_path / "answer.wav")) as wav:
        played = wav.getnframes()
    assert heard["heard_samples"] == played
    assert received == heard["truncation"]
    assert received["audio_end_ms"] == played * 1000 // RATE
    assert 0.8 * RATE < played < 1.6 * RATE  # the barge-in came 1.2 s into the answer
    answer = "The next train to Boston leaves at six forty from platform three."
    assert heard["heard_text"]
    assert answer.startswith(heard["heard_text"].strip())


@pytest.mark.realtime
async def test_realtime_command_talks_to_the_model_with_the_key_and_reports_each_item(
    tmp_path: Path,
) -> None:
    pytest.importorskip("typer", reason="the [cli] extra is not installed")
    pytest.importorskip("websockets", reason="the [realtime] extra is not installed")
    import numpy as np

    from agent_playout.bridges.simulator import ScriptedResponse, SimulatedRealtimeServer

    answer = (np.sin(np.arange(RATE // 2) * 0.06) * 8000).astype(np.int16)  # half a second
    env = {**os.environ, "OPENAI_API_KEY": "sk-example", "OUT": "wav:answer.wav"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    responses = [ScriptedResponse.spoken("Hello there.", answer)]
    async with SimulatedRealtimeServer(responses, require_bearer="sk-example") as server:
        command = await asyncio.create_subprocess_exec(
            "sh",
            str(EXAMPLES / "realtime_command.sh"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**env, "URL": server.url},
        )
        try:
            await server.wait_sent("response.done", timeout=60)
            await server.close()  # the command plays what arrived, then exits 0
            out, err = await asyncio.wait_for(command.communicate(), 60)
        finally:
            if command.returncode is None:
                command.kill()
                await command.wait()
    assert command.returncode == 0, err.decode()
    assert server.received[0]["session"]["instructions"] == (
        "Greet the caller in one short sentence."
    )
    (item,) = [json.loads(line) for line in (tmp_path / "realtime.jsonl").read_text().splitlines()]
    assert item["interrupted"] is False
    assert item["truncation"] is None
    assert item["audio_samples"] == answer.size
    assert item["heard_text"].strip() == "Hello there."
    assert f"wrote answer.wav: {answer.size} samples at 24000 Hz" in out.decode()


TESTED = {
    "usage.py",
    "virtual_clock.py",
    "timestamps.py",
    "truncation.py",
    "wav_output.py",
    "speakers.py",
    "livekit_output.py",
    "livekit_agents.py",
    "command_line.sh",
    "phone_server.py",
    "phone_command.sh",
    "phone_realtime.py",
    "realtime_bridge.py",
    "realtime_command.sh",
    "webrtc_loopback.py",
}


def test_every_example_has_a_test() -> None:
    assert {path.name for path in EXAMPLES.iterdir() if path.is_file()} == TESTED


def readme_blocks() -> list[tuple[str, list[str]]]:
    """The README's fenced code blocks: (language, lines)."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    return [(language, body.splitlines()) for language, body in blocks]


def test_every_readme_python_block_names_its_example() -> None:
    python = [lines for language, lines in readme_blocks() if language == "python"]
    assert python
    for lines in python:
        assert re.fullmatch(r"# examples/\S+", lines[0]), f"no '# examples/...' line: {lines}"


def test_readme_code_is_the_examples_code() -> None:
    """A block marked ``# examples/name`` is that file's lines, in order; a line ``...``
    stands for lines left out, and a run between them must appear unbroken (dedented)."""
    marked = [
        (lines[0].removeprefix("# "), lines[1:])
        for _, lines in readme_blocks()
        if lines and re.fullmatch(r"# examples/\S+", lines[0])
    ]
    assert marked
    for name, lines in marked:
        source = [line.rstrip() for line in (ROOT / name).read_text().splitlines()]
        runs: list[list[str]] = [[]]
        for line in lines:
            if line.strip() == "...":
                runs.append([])
            else:
                runs[-1].append(line.rstrip())
        position = 0
        for run in filter(None, runs):
            text = textwrap.dedent("\n".join(run))
            found = next(
                (
                    i
                    for i in range(position, len(source) - len(run) + 1)
                    if textwrap.dedent("\n".join(source[i : i + len(run)])) == text
                ),
                None,
            )
            assert found is not None, f"README lines not found in order in {name}:\n" + "\n".join(
                run
            )
            position = found + len(run)
