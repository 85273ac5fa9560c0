"""The CLI's terminal output (rich): live captions while an item plays, then its result.

In a terminal the caption updates in place, word by word as each is heard; when output is
not a terminal (CI logs, pipes) each sentence is one plain line once it has been heard.
"""

from __future__ import annotations

import json
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..engine.report import PlayoutReport
from ..transcript.forwarder import TranscriptForwarder
from ..transcript.sentences import TranscriptSegment


class Captions(Protocol):
    """Shows one item's captions while it plays."""

    def watch(self, forwarder: TranscriptForwarder) -> None: ...

    def finish(self, report: PlayoutReport | None) -> None:
        """The item ended (``report`` is None when it failed to run)."""
        ...


class PlainCaptions:
    """One line per heard sentence, with its times on the item's clock."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def watch(self, forwarder: TranscriptForwarder) -> None:
        forwarder.on("segment", self._on_segment)

    def _on_segment(self, segment: TranscriptSegment) -> None:
        if segment.final:
            self._console.print(
                f"  [{segment.start:5.2f} → {segment.end:5.2f} s] {segment.text}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def finish(self, report: PlayoutReport | None) -> None:
        """Nothing to tidy: every line is already out."""


class LiveCaptions:
    """The item's text in place: heard words bright, the words still to come dim."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None
        self._forwarder: TranscriptForwarder | None = None

    def watch(self, forwarder: TranscriptForwarder) -> None:
        self._forwarder = forwarder
        self._live = Live(self._render(0.0), console=self._console, auto_refresh=False)
        self._live.start()
        forwarder.on("segment", self._on_segment)

    def _on_segment(self, segment: TranscriptSegment) -> None:
        if self._live is not None:  # a last segment may come once the item has finished
            self._live.update(self._render(segment.end), refresh=True)

    def _render(self, seconds: float, *, cut: bool = False) -> Text:
        forwarder = self._forwarder
        heard = "" if forwarder is None else forwarder.played_text
        rest = "" if forwarder is None else forwarder.text[len(heard) :]
        line = Text.assemble(
            ("  ✂ ", "red") if cut else ("  ▶ ", "cyan"), (f"{seconds:5.2f} s  ", "dim")
        )
        line.append(heard, style="bold")
        line.append(rest, style="dim strike" if cut else "dim")
        return line

    def finish(self, report: PlayoutReport | None) -> None:
        if self._live is None:
            return
        if report is not None:
            self._live.update(
                self._render(report.played_seconds, cut=report.interrupted), refresh=True
            )
        self._live.stop()
        self._live = None


def captions_for(console: Console) -> Captions:
    """Live captions in a terminal, plain lines elsewhere."""
    return LiveCaptions(console) if console.is_terminal else PlainCaptions(console)


def print_result(console: Console, report: PlayoutReport) -> None:
    """The item's outcome: what played, the exact count, the heard text, the event to send."""
    state = "[bold red]interrupted[/]" if report.interrupted else "[bold green]completed[/]"
    latency = report.first_frame_latency
    console.print(
        f"{report.item_id}: {state} after {report.played_seconds:.2f} s of"
        f" {report.received_seconds:.2f} s received · audio_samples={report.audio_samples}"
        f" · first frame {'-' if latency is None else f'{latency * 1000:.0f} ms'}"
        f" · underruns {report.underruns if report.underruns is not None else '-'}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  heard: {report.heard_text.strip()!r}", markup=False, highlight=False, soft_wrap=True
    )
    if report.error is not None:
        console.print(f"  error: {report.error}", markup=False, style="red")
    if report.truncation is not None:
        event = json.dumps(report.truncation.to_event())
        console.print(
            f"  realtime API event: {event}", markup=False, highlight=False, soft_wrap=True
        )
    else:
        console.print("  realtime API event: none (the whole item was heard)", highlight=False)
