"""The playground's server and sessions, with a real aiohttp server on 127.0.0.1 and real
aiortc peers on loopback as the browser tabs (``playground_peer.Tab``): each tab's captions
and report, several tabs at once, and bad input (malformed SDP, garbage on the socket and on
the data channel, a tab closed mid-item), each logged and affecting no other session."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("aiortc")

import aiohttp

from agent_playout import PlayoutClosedError
from agent_playout.playground import PlaygroundServer, serve_playground
from agent_playout.tts import Voice, available_voices, load_voice

from .playground_peer import Tab

pytestmark = [
    pytest.mark.realtime,
    pytest.mark.skipif("espeak" not in available_voices(), reason="no espeak voice"),
]

SHORT = "One two three."
LONG = "This answer runs long enough, about four seconds, to be cut while it is still playing."
FRAME = 960
"""One 20 ms frame at 48 kHz."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def voice() -> Voice:
    return load_voice("espeak")


@pytest.fixture
async def server(voice: Voice) -> AsyncIterator[PlaygroundServer]:
    async with serve_playground(voice) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def nothing() -> AsyncIterator[str]:
    return
    yield


def check_captions(tab: Tab, item_id: str) -> list[dict[str, object]]:
    """Every caption of the item followed the playout position it names: its last heard
    word had started by then, the position is one the receiver reported (at most what was
    sent), and the heard text only grew."""
    captions = tab.of_kind("caption", item_id=item_id)
    heard = ""
    for caption in captions:
        assert isinstance(caption["heard"], str)
        assert caption["heard"].startswith(heard)
        heard = caption["heard"]
        assert caption["word_start"] is not None
        assert caption["word_start"] <= caption["played"]
        assert caption["position"] <= caption["sent"]
    return captions


