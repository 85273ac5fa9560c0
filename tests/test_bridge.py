"""RealtimeBridge on the virtual clock: server events in, playouts out, truncations back.

The WAV sink is the ground truth: the file holds exactly what the listener heard, so every
``audio_end_ms`` is checked against floor(samples in the file × 1000 / rate).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from agent_playout import AgentPlayout, NullSink, PlayoutHandle, TranscriptForwarder, VirtualClock
from agent_playout.bridges import AudioFormat, ItemHeard, RealtimeBridge
from agent_playout.core import mulaw
from agent_playout.sinks.wav import WavSink
from tests.conftest import ramp

RATE = 24000
TEXT = "The quick brown fox jumps over the lazy dog near the river bank today."

GA = {
    "audio": "response.output_audio.delta",
    "audio_done": "response.output_audio.done",
    "text": "response.output_audio_transcript.delta",
    "text_done": "response.output_audio_transcript.done",
    "item_added": "conversation.item.added",
}
BETA = {
    "audio": "response.audio.delta",
    "audio_done": "response.audio.done",
    "text": "response.audio_transcript.delta",
    "text_done": "response.audio_transcript.done",
    "item_added": "conversation.item.created",
}


def b64(samples: np.ndarray, fmt: AudioFormat = AudioFormat.PCM16) -> str:
    data = mulaw.encode(samples) if fmt is AudioFormat.G711_ULAW else samples.tobytes()
    return base64.b64encode(data).decode()


def response_events(
    response_id: str,
    items: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]],
    *,
    names: dict[str, str] = GA,
    delta_samples: int = 2400,
    fmt: AudioFormat = AudioFormat.PCM16,
    done: bool = True,
) -> list[dict[str, Any]]:
    """The events a realtime server sends for a response: items of (text, audio) parts,
    audio in deltas of ``delta_samples`` with the transcript's words interleaved."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
    ]
    for index, (item_id, parts) in enumerate(items):
        item = {"id": item_id, "type": "message", "role": "assistant"}
        events.append(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": index,
                "item": item,
            }
        )
        events.append({"type": names["item_added"], "item": item})
        for content_index, (text, audio) in enumerate(parts):
            where = {
                "response_id": response_id,
                "item_id": item_id,
                "output_index": index,
                "content_index": content_index,
            }
            events.append(
                {"type": "response.content_part.added", **where, "part": {"type": "audio"}}
            )
            words = iter(text.split(" "))
            for start in range(0, audio.size, delta_samples):
                chunk = audio[start : start + delta_samples]
                events.append({"type": names["audio"], **where, "delta": b64(chunk, fmt)})
                word = next(words, None)
                if word is not None:
                    events.append({"type": names["text"], **where, "delta": word + " "})
            rest = " ".join(words)
            if rest:
                events.append({"type": names["text"], **where, "delta": rest})
            events.append({"type": names["audio_done"], **where})
            events.append({"type": names["text_done"], **where, "transcript": text})
            events.append({"type": "response.content_part.done", **where})
        events.append(
            {"type": "response.output_item.done", "response_id": response_id, "item": item}
        )
    if done:
        events.append(
            {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
        )
    return events


SPEECH_STARTED = {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"}
SPEECH_STOPPED = {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 0, "item_id": "u1"}


class Rig:
    """A bridge on a WAV sink paced by a virtual clock, recording what it sends."""

    def __init__(self, path: Path, **options: Any) -> None:
        self.clock = VirtualClock()
        self.path = path
        self.sink = WavSink(path, clock=self.clock)
        self.playout = AgentPlayout(audio_source=self.sink)
        self.sent: list[tuple[dict[str, Any], ItemHeard | None]] = []
        self.ended: list[ItemHeard] = []
        self.started: list[str] = []
        self.handles: list[PlayoutHandle] = []
        self.bridge = RealtimeBridge(self.playout, self.record, **options)
        self.bridge.on("item_ended", self.ended.append)
        self.bridge.on("item_started", self.on_started)

    def on_started(self, handle: PlayoutHandle, _forwarder: object) -> None:
        self.started.append(handle.item_id)
        self.handles.append(handle)

    def record(self, event: dict[str, Any], heard: ItemHeard | None) -> None:
        self.sent.append((event, heard))

    def feed(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            self.bridge.handle(event)

    async def finish(self) -> np.ndarray:
        """Play what is left, close everything, and return the file's samples."""
        await self.clock.run(self.bridge.wait_idle())
        await self.clock.run(self.bridge.aclose())
        await self.playout.aclose()
        self.sink.close()
        samples, _ = soundfile.read(self.path, dtype="int16")
        return np.asarray(samples)

    @property
    def events_sent(self) -> list[dict[str, Any]]:
        return [event for event, _ in self.sent]


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return tmp_path / "heard.wav"


async def test_an_item_heard_to_the_end_sends_nothing(wav: Path) -> None:
    rig = Rig(wav)
    audio = ramp(RATE)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, audio)])]))
    played = await rig.finish()
    np.testing.assert_array_equal(played, audio)
    assert rig.sent == []
    [heard] = rig.ended
    assert (heard.item_id, heard.interrupted, heard.truncation) == ("item_1", False, None)
    assert heard.heard_samples == heard.received_samples == RATE
    assert heard.heard_text.strip() == TEXT


