"""One ``agent-playout realtime`` session: connect, ask for a response, play what comes.

The ``RealtimeBridge`` plays the model's items on an ``AgentPlayout`` and sends each
truncation on the connection; this module shows each item's captions while it plays,
then appends its report line (flushed at once) before printing its result, so an item
that is printed is on disk. The session ends when the server closes the connection
(after the items received have played), or on the first SIGINT or SIGTERM: then the item
playing is interrupted and its truncation sent before the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console

from ..bridges.formats import AudioFormat, Dialect, session_update
from ..clock import MonotonicClock
from ..engine.handle import PlayoutHandle
from ..engine.playout import AgentPlayout
from ..engine.report import PlayoutReport
from ..transcript.forwarder import TranscriptForwarder
from .display import Captions, captions_for
from .exits import fail
from .output import Output, open_sink
from .realtime_options import shown_error, shown_url
from .service import ConsoleLog, ReportFile, Stop
from .session import RunConsole

if TYPE_CHECKING:
    from ..bridges import ItemHeard
    from ..bridges.connection import RealtimeConnection

T = TypeVar("T")

NORMAL_CLOSES = (1000, 1001, 1005)
"""Close codes of a connection that ended as intended: normal, going away, no status."""

SESSION_UPDATE_ID = "agent_playout_session_update"
RESPONSE_CREATE_ID = "agent_playout_response_create"
"""The command's own client events carry ids, so a server error about one names it."""


@dataclass(frozen=True)
class RealtimeSettings:
    """The session's options, checked: where to connect and how, and what to ask for."""

    url: str
    headers: tuple[tuple[str, str], ...]
    dialect: Dialect
    instructions: str | None
    false_interruption_timeout: float | None


@dataclass
class _Playing:
    """An item on screen: its captions, and what they follow."""

    captions: Captions
    handle: PlayoutHandle
    forwarder: TranscriptForwarder | None


class ItemLog:
    """Each item's captions while it plays, then its report line and its printed result."""

    def __init__(self, console: Console, report: ReportFile | None, stop: Stop) -> None:
        self._console = console
        self._report = report
        self._stop = stop
        self._playing: dict[tuple[str, int], _Playing] = {}

    def forwarder(self, item_id: str) -> TranscriptForwarder:
        """Each item's forwarder; it keeps the heard words, which its captions' last line
        is drawn from (``PlayoutReport``)."""
        return TranscriptForwarder(record_words=True)

    def started(self, handle: PlayoutHandle, forwarder: TranscriptForwarder | None) -> None:
        """The bridge's ``item_started``: show the item's captions as they are heard."""
        captions = captions_for(self._console)
        if forwarder is not None:
            captions.watch(forwarder)
        self._playing[(handle.item_id, handle.content_index)] = _Playing(
            captions, handle, forwarder
        )

    def ended(self, heard: ItemHeard) -> None:
        """The bridge's ``item_ended``: the report line first, then the result on screen."""
        self._append(heard)
        playing = self._playing.pop((heard.item_id, heard.content_index), None)
        if playing is not None:
            playing.captions.finish(_report_of(playing))
        self.log(result_line(heard))

    def log(self, line: str) -> None:
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _append(self, heard: ItemHeard) -> None:
        if self._report is None:
            return
        try:
            self._report.append(heard.to_dict())
        except OSError as error:
            self._stop.on_report_error(error)


def _report_of(playing: _Playing) -> PlayoutReport | None:
    """The finished item's report, for its captions' last line (None if it did not finish)."""
    forwarder = playing.forwarder
    if forwarder is None or not playing.handle.done() or not forwarder.closed:
        return None
    return PlayoutReport.from_playout(playing.handle, forwarder)


def result_line(heard: ItemHeard) -> str:
    """One item's outcome: heard of received, the exact count, what was sent, the heard text."""
    rate = heard.sample_rate
    name = heard.item_id if heard.content_index == 0 else f"{heard.item_id}[{heard.content_index}]"
    if heard.interrupted:
        state = "interrupted"
    elif heard.ended_early:
        state = "ended early (the connection closed, or its audio could not be played)"
    else:
        state = "completed"
    if heard.truncation is None:
        whole = not heard.interrupted and not heard.ended_early
        sent = "no truncation (heard to the end)" if whole else "nothing sent"
    else:
        sent = f"sent {json.dumps(heard.truncation.to_event())}"
    return (
        f"{name}: {state}, heard {heard.heard_samples / rate:.2f} s of"
        f" {heard.received_samples / rate:.2f} s received · audio_samples={heard.audio_samples}"
        f" · {sent} · heard: {heard.heard_text.strip()!r}"
    )


