"""The PNG timeline: a valid image whose colours show the cut."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agent_playout.core.truncation import TruncateItem
from agent_playout.engine.report import PlayoutReport, ReportWord

pytest.importorskip("matplotlib")
from matplotlib import image

from agent_playout.cli.plot import plot_timeline, timeline_png

RATE = 22050
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLAYED, UNPLAYED, CUT = "#1f77b4", "#c8c8c8", "#d62728"


def speech(seconds: float) -> npt.NDArray[np.int16]:
    """Bursts of tone, like words, so the waveform has shape."""
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None)
    signal: npt.NDArray[np.int16] = (np.sin(2 * np.pi * 220 * t) * envelope * 12000).astype(
        np.int16
    )
    return signal


def report(*, played: float, received: float, interrupted: bool) -> PlayoutReport:
    words = tuple(
        ReportWord(text, start, start < played or not interrupted)
        for text, start in [("one", 0.1), ("two", 0.6), ("three", 1.1), ("four", 1.6)]
    )
    return PlayoutReport(
        item_id="item_1",
        content_index=0,
        first_frame_latency=0.1,
        played_samples=round(played * 24000),
        sample_rate=24000,
        received_samples=round(received * RATE),
        input_sample_rate=RATE,
        audio_samples=round(played * 24000),
        underruns=0,
        underrun_seconds=0.0,
        interrupted=interrupted,
        error=None,
        heard_text=" ".join(word.text for word in words if word.heard),
        words=words,
        truncation=TruncateItem("item_1", 0, round(played * 1000)) if interrupted else None,
    )


def pixels_near(png: Path, colour: str, tolerance: float = 0.04) -> npt.NDArray[np.bool_]:
    rgb = image.imread(str(png))[:, :, :3]
    target = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    mask: npt.NDArray[np.bool_] = np.all(np.abs(rgb - target) < tolerance, axis=2)
    return mask


def waveform_rows(png: Path) -> npt.NDArray[np.bool_]:
    """The rows the waveform spans (where its played colour fills many columns), so text
    anti-aliasing elsewhere cannot pass for it."""
    rows: npt.NDArray[np.bool_] = pixels_near(png, PLAYED).sum(axis=1) > 40
    return rows


def test_plot_is_a_valid_png_of_one_panel_per_item(tmp_path: Path) -> None:
    path = tmp_path / "timeline.png"
    items = [
        (report(played=2.0, received=2.0, interrupted=False), speech(2.0)),
        (report(played=1.0, received=2.0, interrupted=True), speech(2.0)),
    ]

    assert plot_timeline(path, items) == path

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = image.imread(str(path)).shape[:2]
    assert (width, height) == (1320, round(2 * 3.4 * 110))


def test_interrupted_item_shows_the_cut_and_grey_after_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    plot_timeline(path, [(report(played=1.0, received=2.0, interrupted=True), speech(2.0))])

    band = waveform_rows(path)
    cut = pixels_near(path, CUT)
    played = pixels_near(path, PLAYED)[band]
    unplayed = pixels_near(path, UNPLAYED)[band]
    assert cut.sum() > 200
    cut_column = int(np.median(np.nonzero(cut)[1]))
    assert np.nonzero(played)[1].max() <= cut_column + 2
    assert unplayed.sum() > 1000
    assert np.nonzero(unplayed)[1].min() >= cut_column - 2


def test_completed_item_has_no_cut_and_no_grey_waveform(tmp_path: Path) -> None:
    path = tmp_path / "done.png"
    plot_timeline(path, [(report(played=2.0, received=2.0, interrupted=False), speech(2.0))])

    band = waveform_rows(path)
    assert band.sum() > 100
    assert pixels_near(path, CUT).sum() == 0
    assert pixels_near(path, UNPLAYED)[band].sum() == 0


def test_plot_needs_an_item(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one item"):
        plot_timeline(tmp_path / "none.png", [])


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    item = (report(played=1.0, received=2.0, interrupted=True), speech(2.0))
    with pytest.raises(ImportError, match=r"agent-playout\[plot\]"):
        plot_timeline(tmp_path / "x.png", [item])


def test_timeline_png_is_the_same_drawing_as_the_file(tmp_path: Path) -> None:
    items = [(report(played=1.2, received=2.0, interrupted=True), speech(2.0))]
    png = timeline_png(items)
    assert png.startswith(PNG_SIGNATURE)
    written = plot_timeline(tmp_path / "cut.png", items)
    assert image.imread(str(written)).shape == image.imread(io.BytesIO(png)).shape