@pytest.mark.parametrize("cut_s", [0.05, 0.37, 1.0, 1.73])
async def test_a_barge_in_truncates_at_the_last_whole_millisecond_the_file_holds(
    wav: Path, cut_s: float
) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(2 * RATE))])]))
    await rig.clock.advance(cut_s)
    rig.bridge.handle(SPEECH_STARTED)
    [(event, heard)] = rig.sent  # sent before handle() returned: the same turn
    played = await rig.finish()
    assert event == {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": played.size * 1000 // RATE,
    }
    assert heard is not None
    assert heard.interrupted
    assert heard.heard_samples == played.size
    assert rig.ended == [heard]
    assert TEXT.startswith(heard.heard_text.strip())
    assert rig.handles[0].played_text == heard.heard_text  # what was sent is what stayed
    np.testing.assert_array_equal(played[: played.size - 200], ramp(played.size - 200))


async def test_a_barge_in_before_any_audio_deletes_the_item(wav: Path) -> None:
    rig = Rig(wav)
    events = response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])])
    rig.feed(events[:4])  # up to content_part.added: the item plays, no audio yet
    await rig.clock.advance(0.2)
    rig.bridge.handle(SPEECH_STARTED)
    assert rig.events_sent == [{"type": "conversation.item.delete", "item_id": "item_1"}]
    rig.feed(events[4:])  # the deltas still in flight are dropped, never played
    played = await rig.finish()
    assert played.size == 0
    assert len(rig.sent) == 1


async def test_the_beta_event_names_play_and_truncate_alike(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], names=BETA))
    await rig.clock.advance(0.5)
    rig.bridge.handle(SPEECH_STARTED)
    played = await rig.finish()
    [event] = rig.events_sent
    assert event["audio_end_ms"] == played.size * 1000 // RATE
    assert 400 < event["audio_end_ms"] < 600


async def test_g711_output_counts_milliseconds_at_8_khz(tmp_path: Path) -> None:
    clock = VirtualClock()
    sink = WavSink(tmp_path / "phone.wav", sample_rate=8000, clock=clock)
    playout = AgentPlayout(audio_source=sink)
    sent: list[dict[str, Any]] = []
    bridge = RealtimeBridge(playout, lambda event, _heard: sent.append(event))
    bridge.handle(
        {
            "type": "session.updated",
            "session": {"audio": {"output": {"format": {"type": "audio/pcmu"}}}},
        }
    )
    assert bridge.output_format is AudioFormat.G711_ULAW
    audio = mulaw.decode(mulaw.encode(ramp(8000) * 3))
    for event in response_events(
        "resp_1", [("item_1", [(TEXT, audio)])], fmt=AudioFormat.G711_ULAW, delta_samples=800
    ):
        bridge.handle(event)
    await clock.advance(0.3)
    bridge.handle(SPEECH_STARTED)
    await clock.run(bridge.aclose())
    await playout.aclose()
    sink.close()
    played, rate = soundfile.read(tmp_path / "phone.wav", dtype="int16")
    assert rate == 8000
    assert sent == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": played.size * 1000 // 8000,
        }
    ]
    np.testing.assert_array_equal(played[:-40], audio[: played.size - 40])


