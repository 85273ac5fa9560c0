"""The command's output: speakers, a WAV file or nothing, settled before anything plays."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("typer")
pytest.importorskip("rich")

import typer

from agent_playout.cli import output
from agent_playout.cli.output import Output, checked_output, parse_output


def test_an_output_is_speakers_null_or_a_wav_file_in_a_folder_that_exists(tmp_path: Path) -> None:
    assert parse_output("speakers") == Output("speakers")
    assert parse_output("null") == Output("null")
    assert parse_output(f"wav:{tmp_path}/a.wav") == Output("wav", tmp_path / "a.wav")
    for wrong in ("wav:", "wav: ", "file.wav", "Speakers"):
        with pytest.raises(typer.BadParameter, match="is not an output"):
            parse_output(wrong)
    with pytest.raises(typer.BadParameter, match="does not exist"):
        parse_output(f"wav:{tmp_path}/missing/a.wav")


def test_speakers_keep_the_fallback_file_for_a_device_that_fails_to_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(output, "no_speakers_reason", lambda: None)
    fallback = tmp_path / "fallback.wav"
    settled = checked_output(
        "speakers", fast=False, report=None, plot=None, fallback=fallback, force=True
    )
    assert settled == Output("speakers", fallback, force=True)


def test_without_speakers_the_fallback_file_is_the_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(output, "no_speakers_reason", lambda: "no sound card here")
    fallback = tmp_path / "fallback.wav"
    settled = checked_output(
        "speakers", fast=False, report=None, plot=None, fallback=fallback, force=False
    )
    assert settled == Output("wav", fallback)
    assert "no speakers: no sound card here" in capsys.readouterr().err
