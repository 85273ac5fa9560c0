"""A PNG timeline of items as the listener heard them (the optional ``[plot]`` extra).

One panel per item: the waveform of the audio received for it, the part that played in
colour and the rest grey, the cut where the listener barged in, and each word at its start,
dark if it was heard and grey if not. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..engine.report import PlayoutReport

_INSTALL_HINT = "pip install 'agent-playout[plot]'"
_PLAYED = "#1f77b4"
_UNPLAYED = "#c8c8c8"
_CUT = "#d62728"
_ROW_HEIGHT = 0.3
_ENVELOPE_BINS = 1500
_TOP = 1.4
"""Room above the waveform (which spans -1..1) for the labels."""


def plot_timeline(
    path: str | Path, items: Sequence[tuple[PlayoutReport, npt.NDArray[np.int16]]]
) -> Path:
    """Draw one panel per ``(report, mono audio at report.input_sample_rate)`` into ``path``."""
    target = Path(path)
    _figure(items).savefig(target, dpi=110)
    return target


def timeline_png(items: Sequence[tuple[PlayoutReport, npt.NDArray[np.int16]]]) -> bytes:
    """The same drawing as ``plot_timeline``, as PNG bytes (the playground serves them)."""
    png = io.BytesIO()
    _figure(items).savefig(png, dpi=110, format="png")
    return png.getvalue()


def _figure(items: Sequence[tuple[PlayoutReport, npt.NDArray[np.int16]]]) -> Any:
    """The timeline's figure, laid out and drawn, on matplotlib's Agg canvas."""
    if not items:
        raise ValueError("plot_timeline needs at least one item")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"plotting needs matplotlib: {_INSTALL_HINT}") from error
    # A bare Figure on the Agg canvas: no pyplot, so the application's backend is untouched.
    figure = Figure(figsize=(12, 3.4 * len(items)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(items), 1, squeeze=False)
    for ax, (report, audio) in zip(axes[:, 0], items, strict=True):
        _draw_item(ax, report, audio)
    axes[-1, 0].set_xlabel("seconds from the item's first sample")
    figure.draw_without_rendering()  # fixes the layout, so words can be measured
    for ax, (report, _) in zip(axes[:, 0], items, strict=True):
        rows = _draw_words(ax, report)
        ax.set_ylim(-1.05 - _ROW_HEIGHT * max(rows, 1), _TOP)
    return figure


def _draw_item(ax: Any, report: PlayoutReport, audio: npt.NDArray[np.int16]) -> None:
    """The waveform, played part, cut and labels of one item (its words come later)."""
    rate = report.input_sample_rate
    played = report.played_seconds
    duration = max(audio.size / rate, played, 0.1)
    times, low, high = _envelope(audio, rate)
    heard = times <= played
    ax.fill_between(times, low, high, where=~heard, color=_UNPLAYED, linewidth=0, step="mid")
    ax.fill_between(times, low, high, where=heard, color=_PLAYED, linewidth=0, step="mid")
    ax.axvspan(0, played, color=_PLAYED, alpha=0.06, linewidth=0)
    if report.interrupted:
        ax.vlines(played, -1.05, _TOP, color=_CUT, linewidth=2)  # above the word labels
        ax.annotate(
            f"barge-in: cut at {played:.2f} s",
            (played, _TOP),
            xytext=(6, -2),
            textcoords="offset points",
            color=_CUT,
            fontweight="bold",
            va="top",
        )
    played_label = "played (bold words were heard)" if report.interrupted else "played in full"
    ax.text(0.005, 0.97, played_label, transform=ax.transAxes, color=_PLAYED, va="top", fontsize=9)
    if report.interrupted:
        ax.text(
            0.995,
            0.97,
            "received, never played (grey words were not heard)",
            transform=ax.transAxes,
            color="#8c8c8c",
            va="top",
            ha="right",
            fontsize=9,
        )
    ax.set_xlim(0, duration * 1.01)
    ax.set_ylim(-1.05 - _ROW_HEIGHT * 2, _TOP)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(_title(report), loc="left", fontsize=10)


def _envelope(
    audio: npt.NDArray[np.int16], rate: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Min and max of the audio in bins of at least 10 ms (a voice's pitch period), scaled
    to [-1, 1]: a waveform that reads at a glance however long the item is."""
    if audio.size == 0:
        empty = np.zeros(1)
        return empty, empty, empty
    bin_size = max(audio.size // _ENVELOPE_BINS, rate // 100, 1)
    usable = audio[: audio.size - audio.size % bin_size] if audio.size >= bin_size else audio
    bins = usable.reshape(-1, bin_size).astype(np.float64)
    peak = max(float(np.abs(bins).max()), 1.0)
    times = (np.arange(bins.shape[0]) + 0.5) * bin_size / rate
    return times, bins.min(axis=1) / peak, bins.max(axis=1) / peak


def _draw_words(ax: Any, report: PlayoutReport) -> int:
    """Each word under the waveform at its start, in the first row where it does not overlap
    a word already placed (measured in pixels); returns the number of rows used."""
    renderer = ax.figure.canvas.get_renderer()
    row_ends: list[float] = []
    for word in report.words:
        if word.start is None:
            continue
        style = {"color": "black", "fontweight": "bold"} if word.heard else {"color": "#8c8c8c"}
        label = ax.text(word.start, 0, word.text, fontsize=8.5, va="center", ha="left", **style)
        label.set_in_layout(False)
        left, right = _pixel_span(label, renderer)
        row = next((r for r, end in enumerate(row_ends) if end < left), len(row_ends))
        if row == len(row_ends):
            row_ends.append(right)
        row_ends[row] = right + 4
        y = -1.2 - _ROW_HEIGHT * row
        label.set_y(y)
        ax.plot(
            [word.start, word.start], [y + 0.12, 1.0], color="#00000018", linewidth=0.8, zorder=0
        )
    return len(row_ends)


def _pixel_span(label: Any, renderer: Any) -> tuple[float, float]:
    """Left and right edge of a drawn label, in pixels."""
    extent = label.get_window_extent(renderer)
    return float(extent.x0), float(extent.x1)


def _title(report: PlayoutReport) -> str:
    """What happened to the item and what was heard, in one line."""
    heard = report.heard_text.strip() or "(nothing)"
    if len(heard) > 90:
        heard = "…" + heard[-89:]
    if report.interrupted:
        event = report.truncation.to_event() if report.truncation is not None else {}
        cut = f"audio_end_ms={event['audio_end_ms']}" if "audio_end_ms" in event else "deleted"
        return (
            f"{report.item_id}: interrupted after {report.played_seconds:.2f} s"
            f" ({cut}) — heard: “{heard}”"
        )
    return f"{report.item_id}: completed, all {report.played_seconds:.2f} s heard — “{heard}”"
