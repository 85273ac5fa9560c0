"""``agent-playout phone --realtime URL``: each call bridged to a realtime model of its own.

Every call opens one connection to the model; the caller's voice goes up, the model's comes
down, and on the model's ``speech_started`` the phone gets Twilio's ``clear`` and the model
the truncation the phone confirmed. Each item the model spoke is one line of the
``--report`` JSON Lines file, written as soon as the item ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from .realtime_options import dialect_for, shown_error
from .service import ReportFile

if TYPE_CHECKING:
    from ..bridges.connection import RealtimeConnection
    from ..bridges.heard import ItemHeard
    from ..sinks.twilio import PhoneCall

logger = logging.getLogger("agent_playout")


class RealtimeAnswerer:
    """Answers each call by bridging it to the model at ``url``; logs each item (each line
    starts with the call's sid, as the server's own do) and hangs up the live calls on stop."""

    def __init__(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        instructions: str | None,
        console: Console,
        report: ReportFile | None,
        on_report_error: Callable[[OSError], None],
    ) -> None:
        self._url = url
        self._headers = list(headers)
        self._instructions = instructions
        self._console = console
        self._report = report
        self._on_report_error = on_report_error
        self._live: dict[str, PhoneCall] = {}
        self._hang_ups: set[asyncio.Future[None]] = set()
        self._connecting: set[asyncio.Future[RealtimeConnection]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.stopping = False

    def log(self, line: str) -> None:
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    async def answer(self, call: PhoneCall) -> None:
        """``serve_phone``'s handler: connect, bridge until either side ends, hang up."""
        from ..bridges.phone import bridge_phone_call

        if self.stopping:
            await call.hang_up("the server is stopping")
            return
        self._live[call.call_sid] = call
        self._idle.clear()
        try:
            connection = await self._connect(call)
            if connection is None:
                return
            self.log(f"call {call.call_sid}: bridged to the realtime model")
            await bridge_phone_call(
                call,
                connection,
                dialect=dialect_for(self._headers),
                instructions=self._instructions,
                on_item_ended=functools.partial(self._result, call),
            )
        finally:
            del self._live[call.call_sid]
            if not self._live:
                self._idle.set()

    async def _connect(self, call: PhoneCall) -> RealtimeConnection | None:
        """The model's connection; None if the call ended first or a stop cancelled the
        connect (a connection that opened all the same is closed: nobody would hear its
        responses), or if the model cannot be reached (the call is hung up, saying why)."""
        from ..bridges.connection import RealtimeConnectionError, connect_realtime

        connecting = asyncio.ensure_future(connect_realtime(self._url, headers=self._headers))
        self._connecting.add(connecting)
        ended = asyncio.ensure_future(call.wait_ended())
        try:
            await asyncio.wait([connecting, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            self._connecting.discard(connecting)
            if call.ended or not connecting.done():
                await _abandon(connecting)
        if call.ended or connecting.cancelled():
            return None
        try:
            return connecting.result()
        except RealtimeConnectionError as error:
            said = shown_error(error)
            logger.warning("call %s: cannot connect to the realtime model: %s", call.call_sid, said)
            await call.hang_up(f"the realtime model could not be reached: {said}")
            return None

    def _result(self, call: PhoneCall, heard: ItemHeard) -> None:
        """The item's line in the report file, then its line in the log: an item that is
        logged has its report on disk."""
        record = {"call_sid": call.call_sid, "stream_sid": call.stream_sid, **heard.to_dict()}
        if self._report is not None:
            try:
                self._report.append(record)
            except OSError as error:
                self._on_report_error(error)
        state = "interrupted" if heard.interrupted else "completed"
        rate = heard.sample_rate
        sent = record.get("truncation")
        said = f" · sent {sent['type']}" if isinstance(sent, dict) else ""
        self.log(
            f"call {call.call_sid}: {heard.item_id} {state} after"
            f" {heard.heard_samples / rate:.2f} s of {heard.received_samples / rate:.2f} s"
            f" · audio_end_ms={heard.audio_end_ms}{said} · heard: {heard.heard_text.strip()!r}"
        )

    def stop(self) -> int:
        """Take no new calls, hang up each live one (its item stops where the caller is, and
        is reported) and cancel each pending connect; returns how many calls were live."""
        self.stopping = True
        for call in self._live.values():
            hang_up = asyncio.ensure_future(call.hang_up("the server is stopping"))
            self._hang_ups.add(hang_up)
            hang_up.add_done_callback(self._hang_ups.discard)
        for connecting in self._connecting:
            connecting.cancel()
        return len(self._live)

    async def wait_idle(self) -> None:
        """Until every live call has been reported and hung up."""
        await self._idle.wait()


async def _abandon(connecting: asyncio.Future[RealtimeConnection]) -> None:
    """Cancel a connect nobody waits for any more; close its connection if it opened."""
    connecting.cancel()
    (outcome,) = await asyncio.gather(connecting, return_exceptions=True)
    if not isinstance(outcome, BaseException):
        await outcome.aclose()