async def test_parts_and_items_of_a_response_play_in_order(wav: Path) -> None:
    rig = Rig(wav)
    one, two, three = ramp(4800), ramp(7200, 5000), ramp(2400, 20000)
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", one), ("Two.", two)]), ("item_2", [("Three.", three)])]
        )
    )
    played = await rig.finish()
    np.testing.assert_array_equal(played, np.concatenate([one, two, three]))
    assert [(h.item_id, h.content_index) for h in rig.ended] == [
        ("item_1", 0),
        ("item_1", 1),
        ("item_2", 0),
    ]
    assert rig.started == ["item_1", "item_1", "item_2"]
    assert rig.sent == []


async def test_a_barge_in_truncates_the_playing_item_and_deletes_the_queued_one(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", ramp(RATE))]), ("item_2", [("Two.", ramp(RATE))])]
        )
    )
    await rig.clock.advance(0.4)
    rig.bridge.handle(SPEECH_STARTED)
    played = await rig.finish()
    assert rig.events_sent == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": played.size * 1000 // RATE,
        },
        {"type": "conversation.item.delete", "item_id": "item_2"},
    ]
    assert rig.started == ["item_1"]
    assert [(h.item_id, h.heard_samples) for h in rig.ended] == [
        ("item_1", played.size),
        ("item_2", 0),
    ]


async def test_the_next_response_plays_after_a_barge_in(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [("One.", ramp(RATE))])], done=False))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)
    rig.feed([{"type": "response.done", "response": {"id": "resp_1", "status": "cancelled"}}])
    rig.feed(response_events("resp_2", [("item_2", [("Two.", ramp(4800, 100))])]))
    played = await rig.finish()
    cut = rig.ended[0].heard_samples
    assert played.size == cut + 4800
    np.testing.assert_array_equal(played[cut:], ramp(4800, 100))
    assert rig.started == ["item_1", "item_2"]


async def test_deltas_of_an_interrupted_or_unknown_item_are_dropped_and_said_once(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    events = response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])])
    rig.feed(events[:8])
    await rig.clock.advance(0.1)
    rig.bridge.handle(SPEECH_STARTED)
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        rig.feed(events[8:])
        stray = {"type": "response.output_audio.delta", "item_id": "ghost", "content_index": 0}
        rig.feed([{**stray, "delta": b64(ramp(2400))}] * 3)
    played = await rig.finish()
    [heard] = rig.ended
    assert played.size == heard.heard_samples < 4800
    assert heard.received_samples == 4800  # the two deltas before the barge-in, no later one
    dropped = [r.getMessage() for r in caplog.records if "dropped its deltas" in r.getMessage()]
    assert len(dropped) == 2
    assert "item_1" in dropped[0]
    assert "interrupted" in dropped[0]
    assert "ghost" in dropped[1]
    assert "announced" in dropped[1]


async def test_a_new_item_before_the_done_events_ends_the_old_one_cleanly(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    first = response_events("resp_1", [("item_1", [("One.", ramp(4800))])], done=False)
    second = response_events("resp_1", [("item_2", [("Two.", ramp(2400, 9000))])])
    without_done = [e for e in first if not e["type"].endswith("done")]
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        rig.feed(without_done + second[1:])
    played = await rig.finish()
    np.testing.assert_array_equal(played, np.concatenate([ramp(4800), ramp(2400, 9000)]))
    assert any("began before its done events" in r.getMessage() for r in caplog.records)
    assert [h.interrupted for h in rig.ended] == [False, False]


async def test_server_errors_and_malformed_events_are_logged_and_change_nothing(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        rig.feed(
            [
                {
                    "type": "error",
                    "error": {"code": "invalid_value", "message": "bad", "event_id": "e1"},
                },
                {"type": "response.output_audio.delta", "delta": "AAAA"},
                {"type": "response.output_audio.delta", "item_id": "x", "content_index": -1},
                {"type": "response.created"},
                "not an object",  # type: ignore[list-item]
            ]
        )
        rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(4800))])]))
    played = await rig.finish()
    assert played.size == 4800
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "invalid_value: bad (in reply to e1)" in messages
    assert "has no item_id" in messages
    assert "content_index -1" in messages
    assert "has no response object" in messages
    assert "not an object" in messages


