"""``PhoneSink`` on the virtual clock, through a line that records what it is sent and echoes
marks as Twilio does (once the audio before them has played; all at once on a clear), with a
one-way delay of its own: deterministic tests of the shell's messages, pacing and endings."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import numpy as np
import pytest

from agent_playout import AgentPlayout, PlayoutHandle, VirtualClock
from agent_playout.clock import TimerHandle
from agent_playout.core.units import NS_PER_SECOND
from agent_playout.sinks.twilio import CallEndedError, PhoneSink
from agent_playout.sinks.twilio.sink import MediaChannel

from .conftest import frames_of, stream

SID = "MZ1"
MS = NS_PER_SECOND // 1000


class RecordingLine:
    """The far end of the sink's channel: keeps every message, plays the media at 8 kHz from
    its arrival (``one_way_ms`` after the write), and echoes marks as Twilio does."""

    def __init__(self, clock: VirtualClock, one_way_ms: int = 50) -> None:
        self.clock = clock
        self.one_way = one_way_ms * MS
        self.messages: list[dict[str, Any]] = []
        self.sink: PhoneSink | None = None
        self.phone_end = 0  # when the phone's buffer runs out
        self.pending: dict[str, TimerHandle] = {}  # marks whose audio has not played yet
        self.cleared: list[int] = []  # played count when each clear landed
        self.chunks: list[tuple[int, int]] = []  # (start time at the phone, samples)
        self.lost = False  # a line that loses every message

    def channel(self) -> MediaChannel:
        async def drain() -> None:
            return None

        return MediaChannel(self.write, drain)

    def write(self, messages: Sequence[str]) -> None:
        if self.lost:
            return
        arrival = self.clock.now_ns() + self.one_way
        for text in messages:
            message = json.loads(text)
            self.messages.append(message)
            self.clock.call_at(arrival, lambda m=message, t=arrival: self._arrive(m, t))

    def played(self, at: int) -> int:
        total = 0
        for start, count in self.chunks:
            total += max(0, min(count, (at - start) * 8000 // NS_PER_SECOND))
        return total

    def _arrive(self, message: dict[str, Any], at: int) -> None:
        event = message["event"]
        if event == "media":
            count = len(base64.b64decode(message["media"]["payload"]))
            start = max(at, self.phone_end)
            self.chunks.append((start, count))
            self.phone_end = start + count * NS_PER_SECOND // 8000
        elif event == "mark":
            name = message["mark"]["name"]
            self.pending[name] = self.clock.call_at(
                max(at, self.phone_end), lambda: self._echo(name)
            )
        elif event == "clear":
            self.cleared.append(self.played(at))
            self.chunks = [
                (s, min(c, (at - s) * 8000 // NS_PER_SECOND)) for s, c in self.chunks if s < at
            ]
            self.phone_end = at
            for name, timer in list(self.pending.items()):
                timer.cancel()
                self._echo(name)

    def _echo(self, name: str) -> None:
        """The phone played the audio before mark ``name``: its echo travels back."""
        del self.pending[name]
        self.clock.call_at(self.clock.now_ns() + self.one_way, lambda: self._deliver(name))

    def _deliver(self, name: str) -> None:
        assert self.sink is not None
        self.sink.mark_echoed(name)


def phone(
    clock: VirtualClock, one_way_ms: int = 50, **options: Any
) -> tuple[PhoneSink, RecordingLine]:
    line = RecordingLine(clock, one_way_ms)
    sink = PhoneSink(line.channel(), SID, clock=clock, **options)
    line.sink = sink
    sink.round_trip_measured(2 * one_way_ms * MS)
    return sink, line


def play(playout: AgentPlayout, seconds: float, item_id: str = "it_1") -> PlayoutHandle:
    signal = (5000 * np.sin(np.arange(round(seconds * 24000)) / 5)).astype(np.int16)
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(signal, 480)),
    )


async def run(clock: VirtualClock, main: Awaitable[Any]) -> Any:
    return await clock.run(main)


async def test_media_go_out_in_20_ms_chunks_with_marks_after_their_audio(
    clock: VirtualClock,
) -> None:
    sink, line = phone(clock)

    async def main() -> None:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 0.5)
        await handle.wait_for_playout()

    await run(clock, main())
    media = [m for m in line.messages if m["event"] == "media"]
    marks = [m for m in line.messages if m["event"] == "mark"]
    assert {m["streamSid"] for m in line.messages} == {SID}
    assert [len(base64.b64decode(m["media"]["payload"])) for m in media] == [160] * 25
    assert len(marks) == 5  # one per 100 ms, the last one confirming the end
    assert line.messages[-1]["event"] == "mark"
    assert len({m["mark"]["name"] for m in marks}) == 5


async def test_the_clear_goes_out_in_the_same_turn_as_the_interrupt(clock: VirtualClock) -> None:
    sink, line = phone(clock)

    async def main() -> PlayoutHandle:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 2.0)
        await clock.sleep_until(700 * MS)
        sent = len(line.messages)
        handle.interrupt()
        assert [m["event"] for m in line.messages[sent:]] == ["clear"]
        await handle.wait_for_playout()
        await clock.sleep_until(clock.now_ns() + 200 * MS)
        return handle

    handle = await run(clock, main())
    assert line.cleared == [sink.samples_written]
    assert handle.audio_samples == line.cleared[0] * 3


async def test_the_sink_stays_within_its_queue_of_the_phone(clock: VirtualClock) -> None:
    sink, line = phone(clock, queue_size_ms=200)
    ahead: list[int] = []

    async def main() -> None:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 1.5)
        for step in range(1, 14):
            await clock.sleep_until(step * 100 * MS)
            ahead.append(sink.samples_written - line.played(clock.now_ns()))
        await handle.wait_for_playout()

    await run(clock, main())
    # at most the queue, one engine chunk (50 ms) and the audio in flight (50 ms) ahead
    assert max(ahead) <= (200 + 50 + 50) * 8
    assert min(ahead[:10]) > 0


async def test_a_second_turn_ignores_the_first_turns_late_echoes(clock: VirtualClock) -> None:
    sink, line = phone(clock, one_way_ms=150)

    async def main() -> tuple[PlayoutHandle, PlayoutHandle]:
        playout = AgentPlayout(audio_source=sink, clock=clock)
        first = play(playout, 2.0, "it_1")
        await clock.sleep_until(800 * MS)
        first.interrupt()
        await first.wait_for_playout()
        second = play(playout, 2.0, "it_2")
        await clock.sleep_until(1100 * MS)
        second.interrupt()
        await second.wait_for_playout()
        await clock.sleep_until(2000 * MS)
        return first, second

    first, second = await run(clock, main())
    assert sink.stale_echoes > 0
    assert first.audio_samples == line.cleared[0] * 3
    assert second.audio_samples == (line.cleared[1] - line.cleared[0]) * 3


async def test_a_call_that_ends_fails_the_item_with_the_reason(clock: VirtualClock) -> None:
    sink, line = phone(clock)

    async def main() -> PlayoutHandle:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 2.0)
        await clock.sleep_until(600 * MS)
        sink.end("the caller hung up (stop)")
        await handle.wait_for_playout()
        return handle

    handle = await run(clock, main())
    assert isinstance(handle.error, CallEndedError)
    assert "hung up" in str(handle.error)
    truth = line.played(600 * MS - line.one_way)
    assert abs(handle.audio_samples - truth * 3) <= 3
    with pytest.raises(CallEndedError, match="hung up"):
        await sink.capture_frame(frames_of(np.zeros(160, np.int16), 160, 8000)[0])


async def test_without_the_last_echo_wait_for_playout_ends_after_its_grace(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink, line = phone(clock)
    line.lost = True

    async def main() -> PlayoutHandle:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 0.3)
        await handle.wait_for_playout()
        return handle

    caplog.set_level(logging.WARNING, "agent_playout")
    handle = await run(clock, main())
    assert not handle.interrupted
    assert handle.error is None
    assert clock.now_ns() < 3 * NS_PER_SECOND
    assert any("did not echo the last mark" in r.getMessage() for r in caplog.records)


async def test_two_waits_for_playout_at_once_both_return(clock: VirtualClock) -> None:
    sink, _ = phone(clock)

    async def main() -> None:
        await sink.capture_frame(frames_of(np.zeros(1600, np.int16), 1600, 8000)[0])
        await asyncio.gather(sink.wait_for_playout(), sink.wait_for_playout())

    await run(clock, main())
    assert sink.samples_played == sink.samples_written == 1600


async def test_a_line_that_never_echoes_cannot_hold_the_sending_up(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink, line = phone(clock)
    line.lost = True  # pings answered (the round trip is known), marks never echoed

    async def main() -> PlayoutHandle:
        handle = play(AgentPlayout(audio_source=sink, clock=clock), 2.0)
        await handle.wait_for_playout()
        return handle

    caplog.set_level(logging.WARNING, "agent_playout")
    handle = await run(clock, main())
    assert handle.error is None
    assert handle.audio_samples == handle.received_samples == 2 * 24000
    assert clock.now_ns() < 4 * NS_PER_SECOND  # 2 s of audio, then the grace for the echo
    assert any("did not echo the last mark" in r.getMessage() for r in caplog.records)


async def test_a_queue_smaller_than_a_held_chunk_never_wedges_a_capture(
    clock: VirtualClock,
) -> None:
    sink, _ = phone(clock, queue_size_ms=20)
    frames = frames_of(np.zeros(100 * 30, np.int16), 100, 8000)  # 12.5 ms frames: some held

    async def main() -> None:
        for frame in frames:
            await sink.capture_frame(frame)
        await sink.wait_for_playout()

    await run(clock, main())
    assert sink.samples_played == sink.samples_written == 3000