async def _until_stopped(work: Awaitable[T], stop: Stop) -> tuple[bool, asyncio.Future[T]]:
    """Run ``work`` until it ends or ``stop`` fires; (whether it ended, its future)."""
    running = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.event.wait())
    try:
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    return running.done(), running


async def _connect(settings: RealtimeSettings, stop: Stop) -> RealtimeConnection | None:
    """The connection, or None when a signal came first; a failure ends the command (exit 1)."""
    from ..bridges.connection import RealtimeConnectionError, connect_realtime

    ended, connecting = await _until_stopped(
        connect_realtime(settings.url, headers=settings.headers), stop
    )
    if not ended:
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        return None
    try:
        return connecting.result()
    except RealtimeConnectionError as error:
        fail(shown_error(error))  # it names the URL and the cause


async def run_session(
    settings: RealtimeSettings, output: Output, console: RunConsole, report: ReportFile | None
) -> Stop:
    """The whole session; returns what stopped it (no signal: the server closed)."""
    stop = Stop()
    console.stop_run_on_broken_pipe(stop.on_broken_pipe)
    items = ItemLog(console, report, stop)
    try:
        with ConsoleLog(console).installed():
            items.log(f"connecting to {shown_url(settings.url)}…")
            connection = await _connect(settings, stop)
            if connection is None:
                items.log(f"stopped ({stop.cause}) before the connection was made")
                return stop
            try:
                await _converse(settings, output, console, connection, items, stop)
            finally:
                await connection.aclose()
    finally:
        stop.restore_signals()
        console.stop_run_on_broken_pipe(None)
    return stop


async def _converse(
    settings: RealtimeSettings,
    output: Output,
    console: Console,
    connection: RealtimeConnection,
    items: ItemLog,
    stop: Stop,
) -> None:
    """Ask for a response and play the model's items until the server closes or a stop."""
    from ..bridges import RealtimeBridge

    clock = MonotonicClock()
    with open_sink(output, clock, console) as sink:
        playout = AgentPlayout(audio_source=sink, clock=clock)
        bridge = RealtimeBridge(
            playout,
            connection.send,
            false_interruption_timeout=settings.false_interruption_timeout,
            transcript=items.forwarder,
        )
        bridge.on("item_started", items.started)
        bridge.on("item_ended", items.ended)
        listening = asyncio.ensure_future(bridge.run(connection))
        try:
            await _ask_for_a_response(settings, connection, items)
            ended, _ = await _until_stopped(listening, stop)
            if ended:
                listening.result()
                _say_closed(connection, items, settings.url)
            else:
                items.log(f"stopping ({stop.cause}): the item playing is cut where it is heard")
                await bridge.aclose()
                await connection.aclose()
                await listening
            await sink.wait_for_playout()
        finally:
            await bridge.aclose()
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await playout.aclose()


async def _ask_for_a_response(
    settings: RealtimeSettings, connection: RealtimeConnection, items: ItemLog
) -> None:
    """24 kHz PCM16 output and the instructions (``session.update``), then a response. A
    server that closes at once is not an error here: its events (an ``error`` saying why)
    are still read, and its close is reported."""
    from ..bridges.connection import RealtimeConnectionError

    try:
        await connection.send(
            {
                **session_update(
                    dialect=settings.dialect,
                    output_format=AudioFormat.PCM16,
                    instructions=settings.instructions,
                    interrupt_response=(
                        None if settings.false_interruption_timeout is None else False
                    ),
                ),
                "event_id": SESSION_UPDATE_ID,  # named by a server error about it
            }
        )
        await connection.send({"type": "response.create", "event_id": RESPONSE_CREATE_ID})
    except RealtimeConnectionError as error:
        items.log(f"could not ask for a response: {shown_error(error)}")
        return
    items.log(
        f"connected ({settings.dialect} API): asked for 24 kHz PCM16 audio and a response;"
        " Ctrl-C stops"
    )


def _say_closed(connection: RealtimeConnection, items: ItemLog, url: str) -> None:
    """The server's close, in one line; one that is not a normal close ends in exit 1."""
    code, reason = connection.close_code, connection.close_reason
    said = f"code {code}" + (f": {reason}" if reason else "")
    if code in NORMAL_CLOSES:
        items.log(f"the server closed the connection ({said})")
        return
    said = said if code is not None else "no close"
    fail(f"the connection to {shown_url(url)} ended abnormally ({said})")