async def test_a_connection_closing_mid_item_plays_what_came_and_returns(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    events = response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])])

    async def connection() -> AsyncIterator[dict[str, Any]]:
        deltas = 0
        for event in events:
            yield event
            deltas += event["type"] == GA["audio"]
            if deltas == 4:
                return  # the socket closed

    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        await rig.clock.run(rig.bridge.run(connection()))
    played = await rig.finish()
    np.testing.assert_array_equal(played, ramp(4 * 2400))
    assert rig.sent == []
    assert any("connection closed mid-item" in r.getMessage() for r in caplog.records)
    [heard] = rig.ended
    assert not heard.interrupted
    assert heard.ended_early


async def test_a_bad_delta_ends_the_audio_there_and_truncates_to_what_played(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    events = response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])])
    deltas = [i for i, e in enumerate(events) if e["type"] == GA["audio"]]
    events[deltas[3]] = {**events[deltas[3]], "delta": "not base64!"}
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        rig.feed(events)
    played = await rig.finish()
    np.testing.assert_array_equal(played, ramp(3 * 2400))
    assert rig.events_sent == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 300,
        }
    ]
    assert any("field delta" in r.getMessage() for r in caplog.records)


async def test_a_false_interruption_resumes_from_the_exact_sample(wav: Path) -> None:
    rig = Rig(wav, false_interruption_timeout=1.0)
    audio = ramp(RATE)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, audio)])]))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)
    assert rig.bridge.paused
    await rig.clock.advance(0.1)  # the pause's short fade has played
    held = rig.sink.samples_played
    await rig.clock.advance(2.0)  # the user is still speaking: the pause holds
    assert rig.sink.samples_played == held
    rig.bridge.handle(SPEECH_STOPPED)
    await rig.clock.advance(0.9)
    assert rig.bridge.paused
    await rig.clock.advance(0.2)
    assert not rig.bridge.paused
    played = await rig.finish()
    assert rig.sent == []
    [heard] = rig.ended
    assert (heard.interrupted, heard.heard_samples) == (False, RATE)
    assert played.size == RATE


async def test_a_real_turn_after_the_pause_truncates_where_it_paused(wav: Path) -> None:
    rig = Rig(wav, false_interruption_timeout=1.0)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)
    await rig.clock.advance(0.5)
    held = rig.sink.samples_played
    rig.bridge.handle(SPEECH_STOPPED)
    rig.bridge.handle(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Wait, stop.",
        }
    )
    assert not rig.bridge.paused
    [event] = rig.events_sent
    played = await rig.finish()
    assert played.size == held
    assert event["audio_end_ms"] == held * 1000 // RATE


async def test_an_empty_transcript_is_a_false_interruption_at_once(wav: Path) -> None:
    rig = Rig(wav, false_interruption_timeout=5.0)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)
    rig.bridge.handle(SPEECH_STOPPED)
    rig.bridge.handle(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "transcript": "",
        }
    )
    assert not rig.bridge.paused
    played = await rig.finish()
    assert played.size == RATE
    assert rig.sent == []


async def test_a_new_response_while_paused_interrupts_the_paused_item(wav: Path) -> None:
    rig = Rig(wav, false_interruption_timeout=1.0)
    rig.feed(response_events("resp_1", [("item_1", [("One.", ramp(RATE))])]))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)
    await rig.clock.advance(0.1)
    held = rig.sink.samples_played
    rig.feed(response_events("resp_2", [("item_2", [("Two.", ramp(2400, 7))])]))
    played = await rig.finish()
    [event] = rig.events_sent
    assert event["item_id"] == "item_1"
    assert event["audio_end_ms"] == held * 1000 // RATE
    assert rig.ended[0].heard_samples == held
    np.testing.assert_array_equal(played[held:], ramp(2400, 7))


async def test_an_output_that_cannot_pause_is_interrupted_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()

    class NoPause(NullSink):
        pause = None  # type: ignore[assignment]

    playout = AgentPlayout(audio_source=NoPause(clock=clock))
    sent: list[dict[str, Any]] = []
    bridge = RealtimeBridge(
        playout, lambda event, _: sent.append(event), false_interruption_timeout=1.0
    )
    for event in response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]):
        bridge.handle(event)
    await clock.advance(0.5)
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        bridge.handle(SPEECH_STARTED)
    assert [event["type"] for event in sent] == ["conversation.item.truncate"]
    assert any("cannot pause" in r.getMessage() for r in caplog.records)
    await clock.run(bridge.aclose())
    await playout.aclose()


