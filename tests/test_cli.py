"""The ``agent-playout`` command: help, outputs, reports, plots, errors and terminal output.

Most runs use ``--fast`` (a virtual clock) and the espeak voice, so they take well under a
second of audio time each; the real-time ones are marked and short.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

pytest.importorskip("typer")
pytest.importorskip("rich")

from rich.console import Console

import agent_playout
from agent_playout import AgentPlayout, NullSink, VirtualClock
from agent_playout.cli import main, output, session
from agent_playout.cli.display import LiveCaptions, PlainCaptions, captions_for
from agent_playout.cli.model_stream import speak, voice_pieces
from agent_playout.tts import VoiceUnavailableError, available_voices, load_voice

from .conftest import hide_portaudio, require_portaudio

needs_espeak = pytest.mark.skipif("espeak" not in available_voices(), reason="no espeak voice")
needs_piper = pytest.mark.skipif("piper" not in available_voices(), reason="no piper voice")
TEXT = "The next train leaves at six forty from platform three. It is on time today."
CAPTION_LINE = re.compile(r"^  \[ *\d+\.\d\d → +\d+\.\d\d s\] \S")


@pytest.fixture(autouse=True)
def _wide_terminal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Messages are not wrapped mid-phrase, and fallback files land in a temporary folder."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wav_frames(path: Path) -> int:
    with wave.open(str(path)) as wav:
        return int(wav.getnframes())


def single_report(path: Path) -> dict[str, Any]:
    """The one item of a ``--report`` file, after checking the file's shape."""
    document = json.loads(path.read_text())
    assert set(document) == {"version", "items"}
    assert document["version"] == agent_playout.__version__
    (item,) = document["items"]
    assert isinstance(item, dict)
    return item


def write_wav(path: Path, rate: int, channels: int, seconds: float, width: int = 2) -> None:
    t = np.arange(round(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 200 * t) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        data = np.repeat(mono, channels).astype("<i2").tobytes()
        wav.writeframes(data if width == 2 else bytes(len(data) // 2))


# help


def test_help_lists_the_three_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("say", "play", "demo"):
        assert re.search(rf"│ {command} ", out), command


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("say", ["--voice", "--out", "--interrupt-at", "--report", "--plot", "--fast", "TEXT"]),
        ("play", ["--text", "--out", "--interrupt-at", "--report", "--plot", "--fast", "FILE"]),
        ("demo", ["--voice", "--out", "--interrupt-at", "--report", "--plot", "--fast"]),
    ],
)
def test_each_command_documents_its_options(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str]
) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    for option in options:
        assert option in out
    assert "speakers|wav:PATH|null" in out


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent_playout", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "120", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout


# say, play, demo on the virtual clock


@needs_espeak
def test_say_writes_exactly_the_reported_samples_and_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, report_path, plot = tmp_path / "say.wav", tmp_path / "say.json", tmp_path / "say.png"
    code, printed, _ = run(
        capsys, "say", TEXT, "--voice", "espeak", "--out", f"wav:{out}", "--fast",
        "--interrupt-at", "1.2", "--report", str(report_path), "--plot", str(plot),
    )  # fmt: skip
    assert code == 0
    report = single_report(report_path)
    assert wav_frames(out) == report["played_samples"] > 0
    assert report["item_id"] == "item_1"
    assert report["interrupted"] is True
    assert (report["sample_rate"], report["input_sample_rate"]) == (24000, 22050)
    assert report["audio_samples"] == report["played_samples"]
    assert 1.2 <= report["played_samples"] / 24000 <= 1.21
    assert report["received_samples"] > report["played_samples"] * 22050 / 24000
    assert report["truncation"] == {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": report["audio_samples"] * 1000 // 24000,
    }
    heard = [word for word in report["words"] if word["heard"]]
    assert 0 < len(heard) < len(TEXT.split())
    assert [word["heard"] for word in report["words"]] == [True] * len(heard) + [False] * (
        len(report["words"]) - len(heard)
    )
    voice = load_voice("espeak")
    timings = [w for chunk in voice.synthesize(TEXT) for w in chunk.words]
    assert [(w["text"], w["start"]) for w in report["words"]] == [
        (w.text, w.start / voice.sample_rate) for w in timings
    ]  # the captions use the voice's own word timings, not an estimate
    assert report["heard_text"].split() == [word["text"] for word in heard]
    assert TEXT.startswith(report["heard_text"].strip())
    assert f"audio_samples={report['audio_samples']}" in printed
    assert json.dumps(report["truncation"]) in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_espeak
