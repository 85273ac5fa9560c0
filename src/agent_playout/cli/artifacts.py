"""What a run leaves behind on request: the JSON report (``--report``) and the plot (``--plot``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from .. import __version__
from .model_stream import Spoken


def report_document(spoken: Sequence[Spoken]) -> dict[str, Any]:
    """What ``--report`` writes, the same shape for every command:
    ``{"version": <agent-playout's version>, "items": [one report object per item]}``."""
    return {"version": __version__, "items": [item.report.to_dict() for item in spoken]}


def write_artifacts(
    spoken: Sequence[Spoken],
    *,
    report: Path | None,
    plot: Path | None,
    console: Console,
) -> None:
    """The JSON report and the plot, each if asked for."""
    if report is not None:
        document = json.dumps(report_document(spoken), indent=2, ensure_ascii=False)
        report.write_text(document + "\n")
        console.print(f"wrote {report}", markup=False, highlight=False)
    if plot is not None:
        from .plot import plot_timeline

        plot_timeline(plot, [(item.report, item.audio) for item in spoken])
        console.print(f"wrote {plot}", markup=False, highlight=False)