async def test_the_applications_interrupt_cancels_the_response_then_truncates(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], done=False))
    await rig.clock.advance(0.25)
    heard = rig.bridge.interrupt()
    assert heard is not None
    assert [event["type"] for event in rig.events_sent] == [
        "response.cancel",
        "conversation.item.truncate",
    ]
    assert rig.sent[1][1] is heard
    played = await rig.finish()
    assert heard.audio_end_ms == played.size * 1000 // RATE
    assert rig.bridge.interrupt() is None


async def test_every_send_starts_in_the_barge_ins_turn_in_order_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    written: list[str] = []
    gate = asyncio.Event()

    async def send(event: dict[str, Any], _heard: ItemHeard | None) -> None:
        written.append(f"wrote {event['type']}")  # a WebSocket writes, then waits to drain
        if event["type"] == "response.cancel":
            await gate.wait()
            raise ConnectionError("socket gone")

    bridge = RealtimeBridge(playout, send)
    for event in response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], done=False):
        bridge.handle(event)
    await clock.advance(0.2)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        bridge.interrupt()
        # the cancel still waits, and the truncate was written after it, in this turn
        assert written == ["wrote response.cancel", "wrote conversation.item.truncate"]
        gate.set()
        await clock.run(bridge.aclose())
    assert any("response.cancel failed" in r.getMessage() for r in caplog.records)
    await playout.aclose()


async def test_aclose_mid_item_truncates_and_ends_every_part(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", ramp(RATE))]), ("item_2", [("Two.", ramp(RATE))])]
        )
    )
    await rig.clock.advance(0.5)
    await rig.clock.run(rig.bridge.aclose())
    assert [event["type"] for event in rig.events_sent] == [
        "conversation.item.truncate",
        "conversation.item.delete",
    ]
    assert len(rig.ended) == 2
    rig.bridge.handle(SPEECH_STARTED)  # closed: ignored
    assert len(rig.sent) == 2
    await rig.finish()


async def test_a_failing_listener_is_logged_and_the_next_item_plays(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)

    def broken(_heard: ItemHeard) -> None:
        raise RuntimeError("listener bug")

    rig.bridge.on("item_ended", broken)
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", ramp(2400))]), ("item_2", [("Two.", ramp(2400))])]
        )
    )
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        played = await rig.finish()
    assert played.size == 4800
    assert [h.item_id for h in rig.ended] == ["item_1", "item_2"]
    assert sum("item_ended listener failed" in r.getMessage() for r in caplog.records) == 2


async def test_an_unplayable_output_format_drops_the_audio_and_says_why(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        rig.feed([{"type": "session.created", "session": {"output_audio_format": "g711_alaw"}}])
        rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]))
    played = await rig.finish()
    assert played.size == 0
    assert any("g711_alaw" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"false_interruption_timeout": 0}, ValueError),
        ({"false_interruption_timeout": float("inf")}, ValueError),
        ({"false_interruption_timeout": True}, ValueError),
        ({"output_format": "pcm16"}, TypeError),
    ],
)
async def test_bad_options_are_refused_by_name(options: dict[str, Any], error: type) -> None:
    playout = AgentPlayout(audio_source=NullSink(clock=VirtualClock()))
    with pytest.raises(error, match=next(iter(options))):
        RealtimeBridge(playout, lambda event, heard: None, **options)
    with pytest.raises(TypeError, match="send"):
        RealtimeBridge(playout, "ws")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="playout"):
        RealtimeBridge(object(), lambda event, heard: None)  # type: ignore[arg-type]
    await playout.aclose()