def test_say_to_the_end_hears_every_word_and_needs_no_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report_path = tmp_path / "r.json"
    code, printed, _ = run(
        capsys, "say", "Hello there.", "--voice", "espeak", "--out", "null", "--fast",
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 0
    report = single_report(report_path)
    assert report["interrupted"] is False
    assert report["truncation"] is None
    assert report["heard_text"].strip() == "Hello there."
    assert abs(report["played_samples"] - report["received_samples"] * 24000 / 22050) <= 1
    assert "completed" in printed
    assert "none (the whole item was heard)" in printed


@needs_espeak
def test_demo_plays_a_completed_and_an_interrupted_item(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, report_path = tmp_path / "demo.wav", tmp_path / "demo.json"
    code, printed, _ = run(
        capsys, "demo", "--voice", "espeak", "--out", f"wav:{out}", "--fast",
        "--report", str(report_path),
    )  # fmt: skip
    assert code == 0
    first, second = json.loads(report_path.read_text())["items"]
    assert wav_frames(out) == first["played_samples"] + second["played_samples"]
    assert (first["interrupted"], second["interrupted"]) == (False, True)
    assert first["truncation"] is None
    assert second["truncation"]["type"] == "conversation.item.truncate"
    assert second["truncation"]["audio_end_ms"] == second["audio_samples"] * 1000 // 24000
    assert 2500 <= second["truncation"]["audio_end_ms"] <= 2510
    assert "user barges in" in printed
    assert json.dumps(second["truncation"]) in printed


@needs_piper
def test_demo_with_the_default_piper_voice(capsys: pytest.CaptureFixture[str]) -> None:
    code, printed, _ = run(capsys, "demo", "--voice", "piper", "--out", "null", "--fast")
    assert code == 0
    assert "voice: piper" in printed
    assert "item_1: completed" in printed
    assert "item_2: interrupted after 2.50 s" in printed


def test_play_resamples_a_recording_of_any_rate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording, out, report_path = tmp_path / "in.wav", tmp_path / "out.wav", tmp_path / "r.json"
    write_wav(recording, 16000, 2, 1.5)
    code, _, _ = run(
        capsys, "play", str(recording), "--text", "One two three four five.",
        "--out", f"wav:{out}", "--fast", "--report", str(report_path),
    )  # fmt: skip
    assert code == 0
    report = single_report(report_path)
    assert (report["input_sample_rate"], report["received_samples"]) == (16000, 24000)
    assert report["played_samples"] == wav_frames(out) == 36000
    assert report["heard_text"] == "One two three four five."


def test_play_interrupted_reports_unheard_words_without_a_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording, report_path = tmp_path / "in.wav", tmp_path / "r.json"
    write_wav(recording, 44100, 1, 3.0)
    code, _, _ = run(
        capsys, "play", str(recording), "--text", "One two three four five six.",
        "--out", "null", "--fast", "--interrupt-at", "1.0", "--report", str(report_path),
    )  # fmt: skip
    assert code == 0
    report = single_report(report_path)
    assert report["played_samples"] == 24000
    unheard = [word for word in report["words"] if not word["heard"]]
    assert unheard
    assert all(word["start"] is None for word in unheard)


# terminal output


@needs_espeak
def test_output_is_plain_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code, printed, _ = run(
        capsys, "say", TEXT, "--voice", "espeak", "--out", "null", "--fast"
    )  # fmt: skip
    assert code == 0
    assert "\x1b[" not in printed
    captions = [line for line in printed.splitlines() if CAPTION_LINE.match(line)]
    assert [line.split("] ", 1)[1] for line in captions] == [
        "The next train leaves at six forty from platform three.",
        "It is on time today.",
    ]


def test_captions_are_live_in_a_terminal_and_plain_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(captions_for(terminal), LiveCaptions)
    assert isinstance(captions_for(pipe), PlainCaptions)


@needs_espeak
async def test_live_captions_redraw_in_place_and_mark_the_cut() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200)
    captions = LiveCaptions(console)
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(24000, clock=clock), clock=clock)
    voice = load_voice("espeak")
    spoken = await clock.run(
        speak(
            playout,
            voice_pieces(voice, TEXT, in_thread=False),
            item_id="item_1",
            sample_rate=voice.sample_rate,
            interrupt_after=1.0,
            watch=captions.watch,
        )
    )
    captions.finish(spoken.report)
    screen = buffer.getvalue()
    assert "\x1b[2K" in screen  # lines are cleared and redrawn, not appended
    assert screen.count("The next") > 3  # one redraw per heard word
    assert "✂" in screen
    assert spoken.report.heard_text.strip() in screen


# errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["say", "hi", "--out", "bogus"], "is not an output; use speakers, null or wav:PATH"),
        (["say", "hi", "--out", "wav:"], "is not an output"),
        (["say", "hi", "--interrupt-at", "-1"], "--interrupt-at"),
        (["say", "hi", "--voice", "bob"], "'bob' is not one of"),
        (["say", "hi", "--fast"], "--fast runs on a virtual clock"),
        (["say", "   "], "there is nothing to say"),
        (["play", "missing.wav"], "does not exist"),
        (["demo", "--loud"], "No such option"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in " ".join(err.split()), err
    assert out == ""


def test_a_missing_voice_exits_1_and_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(name: str) -> Any:
        raise VoiceUnavailableError(f"the {name} voice needs piper-tts; pip install ...[tts]")

    monkeypatch.setattr(session, "load_voice", unavailable)
    code, _, err = run(capsys, "say", "hi", "--voice", "piper", "--out", "null", "--fast")
    assert code == 1
    assert "error: the piper voice needs piper-tts" in err


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name in names else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_without_the_cli_extra_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_modules(monkeypatch, "typer", "rich")
    code, out, err = run(capsys, "demo")
    assert code == 1
    assert out == ""
    assert "needs typer and rich (the 'cli' extra): pip install 'agent-playout[cli]'" in err


def test_plot_without_matplotlib_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_modules(monkeypatch, "matplotlib")
    code, _, err = run(capsys, "say", "hi", "--out", "null", "--fast", "--plot", "x.png")
    assert code == 1
    assert "pip install 'agent-playout[plot]'" in err


# speakers


def no_output_device(monkeypatch: pytest.MonkeyPatch) -> None:
    require_portaudio()
    monkeypatch.setattr(output, "output_device_available", lambda: False)


def no_sounddevice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)


@pytest.mark.realtime
@needs_espeak
@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (no_output_device, "no sound output device was found (no sound card or sound server)"),
        (no_sounddevice, "sounddevice is not installed (pip install 'agent-playout[device]')"),
        (hide_portaudio, "the PortAudio library is missing (apt-get install libportaudio2)"),
    ],
)
def test_speakers_fall_back_to_a_wav_file_and_say_why(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cause: Any,
    reason: str,
) -> None:
    cause(monkeypatch)
    code, printed, err = run(
        capsys, "say", "Hi there.", "--voice", "espeak", "--interrupt-at", "0.3",
        "--report", "r.json",
    )  # fmt: skip
    assert code == 0
    assert f"no speakers: {reason}; writing the audio to agent-playout.wav instead" in err
    report = single_report(tmp_path / "r.json")
    assert wav_frames(tmp_path / "agent-playout.wav") == report["played_samples"]
    assert 0.3 <= report["played_samples"] / 24000 < 0.4
    assert "wrote agent-playout.wav" in printed


# version and help


def pyproject_version() -> str:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    version: str = tomllib.loads(pyproject.read_text())["project"]["version"]
    return version


def test_version_is_the_projects_in_the_package_and_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert agent_playout.__version__ == pyproject_version()
    code, out, _ = run(capsys, "--version")
    assert (code, out) == (0, f"agent-playout {pyproject_version()}\n")


