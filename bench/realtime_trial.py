"""One realtime-bench trial: what the model says, the timed connection, and the cut.

A trial streams one scripted response from a ``SimulatedRealtimeServer`` to a
``RealtimeBridge`` over a real WebSocket on 127.0.0.1, cuts it with the server's
``speech_started`` and keeps what each side saw: the ``audio_end_ms`` the server received,
the ``ItemHeard`` the bridge reported, and three clocks (``time.perf_counter_ns``, this
process): when ``speech_started`` was handed to the bridge, when the bridge called ``send``
with the truncation (and when that send returned), and, on the server's side, from sending
``speech_started`` to receiving the truncation.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent_playout import AgentPlayout, PlayoutHandle
from agent_playout.bridges import (
    AudioFormat,
    ItemHeard,
    RealtimeBridge,
    RealtimeConnection,
    ScriptedResponse,
    SimulatedRealtimeServer,
    connect_realtime,
)

from .common import TEXT

RATE = 24000
SPEECH_STARTED = "input_audio_buffer.speech_started"
TRUNCATE = "conversation.item.truncate"
TRUNCATIONS = (TRUNCATE, "conversation.item.delete")
WAIT_S = 10.0
"""The longest any step of a trial may take; past it the bench stops with the error."""


class TruthError(Exception):
    """The output's ground truth of a trial could not be read: what came out is not the
    item's audio (or never stopped). Such a trial is counted apart, never as an error."""


