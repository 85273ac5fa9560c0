"""Recordings for ``play``: any format libsndfile reads, as interleaved int16, or refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("typer")
pytest.importorskip("soundfile")

import soundfile
import typer

from agent_playout.cli.recording import read_audio


def test_a_stereo_float_file_reads_as_interleaved_int16_with_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    frames = np.array([[0.5, -0.5], [1.0, -1.0], [2.0, -2.0]], dtype=np.float32)
    soundfile.write(str(path), frames, 16000, subtype="FLOAT")
    audio, rate, channels = read_audio(path)
    assert (rate, channels) == (16000, 2)
    assert audio.dtype == np.int16
    assert audio.tolist() == [16384, -16384, 32767, -32768, 32767, -32768]


def test_a_file_that_is_not_audio_is_a_usage_error(tmp_path: Path) -> None:
    recording = tmp_path / "notes.wav"
    recording.write_text("not audio")
    with pytest.raises(typer.BadParameter, match="is not an audio file this can read"):
        read_audio(recording)


def test_a_file_without_audio_is_a_usage_error(tmp_path: Path) -> None:
    recording = tmp_path / "empty.wav"
    soundfile.write(str(recording), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(typer.BadParameter, match="holds no audio"):
        read_audio(recording)