@pytest.mark.parametrize(
    ("command", "usage", "shown"),
    [
        ([], "[OPTIONS] COMMAND", ["Print the version and exit.", "Exit codes:"]),
        (["say"], "say [OPTIONS] TEXT", ["What the agent says.", "--force"]),
        (["play"], "play [OPTIONS] FILE", ["A recording: WAV", "--force"]),
        (["demo"], "demo [OPTIONS]", ["Seconds of the second answer", "--force"]),
    ],
)
def test_help_fits_80_columns_without_type_tags(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    usage: str,
    shown: list[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert re.search(r"<\w[^>]*>|\{[A-Z]+\}", out) is None, out  # <bool>, <str>, {TEXT}...
    assert "[default: None]" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert f"Usage: agent-playout {usage}" in out
    flat = " ".join(out.replace("│", " ").split())
    for text in shown:
        assert text in flat, text


# input files


TONE_RATE = 16000


def tone(seconds: float, rate: int = TONE_RATE, channels: int = 1) -> np.ndarray:
    """``write_wav``'s 200 Hz tone as float in [-1, 1], shaped frames x channels."""
    t = np.arange(round(seconds * rate)) / rate
    mono = np.sin(2 * np.pi * 200 * t) * 8000 / 32768
    return np.repeat(mono[:, None], channels, axis=1)


def played_audio(capsys: pytest.CaptureFixture[str], recording: Path, out: Path) -> np.ndarray:
    code, _, err = run(capsys, "play", str(recording), "--out", f"wav:{out}", "--fast")
    assert code == 0, err
    audio, rate = soundfile.read(str(out), dtype="int16")
    assert rate == 24000
    return np.asarray(audio)


@pytest.mark.parametrize(
    ("name", "subtype", "channels", "tolerance"),
    [
        ("float.wav", "FLOAT", 1, 4),
        ("double.wav", "DOUBLE", 1, 4),
        ("pcm24.wav", "PCM_24", 1, 4),
        ("pcm32.wav", "PCM_32", 1, 4),
        ("u8.wav", "PCM_U8", 1, 300),
        ("voice.flac", "PCM_16", 1, 4),
        ("stereo.wav", "FLOAT", 2, 4),
        ("voice.aiff", "PCM_24", 1, 4),
    ],
)
def test_play_reads_common_audio_files_as_the_16_bit_wav_of_the_same_sound(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    subtype: str,
    channels: int,
    tolerance: int,
) -> None:
    reference = tmp_path / "reference.wav"
    write_wav(reference, TONE_RATE, 1, 1.0)  # the same tone through the stdlib's wave
    expected = played_audio(capsys, reference, tmp_path / "expected.wav")
    recording = tmp_path / name
    soundfile.write(str(recording), tone(1.0, channels=channels), TONE_RATE, subtype=subtype)
    heard = played_audio(capsys, recording, tmp_path / "heard.wav")
    assert heard.shape == expected.shape == (24000,)
    assert int(np.max(np.abs(heard.astype(np.int32) - expected))) <= tolerance


def test_play_clips_float_audio_beyond_full_scale(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording = tmp_path / "loud.wav"
    soundfile.write(str(recording), 8 * tone(0.5, rate=24000), 24000, subtype="FLOAT")
    heard = played_audio(capsys, recording, tmp_path / "heard.wav")
    assert (heard.max(), heard.min()) == (32767, -32768)
    assert np.count_nonzero(heard == 32767) > 1000  # clipped, not wrapped around


# the fallback file


def test_without_speakers_an_existing_fallback_file_is_kept_unless_forced(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(output, "no_speakers_reason", lambda: "no sound card here")
    recording = tmp_path / "in.wav"
    soundfile.write(str(recording), tone(0.2), TONE_RATE, subtype="PCM_16")
    earlier = tmp_path / "agent-playout.wav"
    earlier.write_bytes(b"an earlier run's audio")
    code, out, err = run(capsys, "play", str(recording))
    assert code == 1
    assert out == ""
    assert (
        "error: no speakers (no sound card here), and agent-playout.wav already exists: pass"
        " --force to overwrite it, or choose a file with --out wav:PATH" in " ".join(err.split())
    )
    assert earlier.read_bytes() == b"an earlier run's audio"
    code, _, err = run(capsys, "play", str(recording), "--force")
    assert code == 0
    assert "no speakers: no sound card here; overwriting agent-playout.wav instead" in err
    assert wav_frames(earlier) == 4800


# signals and pipes, in a real process


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "agent_playout", *argv]


def child_env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def assert_valid_wav(path: Path) -> int:
    """The file's header agrees with its size; returns its frames."""
    frames = wav_frames(path)
    assert path.stat().st_size == 44 + 2 * frames
    assert soundfile.info(str(path)).frames == frames
    return frames


def default_sigint() -> None:
    """A child started from a non-interactive shell may inherit SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.realtime
@needs_espeak
def test_ctrl_c_exits_130_with_one_line_and_a_valid_partial_wav(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "partial.wav"
    child = subprocess.Popen(
        command("say", "Hello there. This sentence is still playing when the listener"
                " presses control C.", "--voice", "espeak", "--out", f"wav:{out}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        preexec_fn=default_sigint,
    )  # fmt: skip
    assert child.stdout is not None
    lines = []
    while not CAPTION_LINE.match(line := child.stdout.readline()):
        assert line, "the command ended before its first caption"
        lines.append(line)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130
    assert err == "agent-playout: interrupted\n"
    heard = assert_valid_wav(out)
    assert 0.5 * 24000 < heard < 4 * 24000


@pytest.mark.realtime
@needs_espeak
def test_a_closed_stdout_ends_the_run_quietly_with_141_and_a_valid_wav(tmp_path: Path) -> None:
    out = tmp_path / "piped.wav"
    child = subprocess.Popen(
        command("say", "Hello there. And a second sentence after it.", "--voice", "espeak",
                "--out", f"wav:{out}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stderr is not None
    assert child.stdout.readline().startswith("voice: espeak")
    child.stdout.close()  # as `| head -1` does once it has its line
    err = child.stderr.read()
    assert child.wait(timeout=30) == 141
    assert err == ""  # no "Task exception was never retrieved", no traceback
    assert assert_valid_wav(out) < 2 * 24000