@pytest.mark.parametrize("ignores_cancel", [False, True])
async def test_a_send_that_never_returns_is_cancelled_at_close_and_holds_nothing_back(
    caplog: pytest.LogCaptureFixture, ignores_cancel: bool
) -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    written: list[str] = []
    release = asyncio.get_running_loop().create_future()

    async def send(event: dict[str, Any], _heard: ItemHeard | None) -> None:
        written.append(event["type"])
        if event["type"] == "response.cancel":
            try:
                await asyncio.get_running_loop().create_future()  # hangs for ever
            except asyncio.CancelledError:
                if not ignores_cancel:
                    raise
                await release  # swallows the cancellation and waits on

    bridge = RealtimeBridge(playout, send)
    for event in response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], done=False):
        bridge.handle(event)
    await clock.advance(0.2)
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        bridge.interrupt()
        assert written == ["response.cancel", "conversation.item.truncate"]
        await clock.run(bridge.aclose())  # returns: the wait on the send is bounded
    assert any(
        "1 client event(s) still being sent after 2.0 s; cancelled" in r.getMessage()
        for r in caplog.records
    )
    release.set_result(None)
    await playout.aclose()


async def test_a_forwarder_factory_that_raises_skips_that_item_only(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def forwarder_for(item_id: str) -> TranscriptForwarder:
        calls.append(item_id)
        if item_id == "item_1":
            raise RuntimeError("no forwarder today")
        return TranscriptForwarder()

    rig = Rig(wav, transcript=forwarder_for)
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", ramp(2400))]), ("item_2", [("Two.", ramp(2400, 50))])]
        )
    )
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        played = await rig.finish()
    np.testing.assert_array_equal(played, ramp(2400, 50))
    assert calls == ["item_1", "item_2"]
    assert [(h.item_id, h.heard_samples) for h in rig.ended] == [("item_1", 0), ("item_2", 2400)]
    assert rig.events_sent == [{"type": "conversation.item.delete", "item_id": "item_1"}]
    assert any("its forwarder or play() failed" in r.getMessage() for r in caplog.records)


async def test_audio_after_a_part_was_ended_early_truncates_it_to_what_played(wav: Path) -> None:
    rig = Rig(wav)
    first = response_events("resp_1", [("item_1", [("One two three four.", ramp(4 * 2400))])])
    second = response_events("resp_1", [("item_2", [("Five.", ramp(2400, 9000))])])
    deltas = [i for i, e in enumerate(first) if e["type"] == GA["audio"]]
    rig.feed(first[: deltas[1] + 1])  # two deltas of item_1
    rig.feed(second[1:5])  # item_2 begins before item_1's done events: item_1 ends there
    rig.feed([e for e in first[deltas[1] + 1 :] if e["type"] == GA["audio"]])  # then the rest
    rig.feed(second[5:])
    played = await rig.finish()
    np.testing.assert_array_equal(played, np.concatenate([ramp(4800), ramp(2400, 9000)]))
    assert rig.events_sent == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 200,
        }
    ]


async def test_audio_after_a_part_played_out_truncates_it_late(wav: Path) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(2400))])]))
    await rig.clock.run(rig.bridge.wait_idle())
    assert rig.sent == []
    late = {"type": GA["audio"], "item_id": "item_1", "content_index": 0}
    rig.feed([{**late, "delta": b64(ramp(2400))}] * 2)
    played = await rig.finish()
    assert played.size == 2400
    assert rig.events_sent == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 100,
        }
    ]


