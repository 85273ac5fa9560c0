"""The ``agent-playout realtime`` command: talk to a realtime speech-to-speech model.

It connects to the endpoint (``--url``, with ``--header`` for the key), asks for 24 kHz
PCM16 output (``session.update``) and one response (``response.create``), and plays each
item the model sends with live captions. On the server's ``speech_started`` the playing
item is interrupted and its truncation sent at once (``RealtimeBridge``); each item's
outcome is printed and, with ``--report``, appended as one JSON line. Every option is
checked before anything connects; the session itself is ``realtime_session``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
from pathlib import Path
from typing import Annotated

import typer

from .exits import fail, interrupted
from .output import Output, checked_output, parse_output, writable
from .realtime_options import REALTIME_EXTRA, check_realtime_url, dialect_for, parse_headers
from .realtime_session import RealtimeSettings, run_session
from .service import ReportFile
from .session import RunConsole

REALTIME_FALLBACK_WAV = "realtime.wav"
"""Where the model's audio goes when there are no speakers."""
OPENAI_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"

RealtimeReportOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        dir_okay=False,
        help="Append each item's outcome to this file as one JSON line, written as soon as"
        " the item ends: item_id, content_index, audio_samples (24 kHz), audio_end_ms,"
        " interrupted, heard_text and the truncation sent.",
    ),
]
FalseInterruptionOption = Annotated[
    float | None,
    typer.Option(
        metavar="SECONDS",
        help="On speech_started, pause instead of interrupting; if the user's turn brings"
        " no words within this many seconds after speech_stopped, play on from the exact"
        " sample. Asks for server VAD that keeps the response on speech"
        " (interrupt_response false); a real turn then cancels it.",
    ),
]
REALTIME_EPILOG = (
    f"OpenAI: agent-playout realtime --url '{OPENAI_URL}'"
    ' --header "Authorization: Bearer $OPENAI_API_KEY" (the header "OpenAI-Beta:'
    " realtime=v1\" selects the beta API's event shapes). Runs until the server closes the"
    " connection (exit 0, once what was received has played); Ctrl-C (exit 130) or SIGTERM"
    " (exit 0) first interrupts the item playing, truncates and reports it. Exit 1 if it"
    " cannot connect, the connection ends abnormally or the report cannot be written; 2 for"
    " bad arguments; 141 when the output pipe closed."
)


def check_options(
    *,
    url: str,
    header: list[str] | None,
    instructions: str | None,
    out: str,
    report: Path | None,
    false_interruption_timeout: float | None,
) -> RealtimeSettings:
    """Refuse bad options (exit 2, naming the option) before anything is loaded."""
    checked_url = check_realtime_url(url, "'--url'")
    headers = tuple(parse_headers(header, "'--header'"))
    parse_output(out)
    if report is not None:
        writable(report, "'--report'")
    if false_interruption_timeout is not None and not (
        math.isfinite(false_interruption_timeout) and false_interruption_timeout > 0
    ):
        raise typer.BadParameter(
            f"must be more than 0 seconds, got {false_interruption_timeout}",
            param_hint="'--false-interruption-timeout'",
        )
    return RealtimeSettings(
        checked_url, headers, dialect_for(headers), instructions, false_interruption_timeout
    )


def talk_to_model(
    *,
    url: str,
    header: list[str] | None,
    instructions: str | None,
    out: str,
    report: Path | None,
    false_interruption_timeout: float | None,
    force: bool,
) -> None:
    """The ``realtime`` command: check, settle the output, then run the session."""
    settings = check_options(
        url=url,
        header=header,
        instructions=instructions,
        out=out,
        report=report,
        false_interruption_timeout=false_interruption_timeout,
    )
    if importlib.util.find_spec("websockets") is None:
        fail(f"the realtime command needs websockets (the 'realtime' extra): {REALTIME_EXTRA}")
    output: Output = checked_output(
        out,
        fast=False,
        report=report,
        plot=None,
        fallback=Path(REALTIME_FALLBACK_WAV),
        force=force,
    )
    report_file = None if report is None else ReportFile(report)
    console = RunConsole()
    try:
        stop = asyncio.run(run_session(settings, output, console, report_file))
    except KeyboardInterrupt:
        interrupted()
    stop.exit(report_file)