async def test_a_tab_hears_a_response_with_captions_and_gets_its_report(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    async with Tab.opened(http, server.url) as tab:
        await tab.send({"type": "speak", "text": SHORT})
        started = await tab.wait_for("item-started")
        assert started == {"type": "item-started", "item_id": "item_1", "text": SHORT}
        report = await tab.wait_for("report", item_id="item_1")
        assert report["interrupted"] is False
        assert report["heard_text"].strip() == SHORT
        assert report["truncation"] is None
        assert report["heard_samples"] == report["pushed_samples"] > 0
        assert report["samples_played"] <= report["samples_sent"]
        captions = check_captions(tab, "item_1")
        assert captions
        assert captions[-1]["heard"].strip() == SHORT
        async with http.get(server.url.rstrip("/") + report["plot"]) as plot:
            assert plot.status == 200
            assert plot.content_type == "image/png"
            assert (await plot.read()).startswith(PNG_SIGNATURE)


async def test_an_interrupt_cuts_the_item_and_its_count_is_what_the_tab_received(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    async with Tab.opened(http, server.url) as tab:
        await tab.send({"type": "speak", "text": LONG})
        await tab.wait_for("item-started")
        first = await tab.first_caption("item_1")
        before = tab.samples
        await tab.send({"type": "interrupt"})
        report = await tab.wait_for("report", item_id="item_1")
        assert report["interrupted"] is True
        assert report["position_confirmed"] is True
        heard = report["heard_text"].strip()
        assert heard
        assert LONG.startswith(heard)
        assert first["heard"].strip() in heard
        assert report["truncation"]["type"] == "conversation.item.truncate"
        assert report["truncation"]["audio_end_ms"] == report["heard_samples"] * 1000 // 48000
        settlement = report["settlement"]
        assert settlement["heard"] == report["heard_samples"]
        assert settlement["sent"] >= report["heard_samples"]
        assert tab.samples >= before
        check_captions(tab, "item_1")


async def test_two_tabs_have_their_own_sessions_and_one_cut_leaves_the_other_playing(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    async with Tab.opened(http, server.url) as one, Tab.opened(http, server.url) as two:
        assert one.session != two.session
        assert set(server.sessions) == {one.session, two.session}
        await one.send({"type": "speak", "text": LONG})
        await two.send({"type": "speak", "text": SHORT})
        await one.first_caption("item_1")
        await one.send({"type": "interrupt"})
        cut = await one.wait_for("report", item_id="item_1")
        whole = await two.wait_for("report", item_id="item_1")
        assert cut["interrupted"] is True
        assert whole["interrupted"] is False
        assert whole["heard_text"].strip() == SHORT
        assert not two.of_kind("caption", heard=cut["heard_text"]) or SHORT.startswith(
            cut["heard_text"].strip()
        )


async def test_malformed_sdp_is_a_400_naming_it_and_the_session_takes_a_good_offer_after(
    server: PlaygroundServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent_playout")
    async with Tab.opened(http, server.url, connect=False) as tab:
        good = await tab.offer_sdp()
        broken = good.replace("m=audio", "m=audio garbage", 1).replace("a=fingerprint", "a=x", 1)
        status, body = await tab.post_offer({"type": "offer", "sdp": broken})
        assert status == 400
        assert body["error"].startswith("malformed SDP: ")
        status, body = await tab.post_offer({"type": "offer", "sdp": "hello"})
        assert (status, body) == (
            400,
            {"error": "offer: 'sdp' is not SDP (it must start with 'v=0')"},
        )
        refused = [
            r.getMessage() for r in caplog.records if "refused the page's offer" in r.getMessage()
        ]
        assert len(refused) == 2
        assert all(line.startswith(f"session {tab.session}: ") for line in refused)
        await tab.connect()
        await tab.send({"type": "speak", "text": SHORT})
        report = await tab.wait_for("report", item_id="item_1")
        assert report["heard_text"].strip() == SHORT
        status, body = await tab.post_offer({"type": "offer", "sdp": good})
        assert status == 400
        assert "already has a peer connection" in body["error"]
    async with http.post(f"{server.url}session/s999/offer", data="{}") as missing:
        assert missing.status == 404


async def test_garbage_on_the_socket_and_the_data_channel_is_logged_and_the_session_goes_on(
    server: PlaygroundServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent_playout")
    async with Tab.opened(http, server.url) as tab:
        await tab.send("not json")
        error = await tab.wait_for("error")
        assert "not JSON" in error["message"]
        await tab.send({"type": "shout"})
        assert tab.ws is not None
        await tab.ws.send_bytes(b"\x00\x01")
        tab.channel.send("{not a report")
        tab.channel.send(json.dumps({"type": "receiver-report", "seq": "x"}))
        await tab.send({"type": "speak", "text": SHORT})
        report = await tab.wait_for("report", item_id="item_1")
        assert report["heard_text"].strip() == SHORT
        lines = [r.getMessage() for r in caplog.records]
        named = f"session {tab.session}"
        assert any(named in line and "not JSON" in line for line in lines)
        assert any(named in line and "got 'shout'" in line for line in lines)
        assert any(named in line and "binary message" in line for line in lines)
        # the sink logs one bad report a second, naming the session and what was wrong
        assert any(
            line.startswith(f"webrtc {named}: ignored a bad receiver report: message is not JSON")
            for line in lines
        ), lines


async def test_a_tab_closed_mid_item_ends_its_session_once_and_no_other(
    server: PlaygroundServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "agent_playout")
    async with Tab.opened(http, server.url) as stays, Tab.opened(http, server.url) as goes:
        await goes.send({"type": "speak", "text": LONG})
        await stays.send({"type": "speak", "text": SHORT})
        await goes.first_caption("item_1")
        gone = server.sessions[goes.session]
        await goes.close()
        await asyncio.wait_for(gone.ended.wait(), 10)
        assert goes.session not in server.sessions
        assert gone.closed
        assert gone.sink.track.readyState == "ended"
        with pytest.raises(PlayoutClosedError):
            gone.playout.play(
                item_id="late",
                content_index=0,
                transcription_fwd=None,
                text_stream=nothing(),
                audio_stream=nothing(),
            )
        report = await stays.wait_for("report", item_id="item_1")
        assert report["interrupted"] is False
        assert report["heard_text"].strip() == SHORT
        assert set(server.sessions) == {stays.session}
    closed = [
        r.getMessage()
        for r in caplog.records
        if f"session {goes.session}: closed" in r.getMessage()
    ]
    assert closed == [f"session {goes.session}: closed (the tab closed) after 1 item(s)"]


async def test_speak_before_the_peer_is_up_and_a_flood_of_speaks_are_refused_saying_why(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    async with Tab.opened(http, server.url, connect=False) as tab:
        await tab.send({"type": "speak", "text": SHORT})
        error = await tab.wait_for("error")
        assert error["message"] == (
            "the peer connection is not up yet; wait for the page to say ready"
        )
        await tab.connect()
        for _ in range(6):
            await tab.send({"type": "speak", "text": LONG})
        refused = await tab.wait_for(
            "error", message="4 items are still ending; wait for their reports"
        )
        assert refused
        await tab.send({"type": "interrupt"})
        for number in range(1, 5):  # each reports once its plot is drawn: in any order
            await tab.wait_for("report", item_id=f"item_{number}", timeout=30)
        reports = [r["item_id"] for r in tab.of_kind("report")]
        assert sorted(reports) == ["item_1", "item_2", "item_3", "item_4"]
        assert all(r["interrupted"] for r in tab.of_kind("report"))