async def test_a_part_announced_after_its_response_was_done_cannot_wedge_the_next(
    wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(wav)
    rig.feed(response_events("resp_1", [("item_1", [("One.", ramp(2400))])]))
    stray = {
        "type": "response.content_part.added",
        "response_id": "resp_1",
        "item_id": "item_1",
        "content_index": 1,
        "part": {"type": "audio"},
    }
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        rig.feed([stray])
        rig.feed(response_events("resp_2", [("item_2", [("Two.", ramp(2400, 500))])]))
    played = await rig.finish()
    np.testing.assert_array_equal(played, np.concatenate([ramp(2400), ramp(2400, 500)]))
    assert rig.sent == []
    assert any("already done" in r.getMessage() for r in caplog.records)


class Boom(BaseException):
    """A BaseException that is not an Exception, as a listener might raise."""


@pytest.mark.parametrize("event", ["item_started", "item_ended"])
async def test_a_listener_raising_a_base_exception_is_logged_and_nothing_wedges(
    wav: Path, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    rig = Rig(wav)

    def broken(*_: object) -> None:
        raise Boom

    rig.bridge.on(event, broken)  # type: ignore[arg-type]
    rig.feed(
        response_events(
            "resp_1", [("item_1", [("One.", ramp(2400))]), ("item_2", [("Two.", ramp(2400, 50))])]
        )
    )
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        played = await rig.finish()
    np.testing.assert_array_equal(played, np.concatenate([ramp(2400), ramp(2400, 50)]))
    assert [h.interrupted for h in rig.ended] == [False, False]
    assert sum(f"{event} listener failed" in r.getMessage() for r in caplog.records) == 2


async def test_a_transcript_of_an_earlier_user_turn_decides_nothing_while_paused(
    wav: Path,
) -> None:
    rig = Rig(wav, false_interruption_timeout=1.0)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]))
    await rig.clock.advance(0.3)
    rig.bridge.handle({**SPEECH_STARTED, "item_id": "user_2"})
    late = "conversation.item.input_audio_transcription.completed"
    rig.bridge.handle({"type": late, "item_id": "user_1", "transcript": "What time is it?"})
    rig.bridge.handle({"type": late, "item_id": "user_1", "transcript": ""})
    assert rig.bridge.paused  # neither the late words nor the late silence decide
    rig.bridge.handle({"type": late, "item_id": "user_2", "transcript": ""})
    assert rig.bridge.paused  # an empty transcript before speech_stopped decides nothing
    rig.bridge.handle({**SPEECH_STOPPED, "item_id": "user_2"})
    rig.bridge.handle({"type": late, "item_id": "user_2", "transcript": ""})
    assert not rig.bridge.paused
    played = await rig.finish()
    assert played.size == RATE
    assert rig.sent == []


async def test_a_cancelled_aclose_goes_on_and_the_next_one_waits_for_it() -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    cancelled: list[str] = []

    async def send(event: dict[str, Any], _heard: ItemHeard | None) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # a socket that never drains
        except asyncio.CancelledError:
            cancelled.append(event["type"])
            raise

    bridge = RealtimeBridge(playout, send)
    for event in response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])]):
        bridge.handle(event)
    await clock.advance(0.2)
    closing = asyncio.ensure_future(bridge.aclose())
    await asyncio.sleep(0)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    await clock.run(bridge.aclose())  # waits for the first close: its sends were flushed
    assert cancelled == ["conversation.item.truncate"]
    await playout.aclose()


async def test_a_cancelled_run_keeps_sending_and_a_closed_one_claims_no_truncation(
    wav: Path,
) -> None:
    rig = Rig(wav)
    events = response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], done=False)
    gate = asyncio.Event()

    async def connection() -> AsyncIterator[dict[str, Any]]:
        for event in events:
            yield event
        await gate.wait()

    running = asyncio.ensure_future(rig.bridge.run(connection()))
    await rig.clock.advance(0.3)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    heard = rig.bridge.interrupt()  # the connection is still open: the truncation goes
    assert heard is not None
    assert heard.truncation is not None
    assert [event["type"] for event in rig.events_sent] == [
        "response.cancel",
        "conversation.item.truncate",
    ]
    await rig.finish()

    closed = Rig(wav.with_name("closed.wav"))

    async def closes_mid_item() -> AsyncIterator[dict[str, Any]]:
        for event in events[:8]:
            yield event

    await closed.clock.run(closed.bridge.run(closes_mid_item()))
    await closed.finish()
    assert closed.sent == []
    assert [h.truncation for h in closed.ended] == [None]


async def test_a_real_turn_while_the_response_runs_cancels_it_then_truncates(wav: Path) -> None:
    rig = Rig(wav, false_interruption_timeout=1.0)
    rig.feed(response_events("resp_1", [("item_1", [(TEXT, ramp(RATE))])], done=False))
    await rig.clock.advance(0.3)
    rig.bridge.handle(SPEECH_STARTED)  # a session with interrupt_response off: it runs on
    rig.bridge.handle(
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "delta": "Stop",
        }
    )
    assert [event["type"] for event in rig.events_sent] == [
        "response.cancel",
        "conversation.item.truncate",
    ]
    played = await rig.finish()
    assert rig.events_sent[1]["audio_end_ms"] == played.size * 1000 // RATE
    assert not rig.ended[0].ended_early
