"""The simulated realtime server, through connect_realtime over real sockets: it must behave as
the real API does, in both dialects, for the bridge's tests to mean anything."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from agent_playout.bridges import AudioFormat, Dialect, session_update
from agent_playout.bridges.connection import (
    RealtimeConnection,
    RealtimeConnectionError,
    connect_realtime,
)
from agent_playout.bridges.formats import decode_audio, encode_audio
from agent_playout.bridges.simulator import (
    ScriptedItem,
    ScriptedPart,
    ScriptedResponse,
    SimulatedRealtimeServer,
)

RATE = 24000
GA_NAMES = {
    "audio": "response.output_audio.delta",
    "audio.done": "response.output_audio.done",
    "text": "response.output_audio_transcript.delta",
    "text.done": "response.output_audio_transcript.done",
    "added": "conversation.item.added",
}
BETA_NAMES = {
    "audio": "response.audio.delta",
    "audio.done": "response.audio.done",
    "text": "response.audio_transcript.delta",
    "text.done": "response.audio_transcript.done",
    "added": "conversation.item.created",
}
NAMES: dict[Dialect, dict[str, str]] = {"ga": GA_NAMES, "beta": BETA_NAMES}


def ramp(samples: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + samples) % 30000) + 1).astype(np.int16)


def tone(ms: int, rate: int = RATE, hz: float = 440.0, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(ms: int, rate: int = RATE) -> np.ndarray:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


async def read_until(
    connection: RealtimeConnection, type: str, count: int = 1
) -> list[dict[str, Any]]:
    """Server events up to and including the ``count``-th of ``type``."""
    events: list[dict[str, Any]] = []

    async def read() -> list[dict[str, Any]]:
        seen = 0
        async for event in connection:
            events.append(event)
            seen += event["type"] == type
            if seen == count:
                return events
        raise AssertionError(f"the connection closed before {type} #{count}: {events}")

    return await asyncio.wait_for(read(), 10)


def of_type(events: list[dict[str, Any]], type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == type]


def refusal(event: dict[str, Any]) -> tuple[str, str | None, str | None]:
    assert event["type"] == "error"
    error = event["error"]
    return error["code"], error["param"], error["event_id"]


TWO_ITEMS = ScriptedResponse(
    (
        ScriptedItem(
            (
                ScriptedPart("Hello there, friend.", ramp(6000)),
                ScriptedPart("A second part.", ramp(2500, 6000)),
            )
        ),
        ScriptedItem((ScriptedPart("Bye.", ramp(3000, 9000)),)),
    )
)


@pytest.mark.realtime
@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_a_response_streams_in_the_real_apis_order_and_shapes(dialect: Dialect) -> None:
    names = NAMES[dialect]
    async with (
        SimulatedRealtimeServer([TWO_ITEMS], dialect=dialect, speed=50) as server,
        await connect_realtime(server.url) as connection,
    ):
        created = await read_until(connection, "session.created")
        await connection.send({"type": "response.create", "event_id": "evt_client_1"})
        events = await read_until(connection, "response.done")

    assert created[0]["session"]["id"].startswith("sess_")
    assert all(event["event_id"].startswith("event_") for event in events)
    assert len({event["event_id"] for event in events}) == len(events)
    response_id = events[0]["response"]["id"]
    assert response_id.startswith("resp_")
    assert events[0]["response"]["status"] == "in_progress"

    # The order, with each part's deltas collapsed to "deltas".
    shape: list[str] = []
    for event in events:
        kind = "deltas" if event["type"] in (names["audio"], names["text"]) else event["type"]
        if not (kind == "deltas" and shape[-1] == "deltas"):
            shape.append(kind)
    part = [
        "response.content_part.added",
        "deltas",
        names["audio.done"],
        names["text.done"],
        "response.content_part.done",
    ]
    item = ["response.output_item.added", names["added"]]
    assert shape == [
        "response.created",
        *item,
        *part,
        *part,
        "response.output_item.done",
        *item,
        *part,
        "response.output_item.done",
        "response.done",
    ]

    items = of_type(events, "response.output_item.added")
    ids = [added["item"]["id"] for added in items]
    assert all(item_id.startswith("item_") for item_id in ids)
    assert [added["output_index"] for added in items] == [0, 1]
    assert [added["previous_item_id"] for added in of_type(events, names["added"])] == [
        None,
        ids[0],
    ]
    scripted = [(0, 0, ids[0]), (0, 1, ids[0]), (1, 0, ids[1])]
    for (output_index, content_index, item_id), part_script in zip(
        scripted, [p for i in TWO_ITEMS.items for p in i.parts], strict=True
    ):
        key = (item_id, content_index)

        def of_part(type: str, key: tuple[str, int] = key) -> list[dict[str, Any]]:
            return [e for e in of_type(events, type) if (e["item_id"], e["content_index"]) == key]

        audio = of_part(names["audio"])
        assert all(e["response_id"] == response_id for e in audio)
        assert all(e["output_index"] == output_index for e in audio)
        samples = [decode_audio(e["delta"], AudioFormat.PCM16) for e in audio]
        assert [s.size for s in samples[:-1]] == [2400] * (len(samples) - 1)  # 100 ms each
        assert np.array_equal(np.concatenate(samples), part_script.audio)
        assert "".join(e["delta"] for e in of_part(names["text"])) == part_script.text
        assert [e["transcript"] for e in of_part(names["text.done"])] == [part_script.text]
        assert server.audio_sent_samples(item_id, content_index) == part_script.audio.size

    done = events[-1]["response"]
    assert done["id"] == response_id
    assert done["status"] == "completed"
    assert [o["id"] for o in done["output"]] == ids
    assert done["output"][0]["content"][1]["transcript"] == "A second part."
    assert server.received == [{"type": "response.create", "event_id": "evt_client_1"}]


@pytest.mark.realtime
@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_g711_output_is_8_khz_mu_law_of_the_same_sound(dialect: Dialect) -> None:
    names = NAMES[dialect]
    spoken = tone(300)
    responses = [ScriptedResponse.spoken("Beep.", spoken)]
    async with (
        SimulatedRealtimeServer(responses, dialect=dialect, speed=50) as server,
        await connect_realtime(server.url) as connection,
    ):
        update = session_update(dialect=dialect, output_format=AudioFormat.G711_ULAW)
        await connection.send(update)
        await connection.send({"type": "response.create"})
        events = await read_until(connection, "response.done")
    session = of_type(events, "session.updated")[0]["session"]
    if dialect == "ga":
        assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    else:
        assert session["output_audio_format"] == "g711_ulaw"
        assert session["input_audio_format"] == "pcm16"
    deltas = [
        decode_audio(e["delta"], AudioFormat.G711_ULAW) for e in of_type(events, names["audio"])
    ]
    assert [d.size for d in deltas] == [800, 800, 800]  # 100 ms at 8 kHz
    heard = np.concatenate(deltas)
    item_id = of_type(events, names["audio"])[0]["item_id"]
    assert server.audio_sent_samples(item_id) == heard.size == spoken.size // 3
    spectrum = np.abs(np.fft.rfft(heard.astype(np.float64)))
    assert np.argmax(spectrum) * 8000 / heard.size == pytest.approx(440, abs=5)
    rms = np.sqrt(np.mean(heard[100:-100].astype(np.float64) ** 2))
    assert rms == pytest.approx(8000 / np.sqrt(2), rel=0.05)


@pytest.mark.realtime
async def test_what_the_real_api_refuses_is_refused_with_the_clients_event_id() -> None:
    spoken = ramp(4800)  # 200 ms
    responses = [ScriptedResponse.spoken("Two words.", spoken)]
    async with (
        SimulatedRealtimeServer(responses, speed=50) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "response.cancel", "event_id": "c0"})
        events = await read_until(connection, "error")
        assert refusal(events[-1]) == ("response_cancel_not_active", None, "c0")

        await connection.send({"type": "response.create"})
        await connection.send({"type": "response.create", "event_id": "c1"})
        events = await read_until(connection, "error")
        assert refusal(events[-1]) == ("conversation_already_has_active_response", None, "c1")
        events += await read_until(connection, "response.done")
        item_id = of_type(events, "response.output_item.added")[0]["item"]["id"]
        assert server.audio_sent_samples(item_id) == 4800

        def truncate(end_ms: int, event_id: str, item: str = item_id) -> dict[str, Any]:
            return {
                "type": "conversation.item.truncate",
                "event_id": event_id,
                "item_id": item,
                "content_index": 0,
                "audio_end_ms": end_ms,
            }

        refused = [
            (truncate(0, "t0"), ("invalid_value", "audio_end_ms", "t0")),
            (truncate(201, "t1"), ("invalid_value", "audio_end_ms", "t1")),
            (truncate(50, "t2", "item_nope"), ("item_not_found", "item_id", "t2")),
        ]
        for event, expected in refused:
            await connection.send(event)
            assert refusal((await read_until(connection, "error"))[-1]) == expected
        await connection.send(truncate(200, "t3"))
        truncated = (await read_until(connection, "conversation.item.truncated"))[-1]
        assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (
            item_id,
            0,
            200,
        )
        await connection.send({"type": "conversation.item.delete", "item_id": item_id})
        deleted = (await read_until(connection, "conversation.item.deleted"))[-1]
        assert deleted["item_id"] == item_id
        await connection.send({"type": "conversation.item.delete", "item_id": item_id})
        assert refusal((await read_until(connection, "error"))[-1])[0] == "item_not_found"
        # With the script spent, a response has no output (it never hangs).
        await connection.send({"type": "response.create"})
        done = (await read_until(connection, "response.done"))[-1]["response"]
        assert (done["status"], done["output"]) == ("completed", [])


@pytest.mark.parametrize(
    ("dialect", "foreign"),
    [("ga", {"output_audio_format": "pcm16"}), ("beta", {"audio": {"output": {}}})],
)
async def test_a_session_update_in_the_other_dialect_is_an_unknown_parameter(
    dialect: Dialect, foreign: dict[str, Any]
) -> None:
    async with (
        SimulatedRealtimeServer([], dialect=dialect) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "session.update", "event_id": "u1", "session": foreign})
        code, param, event_id = refusal((await read_until(connection, "error"))[-1])
    assert (code, event_id) == ("unknown_parameter", "u1")
    assert param == f"session.{next(iter(foreign))}"


@pytest.mark.realtime
async def test_speech_started_cancels_and_the_delta_in_flight_comes_before_the_done_events() -> (
    None
):
    responses = [ScriptedResponse.spoken("A long answer here.", ramp(2 * RATE))]
    async with (
        SimulatedRealtimeServer(responses, speed=4, late_deltas=1) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "response.create"})
        before = await read_until(connection, GA_NAMES["audio"], count=2)
        await server.speech_started()
        await server.close()
        after = [event async for event in connection]
    events = before + after
    types = [event["type"] for event in after]
    started = types.index("input_audio_buffer.speech_started")
    done = types.index("response.done")
    assert types[started:] == [
        "input_audio_buffer.speech_started",
        GA_NAMES["audio"],  # the delta that was in flight
        GA_NAMES["audio.done"],
        GA_NAMES["text.done"],
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert after[done]["response"]["status"] == "cancelled"
    assert after[done]["response"]["status_details"] == {
        "type": "cancelled",
        "reason": "turn_detected",
    }
    assert after[done]["response"]["output"][0]["status"] == "incomplete"
    item_id = before[-1]["item_id"]
    assert after[started + 1]["item_id"] == item_id
    sent = sum(
        decode_audio(e["delta"], AudioFormat.PCM16).size for e in of_type(events, GA_NAMES["audio"])
    )
    assert server.audio_sent_samples(item_id) == sent < 2 * RATE
    assert after[started]["item_id"].startswith("item_")


@pytest.mark.realtime
async def test_a_client_cancel_is_client_cancelled_and_the_next_turn_follows_speech_stopped() -> (
    None
):
    spoken = ramp(RATE)
    responses = [ScriptedResponse.spoken("One.", spoken), ScriptedResponse.spoken("Two.", spoken)]
    async with (
        SimulatedRealtimeServer(responses, speed=4, late_deltas=0) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "response.create"})
        await read_until(connection, GA_NAMES["audio"])
        await connection.send({"type": "response.cancel"})
        events = await read_until(connection, "response.done")
        assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"

        await server.speech_stopped("")  # noise: committed, transcribed as nothing, no answer
        await server.speech_stopped("what time is it")
        events = await read_until(connection, "response.created")
    types = [event["type"] for event in events]
    assert GA_NAMES["audio"] not in types  # no late delta with late_deltas=0
    transcripts = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert [t["transcript"] for t in transcripts] == ["", "what time is it"]
    assert types.count("response.created") == 1
    assert types.index("response.created") > types.index(
        "conversation.item.input_audio_transcription.completed",
        types.index("input_audio_buffer.committed") + 2,
    )
    committed = of_type(events, "input_audio_buffer.committed")
    stopped = of_type(events, "input_audio_buffer.speech_stopped")
    assert [c["item_id"] for c in committed] == [s["item_id"] for s in stopped]
    assert committed[1]["previous_item_id"] == committed[0]["item_id"]


@pytest.mark.realtime
async def test_turn_detection_can_leave_the_response_alone_and_create_none() -> None:
    responses = [ScriptedResponse.spoken("Keep going.", ramp(RATE // 2))] * 2
    settings = {"interrupt_response": False, "create_response": False}
    update = {"type": "realtime", "audio": {"input": {"turn_detection": settings}}}
    async with (
        SimulatedRealtimeServer(responses, speed=4) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "session.update", "session": update})
        updated = (await read_until(connection, "session.updated"))[-1]["session"]
        assert updated["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        await connection.send({"type": "response.create"})
        await read_until(connection, GA_NAMES["audio"])
        await server.speech_started()
        await server.speech_stopped("and then?")
        events = await read_until(connection, "response.done")
    assert events[-1]["response"]["status"] == "completed"
    assert [e["type"] for e in server.sent].count("response.created") == 1
    assert of_type(events, "conversation.item.input_audio_transcription.completed")


@pytest.mark.parametrize("input_format", [AudioFormat.PCM16, AudioFormat.G711_ULAW])
async def test_server_vad_hears_a_tone_then_silence_in_the_input_format(
    input_format: AudioFormat,
) -> None:
    rate = input_format.sample_rate
    async with (
        SimulatedRealtimeServer([], silence_ms=200, user_transcript="hi") as server,
        await connect_realtime(server.url) as connection,
    ):
        update = session_update(output_format=AudioFormat.PCM16, input_format=input_format)
        await connection.send(update)
        await read_until(connection, "session.updated")
        voice = np.concatenate([silence(100, rate), tone(300, rate), silence(400, rate)])
        for chunk in np.array_split(voice, 7):  # chunks that do not fall on 20 ms frames
            audio = encode_audio(chunk.astype(np.int16), input_format)
            await connection.send({"type": "input_audio_buffer.append", "audio": audio})
        events = await read_until(connection, "response.done")
    types = [event["type"] for event in events]
    assert types[:7] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    started, stopped, committed = events[:3]
    assert started["audio_start_ms"] == 100
    assert stopped["audio_end_ms"] == 400
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert events[5]["transcript"] == "hi"
    assert events[3]["item"]["role"] == "user"


async def test_quiet_input_and_no_turn_detection_start_no_turn() -> None:
    async with (
        SimulatedRealtimeServer([], vad_threshold=500) as server,
        await connect_realtime(server.url) as connection,
    ):
        quiet = encode_audio(tone(600, amplitude=400), AudioFormat.PCM16)  # RMS 283
        await connection.send({"type": "input_audio_buffer.append", "audio": quiet})
        await connection.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        await read_until(connection, "session.updated")
        loud = encode_audio(tone(300), AudioFormat.PCM16)
        await connection.send({"type": "input_audio_buffer.append", "audio": loud})
        await connection.send({"type": "input_audio_buffer.commit", "event_id": "k1"})
        events = await read_until(
            connection, "conversation.item.input_audio_transcription.completed"
        )
        await connection.send({"type": "input_audio_buffer.commit", "event_id": "k2"})
        events += await read_until(connection, "error")
    assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
    assert of_type(events, "input_audio_buffer.committed")
    assert refusal(events[-1]) == ("input_audio_buffer_commit_empty", None, "k2")
    assert [e["type"] for e in server.received] == [
        "input_audio_buffer.append",
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.commit",
    ]


async def test_clear_forgets_the_speech_the_vad_was_hearing() -> None:
    async with (
        SimulatedRealtimeServer([], silence_ms=200) as server,
        await connect_realtime(server.url) as connection,
    ):

        async def append(audio: np.ndarray) -> None:
            encoded = encode_audio(audio, AudioFormat.PCM16)
            await connection.send({"type": "input_audio_buffer.append", "audio": encoded})

        await append(tone(200))
        first = (await read_until(connection, "input_audio_buffer.speech_started"))[-1]
        await connection.send({"type": "input_audio_buffer.clear"})
        await read_until(connection, "input_audio_buffer.cleared")
        await append(silence(400))  # the cleared speech has no end to hear
        await append(tone(200))
        await append(silence(300))
        events = await read_until(connection, "input_audio_buffer.committed")
    types = [event["type"] for event in events]
    assert types[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    second, stopped, committed = events[:3]
    assert second["audio_start_ms"] == 600
    assert stopped["audio_end_ms"] == 800
    assert second["item_id"] == committed["item_id"] != first["item_id"]


async def test_a_turn_of_under_100_ms_is_refused_like_the_clients_commit() -> None:
    async with (
        SimulatedRealtimeServer([ScriptedResponse.spoken("No.", ramp(2400))]) as server,
        await connect_realtime(server.url) as connection,
    ):
        quiet = encode_audio(silence(60), AudioFormat.PCM16)
        await connection.send({"type": "input_audio_buffer.append", "audio": quiet})
        await connection.send({"type": "input_audio_buffer.commit", "event_id": "k1"})
        client = (await read_until(connection, "error"))[-1]
        await server.speech_stopped("too short")
        events = await read_until(connection, "error")
        await connection.send({"type": "input_audio_buffer.append", "audio": quiet})
        await server.wait_for("input_audio_buffer.append", count=2)
        await server.speech_stopped("long enough now")
        events += await read_until(connection, "response.done")
    assert refusal(client) == ("input_audio_buffer_commit_empty", None, "k1")
    assert [event["type"] for event in events[:2]] == ["input_audio_buffer.speech_stopped", "error"]
    assert refusal(events[1]) == ("input_audio_buffer_commit_empty", None, None)
    assert events[1]["error"]["message"] == client["error"]["message"]
    transcripts = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert [t["transcript"] for t in transcripts] == ["long enough now"]
    assert len(of_type(events, "response.created")) == 1


async def test_a_shared_script_is_used_up_and_a_per_connection_one_starts_afresh() -> None:
    responses = [
        ScriptedResponse.spoken("First.", ramp(2400)),
        ScriptedResponse.spoken("Second.", ramp(2400)),
    ]

    async def answers(server: SimulatedRealtimeServer) -> list[str]:
        heard = []
        for _ in range(3):
            async with await connect_realtime(server.url) as connection:
                await connection.send({"type": "response.create"})
                events = await read_until(connection, "response.done")
            heard.append("".join(e["delta"] for e in of_type(events, GA_NAMES["text"])))
        return heard

    async with SimulatedRealtimeServer(responses, speed=50) as shared:
        assert await answers(shared) == ["First.", "Second.", ""]
    async with SimulatedRealtimeServer(responses, speed=50, script_per_connection=True) as fresh:
        assert await answers(fresh) == ["First.", "First.", "First."]


@pytest.mark.realtime
async def test_barge_in_after_cuts_in_on_each_response_and_close_after_closes_with_1000() -> None:
    responses = [
        ScriptedResponse.spoken("One two.", ramp(RATE)),  # still being sent at the barge-in
        ScriptedResponse.spoken("Three.", ramp(RATE // 10)),  # all sent, only still playing
    ]
    async with (
        SimulatedRealtimeServer(responses, speed=2, barge_in_after=0.1, close_after=True) as server,
        await connect_realtime(server.url) as connection,
    ):
        await connection.send({"type": "response.create"})
        events = [event async for event in connection]
    assert (connection.close_code, connection.close_reason) == (1000, "the script has been spoken")
    turns = {
        "response.created",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.done",
    }
    assert [event["type"] for event in events if event["type"] in turns] == [
        "response.created",
        "input_audio_buffer.speech_started",
        "response.done",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
        "response.done",
        "input_audio_buffer.speech_started",  # the VAD hears the user over what still plays
    ]
    first, second = of_type(events, "response.done")
    assert first["response"]["status_details"]["reason"] == "turn_detected"
    assert second["response"]["status"] == "completed"
    types = [event["type"] for event in events]
    assert types.index(GA_NAMES["audio"]) < types.index("input_audio_buffer.speech_started")
    spoken = sum(
        decode_audio(e["delta"], AudioFormat.PCM16).size for e in of_type(events, GA_NAMES["audio"])
    )
    assert RATE // 10 < spoken < RATE + RATE // 10


async def test_require_bearer_refuses_a_missing_or_wrong_key_with_401() -> None:
    async with SimulatedRealtimeServer([], require_bearer="sk-right") as server:
        for headers in ([], [("Authorization", "Bearer sk-wrong")]):
            with pytest.raises(RealtimeConnectionError) as raised:
                await connect_realtime(server.url, headers=headers)
            assert raised.value.status == 401
            assert "invalid_api_key" in str(raised.value)
        async with await connect_realtime(
            server.url, headers={"Authorization": "Bearer sk-right"}
        ) as connection:
            assert (await read_until(connection, "session.created"))[0]["type"] == "session.created"


async def test_raw_messages_a_close_and_a_drop_reach_the_client_as_sent() -> None:
    async with SimulatedRealtimeServer([]) as server:
        async with await connect_realtime(server.url) as connection:
            await read_until(connection, "session.created")
            await server.send_raw("this is not json")
            await server.send_raw({"type": "response.output_audio.delta", "delta": "!!"})
            await server.close(4000, "bye now")
            after = [event async for event in connection]
            assert after == [{"type": "response.output_audio.delta", "delta": "!!"}]
            assert (connection.close_code, connection.close_reason) == (4000, "bye now")
        async with await connect_realtime(server.url) as connection:
            await read_until(connection, "session.created")
            await server.drop()
            assert [event async for event in connection] == []
            assert connection.close_code == 1006
        with pytest.raises(RuntimeError, match="no client is connected"):
            await server.speech_started()
    assert server.sent[-1]["type"] == "session.created"
    assert await server.wait_sent("session.created", count=2) is server.sent[-1]
    with pytest.raises(TimeoutError, match=r"no client event 'response\.create'"):
        await server.wait_for("response.create", timeout=0.01)


@pytest.mark.realtime
def test_the_standalone_endpoint_says_its_plan_closes_when_spoken_and_exits_0_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_playout.bridges.simulator",
            "--port",
            "0",
            "--speed",
            "50",
            "--text",
            "Hi.",
            "--close-after",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:")
        plan = [process.stdout.readline().strip() for _ in range(4)]
        assert plan[1] == "1. 'Hi.'"
        assert plan[2].startswith("no barge-in")
        assert plan[3].startswith("closes each connection (1000)")

        async def talk() -> tuple[list[dict[str, Any]], int | None]:
            async with await connect_realtime(url) as connection:
                await connection.send({"type": "response.create"})
                events = [event async for event in connection]
                return events, connection.close_code

        for _ in range(2):  # each connection hears the script from its first response
            events, code = asyncio.run(talk())
            assert "".join(e["delta"] for e in of_type(events, GA_NAMES["text"])) == "Hi."
            assert events[-1]["response"]["status"] == "completed"
            assert code == 1000

        async def terminated() -> int | None:
            async with await connect_realtime(url) as connection:
                await read_until(connection, "session.created")
                process.send_signal(signal.SIGTERM)
                assert [event async for event in connection] == []
                return connection.close_code

        assert asyncio.run(terminated()) == 1001
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