async def judged(script: Script, trial: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """``trial``'s record; a record that says why, when its ground truth was unreadable."""
    try:
        return await trial
    except TruthError as error:
        return {"audio_s": round(script.audio_s, 3), "cut_s": round(script.cut_s, 3)} | {
            "failed": str(error)
        }


def outcome(record: dict[str, Any]) -> str:
    """One trial's result, for the progress lines."""
    if "failed" in record:
        return f"ground truth unreadable: {record['failed']}"
    return f"error {record['error_ms']} ms"


@dataclass(frozen=True)
class Script:
    """What the model says in one trial (a traceable 24 kHz ramp) and when the user cuts in,
    in seconds after the item started playing."""

    audio: np.ndarray
    cut_s: float

    @property
    def audio_s(self) -> float:
        return self.audio.size / RATE

    def response(self) -> ScriptedResponse:
        return ScriptedResponse.spoken(" ".join(TEXT), self.audio)


def script_for(
    rng: random.Random,
    *,
    audio_s: tuple[float, float] = (1.0, 2.0),
    cut_s: tuple[float, float] = (0.2, 1.5),
) -> Script:
    """A response of ``audio_s`` seconds (uniform), cut ``cut_s`` seconds in (uniform), at
    least 0.2 s before its end, so every cut lands inside the audio."""
    length = rng.uniform(*audio_s)
    cut = rng.uniform(cut_s[0], min(cut_s[1], length - 0.2))
    return Script(traceable(round(length * RATE)), cut)


def traceable(samples: int) -> np.ndarray:
    """A sawtooth from 1000 to 30999: every sample of it is told apart from its faded copy
    (even the first of a fade, scaled by 1 - 1/fade, differs), and none fades to silence
    unnoticed; with small values (``common.ramp``'s 1, 2, 3...) a faded run, its zeros
    dropped, can pass for the audio itself."""
    return (np.arange(samples) % 30000 + 1000).astype(np.int16)


class TimedConnection:
    """A ``RealtimeConnection`` seen by the bridge through two stopwatches.

    ``events()`` stamps the first ``speech_started`` as it is handed to the bridge (after
    ``on_speech_started``, which may snapshot the output), ``send`` stamps the first
    truncation when the bridge calls it and when the write returned.
    """

    def __init__(
        self,
        connection: RealtimeConnection,
        on_speech_started: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self._on_speech_started = on_speech_started
        self.speech_ns: int | None = None
        self.send_called_ns: int | None = None
        self.send_done_ns: int | None = None
        self.sent: list[dict[str, Any]] = []

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        async for event in self._connection:
            if event.get("type") == SPEECH_STARTED and self.speech_ns is None:
                if self._on_speech_started is not None:
                    self._on_speech_started()
                self.speech_ns = time.perf_counter_ns()
            yield event

    def send(self, event: Mapping[str, Any], heard: object = None) -> Awaitable[None]:
        truncation = event.get("type") in TRUNCATIONS and self.send_called_ns is None
        if truncation:
            self.send_called_ns = time.perf_counter_ns()
        self.sent.append(dict(event))
        return self._write(event, heard, truncation)

    async def _write(self, event: Mapping[str, Any], heard: object, truncation: bool) -> None:
        await self._connection.send(event, heard)
        if truncation:
            self.send_done_ns = time.perf_counter_ns()


@dataclass
class Cut:
    """What one cut produced: the server's truncation, the bridge's record, the clocks."""

    script: Script
    truncation: dict[str, Any]
    round_trip_ns: int
    timed: TimedConnection
    heard: ItemHeard | None = None
    position_confirmed: bool | None = None
    """The handle's, once the item wound down: False if the output could not vouch for it."""
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, truth_samples: int, truth_rate: int) -> dict[str, Any]:
        """The trial's figures against ``truth_samples`` (at ``truth_rate``), what the
        output's own ground truth says the listener heard of the item."""
        timed = self.timed
        if self.heard is None or timed.speech_ns is None or timed.send_called_ns is None:
            raise RuntimeError(f"trial incomplete: heard={self.heard}, sent={timed.sent}")
        sent_ms = int(self.truncation.get("audio_end_ms", 0))
        truth_ms = truth_samples * 1000 // truth_rate
        record: dict[str, Any] = {
            "audio_s": round(self.script.audio_s, 3),
            "cut_s": round(self.script.cut_s, 3),
            "sent_type": self.truncation["type"],
            "audio_end_ms": sent_ms,
            "truth_samples": truth_samples,
            "truth_rate": truth_rate,
            "truth_ms": truth_ms,
            "error_ms": sent_ms - truth_ms,
            "bridge_heard_samples": self.heard.heard_samples,
            "bridge_rate": self.heard.sample_rate,
            "client_us": (timed.send_called_ns - timed.speech_ns) / 1000,
            "client_written_us": None
            if timed.send_done_ns is None
            else (timed.send_done_ns - timed.speech_ns) / 1000,
            "round_trip_ms": self.round_trip_ns / 1e6,
        }
        if self.heard.sample_rate == truth_rate:
            record["sample_error"] = self.heard.heard_samples - truth_samples
        record.update(self.extra)
        return record


async def cut_now(server: SimulatedRealtimeServer) -> tuple[dict[str, Any], int]:
    """The server's VAD hears the user: send ``speech_started`` and wait for the truncation;
    that event and the round trip in nanoseconds."""
    sent_ns = time.perf_counter_ns()
    await server.speech_started()
    truncation = await server.wait_for(TRUNCATE, timeout=WAIT_S)
    return truncation, time.perf_counter_ns() - sent_ns


async def bridged_cut(
    playout: AgentPlayout,
    script: Script,
    *,
    on_speech_started: Callable[[], None] | None = None,
) -> Cut:
    """Play ``script`` from a fresh simulated server through a ``RealtimeBridge`` on
    ``playout``, cut it ``script.cut_s`` after the item started, and wait until it ended."""
    async with SimulatedRealtimeServer([script.response()]) as server:
        connection = await connect_realtime(server.url)
        timed = TimedConnection(connection, on_speech_started)
        bridge = RealtimeBridge(playout, timed.send, output_format=AudioFormat.PCM16)
        started = asyncio.Event()
        ended: list[ItemHeard] = []
        handles: list[PlayoutHandle] = []

        def on_started(handle: PlayoutHandle, _forwarder: object) -> None:
            handles.append(handle)
            started.set()

        bridge.on("item_started", on_started)
        bridge.on("item_ended", ended.append)
        runner = asyncio.create_task(bridge.run(timed.events()))
        try:
            await connection.send({"type": "response.create"})
            await asyncio.wait_for(started.wait(), WAIT_S)
            await asyncio.sleep(script.cut_s)
            truncation, round_trip = await cut_now(server)
            await asyncio.wait_for(bridge.wait_idle(), WAIT_S)
        finally:
            await bridge.aclose()
            await connection.aclose()
            await finish(runner)
    confirmed = handles[0].position_confirmed if handles else None
    return Cut(script, truncation, round_trip, timed, ended[0] if ended else None, confirmed)


async def finish(task: asyncio.Task[None]) -> None:
    """Wait for ``task`` (a bridge's ``run``) to end once its connection closed; a task that
    does not end within ``WAIT_S`` is cancelled and reported."""
    done, _ = await asyncio.wait([task], timeout=WAIT_S)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise RuntimeError("the bridge's run() did not end after its connection closed")
    task.result()
