"""The turns every call of ``agent-playout phone`` hears: spoken once, played into each call,
each one's report a line of the ``--report`` JSON Lines file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console

from ..clock import VirtualClock
from ..engine.playout import AgentPlayout
from ..engine.report import PlayoutReport
from ..sinks.paced import NullSink
from ..transcript.forwarder import TranscriptForwarder
from ..transcript.sentences import TranscriptSegment
from ..tts import Voice
from .model_stream import Piece, speak, voice_pieces
from .service import ReportFile

if TYPE_CHECKING:
    from ..sinks.twilio import PhoneCall


@dataclass(frozen=True)
class Turn:
    """One turn every call hears: its synthesized audio, and when it is cut."""

    pieces: tuple[Piece, ...]
    cut_after: float | None


class Answerer:
    """Answers each call with the turns, logs each turn (each line starts with the call's
    sid, as the server's own lines do, so concurrent calls can be told apart), and ends the
    live calls on stop."""

    def __init__(
        self,
        turns: Sequence[Turn],
        sample_rate: int,
        console: Console,
        report: ReportFile | None,
        on_report_error: Callable[[OSError], None],
    ) -> None:
        self._turns = tuple(turns)
        self._sample_rate = sample_rate
        self._console = console
        self._report = report
        self._on_report_error = on_report_error
        self._live: dict[str, AgentPlayout] = {}
        self._calls = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.stopping = False

    def log(self, line: str) -> None:
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    async def answer(self, call: PhoneCall) -> None:
        """``serve_phone``'s handler: the turns, then a clean hang-up (close 1000)."""
        if self.stopping:
            await call.hang_up("the server is stopping")
            return
        self._calls += 1
        self._idle.clear()
        try:
            playout = AgentPlayout(audio_source=call.sink)
            self._live[call.call_sid] = playout
            try:
                finished = await self._speak_turns(call, playout)
            finally:
                del self._live[call.call_sid]
                await playout.aclose()
            if not call.ended:
                reason = "the last turn was played" if finished else "the server is stopping"
                await call.hang_up(reason)
        finally:
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    async def _speak_turns(self, call: PhoneCall, playout: AgentPlayout) -> bool:
        """Each turn in order, each one played to the end as the phone confirmed it (or
        cut); False if the call ended or the server stopped before the last one."""
        for number, turn in enumerate(self._turns, start=1):
            if self.stopping or call.ended:
                return False
            report = await self._speak_turn(call, playout, f"item_{number}", turn)
            self._result(call, report)
            if report.error is not None:
                return False
        return not self.stopping

    async def _speak_turn(
        self, call: PhoneCall, playout: AgentPlayout, item_id: str, turn: Turn
    ) -> PlayoutReport:
        """One turn with its captions, cut ``turn.cut_after`` seconds after its play()."""
        loop = asyncio.get_running_loop()
        cuts: list[asyncio.TimerHandle] = []

        def watch(forwarder: TranscriptForwarder) -> None:
            forwarder.on("segment", lambda segment: self._caption(call.call_sid, segment))
            handle = playout.current  # speak() calls watch right after play()
            if turn.cut_after is not None and handle is not None:
                cuts.append(loop.call_later(turn.cut_after, handle.interrupt))

        try:
            spoken = await speak(
                playout,
                _replay(turn.pieces),
                item_id=item_id,
                sample_rate=self._sample_rate,
                watch=watch,
            )
        finally:
            for cut in cuts:
                cut.cancel()
        return spoken.report

    def _caption(self, sid: str, segment: TranscriptSegment) -> None:
        if segment.final:
            self.log(f"call {sid}:   [{segment.start:5.2f} → {segment.end:5.2f} s] {segment.text}")

    def _result(self, call: PhoneCall, report: PlayoutReport) -> None:
        """The turn's line in the report file, then its line in the log: a turn that is
        logged has its report on disk."""
        self._append(call, report)
        state = "interrupted" if report.interrupted else "completed"
        prefix = f"call {call.call_sid}: {report.item_id}"
        self.log(
            f"{prefix} {state} after {report.played_seconds:.2f} s of"
            f" {report.received_seconds:.2f} s · audio_samples={report.audio_samples}"
            f" · heard: {report.heard_text.strip()!r}"
        )
        if report.error is not None:
            self.log(f"{prefix} ended by the call: {report.error}")

    def _append(self, call: PhoneCall, report: PlayoutReport) -> None:
        if self._report is None:
            return
        round_trip = call.sink.round_trip_ns
        record = {
            "call_sid": call.call_sid,
            "stream_sid": call.stream_sid,
            **report.to_dict(),
            "round_trip_ms": None if round_trip is None else round(round_trip / 1e6, 1),
        }
        try:
            self._report.append(record)
        except OSError as error:
            self._on_report_error(error)

    def stop(self) -> int:
        """Take no new turns and cut each live one where its caller is; returns how many
        calls were live."""
        self.stopping = True
        for playout in self._live.values():
            if playout.current is not None:
                playout.current.interrupt()
        return len(self._live)

    async def wait_idle(self) -> None:
        """Until every live call has been reported and hung up."""
        await self._idle.wait()


async def _replay(pieces: Sequence[Piece]) -> AsyncIterator[Piece]:
    """A turn's synthesized audio, as a fresh stream for one call."""
    for piece in pieces:
        yield piece


async def prepare(voice: Voice, texts: Sequence[str], cuts: Sequence[float]) -> list[Turn]:
    """Each text spoken once, sentence by sentence with its words' times; then the playout
    path warmed up for the first call."""
    turns = []
    for number, text in enumerate(texts):
        pieces = tuple([piece async for piece in voice_pieces(voice, text, in_thread=False)])
        turns.append(Turn(pieces, cuts[number] if number < len(cuts) else None))
    await _warm_up_playout(voice.sample_rate)
    return turns


async def _warm_up_playout(sample_rate: int) -> None:
    """Play 0.1 s of silence at the phone's rate on a virtual clock. A process's first item
    pays one-time costs (imports, the resampler's setup: about 80 ms here) that would
    otherwise stall the first call's event loop, and with it that call's first round-trip
    ping, which the phone's position adds half of."""
    from ..sinks.twilio.sink import PHONE_RATE

    clock = VirtualClock()
    silence = Piece(np.zeros(sample_rate // 10, dtype=np.int16), ("ready ",))

    async def warm_up() -> None:
        playout = AgentPlayout(audio_source=NullSink(PHONE_RATE, clock=clock), clock=clock)
        try:
            await speak(playout, _replay((silence,)), item_id="warm-up", sample_rate=sample_rate)
        finally:
            await playout.aclose()

    await clock.run(warm_up())
