"""The engine's settle hook: an output that cannot take back what it sent (WebRTC) says,
after an interrupt, how much of the sent audio its receiver really heard."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from agent_playout import (
    CLEANUP_TIMEOUT_S,
    AgentPlayout,
    PacedSink,
    PlayoutHandle,
    PlayoutReport,
    PositionUnconfirmedError,
    SettlingSink,
    TranscriptForwarder,
    VirtualClock,
)

from .conftest import RATE, frames_of, ramp, stream

RECEIVER_DELAY_S = 0.12
"""How long after a settle request the receiver's reports cover the audio sent."""


class ReceiverSink(PacedSink):
    """A paced sink whose receiver answers ``settle`` like a WebRTC peer: after its reports'
    delay, with what was sent less what it lost; or never, or with an error."""

    def __init__(self, clock: VirtualClock, *, lost: int = 0, answer: str = "count") -> None:
        super().__init__(RATE, 1, clock=clock, fade_ms=0)
        self.lost = lost
        self.answer = answer
        self.asked: list[tuple[int, int]] = []
        self._clock = clock

    async def settle(self, start: int, end: int) -> Any:
        self.asked.append((start, end))
        if self.answer == "never":
            await asyncio.get_running_loop().create_future()
        await self._clock.sleep(RECEIVER_DELAY_S)
        if self.answer == "error":
            raise PositionUnconfirmedError("the receiver's reports stopped")
        if self.answer == "float":
            return float(end - start)
        return end - start - self.lost


def play(playout: AgentPlayout, item_id: str, seconds: float, text: str) -> PlayoutHandle:
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=stream(re.findall(r"\S+\s*", text)),
        audio_stream=stream(frames_of(ramp(round(seconds * RATE)), RATE // 50)),
    )


async def test_the_test_sink_is_a_settling_sink_and_a_plain_one_is_not(
    clock: VirtualClock,
) -> None:
    assert isinstance(ReceiverSink(clock), SettlingSink)
    assert not isinstance(PacedSink(RATE, 1, clock=clock), SettlingSink)


async def test_an_interrupted_item_ends_at_the_count_its_receiver_confirmed(
    clock: VirtualClock,
) -> None:
    sink = ReceiverSink(clock, lost=480)
    playout = AgentPlayout(audio_source=sink)
    seen_at_stop: list[int] = []
    handle = play(playout, "it_1", 2.0, "one two three four")
    playout.on("playout_stopped", lambda _: seen_at_stop.append(handle.played_samples))
    await clock.advance(0.5)
    handle.interrupt()
    sent = handle.played_samples
    assert seen_at_stop == [sent]
    assert handle.position_confirmed is None
    await clock.run(handle.wait_for_playout())
    assert sink.asked == [(0, sent)]
    assert handle.played_samples == sent - 480
    assert handle.position_confirmed is True


async def test_the_settle_span_is_where_the_item_sat_on_the_sink(clock: VirtualClock) -> None:
    sink = ReceiverSink(clock)
    playout = AgentPlayout(audio_source=sink)
    first = play(playout, "first", 0.4, "short")
    await clock.run(first.wait_for_playout())
    second = play(playout, "second", 2.0, "a longer one")
    await clock.advance(0.3)
    second.interrupt()
    sent = second.played_samples
    await clock.run(second.wait_for_playout())
    assert first.position_confirmed is None
    assert sent == 7200
    assert sink.asked == [(9600, 9600 + sent)]


async def test_a_receiver_that_claims_more_than_was_sent_is_held_to_the_sent_count(
    clock: VirtualClock,
) -> None:
    sink = ReceiverSink(clock, lost=-5000)
    playout = AgentPlayout(audio_source=sink)
    handle = play(playout, "it_1", 2.0, "one two")
    await clock.advance(0.5)
    handle.interrupt()
    sent = handle.played_samples
    await clock.run(handle.wait_for_playout())
    assert handle.played_samples == sent
    assert handle.position_confirmed is True


@pytest.mark.parametrize("answer", ["error", "float"])
async def test_a_receiver_that_cannot_confirm_leaves_the_sent_count_marked_unconfirmed(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    sink = ReceiverSink(clock, answer=answer)
    playout = AgentPlayout(audio_source=sink)
    handle = play(playout, "it_1", 2.0, "one two")
    await clock.advance(0.5)
    handle.interrupt()
    sent = handle.played_samples
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        await clock.run(handle.wait_for_playout())
    assert handle.played_samples == sent
    assert handle.position_confirmed is False
    [record] = [r for r in caplog.records if "could not confirm" in r.getMessage()]
    assert record.item_id == "it_1"  # type: ignore[attr-defined]
    expected = "reports stopped" if answer == "error" else "not an int"
    assert expected in record.getMessage()


async def test_a_receiver_that_never_answers_cannot_wedge_the_handle_or_the_next_item(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ReceiverSink(clock, answer="never")
    playout = AgentPlayout(audio_source=sink)
    handle = play(playout, "it_1", 2.0, "one two")
    await clock.advance(0.5)
    handle.interrupt()
    sent = handle.played_samples
    after = play(playout, "it_2", 0.2, "next")
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        await clock.run(handle.wait_for_playout())
    assert clock.now_ns() >= round((0.5 + CLEANUP_TIMEOUT_S) * 1e9)
    assert handle.played_samples == sent
    assert handle.position_confirmed is False
    assert any("settle() did not end" in r.getMessage() for r in caplog.records)
    await clock.run(after.wait_for_playout())
    assert after.played_samples == 4800
    await playout.aclose()


async def test_completed_items_and_items_cut_before_any_audio_are_not_settled(
    clock: VirtualClock,
) -> None:
    sink = ReceiverSink(clock)
    playout = AgentPlayout(audio_source=sink)
    done = play(playout, "done", 0.3, "whole")
    await clock.run(done.wait_for_playout())
    early = play(playout, "early", 1.0, "never heard")
    early.interrupt()
    await clock.run(early.wait_for_playout())
    assert sink.asked == []
    assert done.position_confirmed is None
    assert early.position_confirmed is None
    assert done.played_samples == 7200


async def test_cancelling_the_playout_while_it_settles_still_finishes_the_handle(
    clock: VirtualClock,
) -> None:
    sink = ReceiverSink(clock, answer="never")
    playout = AgentPlayout(audio_source=sink)
    handle = play(playout, "it_1", 2.0, "one two")
    await clock.advance(0.5)
    handle.interrupt()
    await clock.advance(0.01)
    closing = asyncio.ensure_future(playout.aclose())
    await clock.advance(0.01)
    [item_task] = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "_run_item"]
    item_task.cancel()
    await clock.run(closing)
    assert handle.done()
    assert handle.position_confirmed is False


async def test_the_report_says_whether_the_receiver_confirmed_the_count(
    clock: VirtualClock,
) -> None:
    sink = ReceiverSink(clock, lost=960)
    playout = AgentPlayout(audio_source=sink)
    forwarder = TranscriptForwarder(record_words=True)
    handle = playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=stream(["one ", "two ", "three"]),
        audio_stream=stream(frames_of(ramp(RATE), RATE // 50)),
    )
    await clock.advance(0.5)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    report = PlayoutReport.from_playout(handle, forwarder)
    assert report.position_confirmed is True
    assert report.played_samples == handle.played_samples
    assert report.to_dict()["position_confirmed"] is True
