"""LiveKit Agents 0.12.21's own ``MultimodalAgent``, run with this package's ``AgentPlayout``.

The agent's code path runs as it does in production: its ``_main_task`` makes the
``rtc.AudioSource`` (rtc's default 1000 ms queue, no wrapper) and its track, and each item
gets its real ``TTSSegmentsForwarder``. Only what needs a server is stood in for: the
realtime session (it emits the events the OpenAI plugin's session emits, with the same
payloads, and records what the agent sends back), and the local participant of a room
that is not connected. What was heard is read back from the track the agent publishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import agent_playout
from agent_playout import AgentPlayout, PlayoutHandle

from .conftest import RATE, ramp

agents = pytest.importorskip(
    "livekit.agents", reason="needs livekit-agents 0.12: run `make test-livekit-floor`"
)
if not agents.__version__.startswith("0.12."):
    pytest.skip(
        f"needs livekit-agents 0.12, found {agents.__version__}: run `make test-livekit-floor`",
        allow_module_level=True,
    )

from livekit import rtc  # noqa: E402
from livekit.agents import multimodal, utils  # noqa: E402
from livekit.agents.multimodal import agent_playout as lk_agent_playout  # noqa: E402

from .livekit_truth import Listener, heard_through  # noqa: E402

pytestmark = pytest.mark.realtime

FADE = 240
"""The sink's default fade (5 ms) rounded up to one 10 ms frame."""


@dataclass
class Capabilities:
    supports_truncate: bool = True
    input_audio_sample_rate: int | None = 24000


@dataclass
class RealtimeContent:
    """What the plugin's ``response_content_added`` carries (its ``RealtimeContent``)."""

    response_id: str
    item_id: str
    output_index: int
    content_index: int
    text: str
    audio: list[rtc.AudioFrame]
    text_stream: utils.aio.Chan[str]
    audio_stream: utils.aio.Chan[rtc.AudioFrame]
    tool_calls: list[Any] = field(default_factory=list)
    content_type: str = "audio"


class RealtimeSession(utils.EventEmitter[str]):
    """Stands in for the OpenAI plugin's ``RealtimeSession``: emits its events, records calls."""

    def __init__(self) -> None:
        super().__init__()
        self._init_sync_task = asyncio.create_task(asyncio.sleep(0))
        self._playout_complete = asyncio.Event()
        self._playout_complete.set()
        self.fnc_ctx = None
        self.server_vad_enabled = True
        self.truncated: list[tuple[str, int, int]] = []
        self.committed: dict[str, list[str]] = {}

    @property
    def playout_complete(self) -> asyncio.Event:
        return self._playout_complete

    def cancel_response(self) -> None:
        pass

    def _push_audio(self, frame: rtc.AudioFrame) -> None:
        pass

    def _truncate_conversation_item(
        self, item_id: str, content_index: int, audio_end_ms: int
    ) -> None:
        self.truncated.append((item_id, content_index, audio_end_ms))

    def _update_conversation_item_content(self, item_id: str, content: Any) -> None:
        texts = content if isinstance(content, list) else [content]
        self.committed.setdefault(item_id, []).extend(str(text) for text in texts)

    def respond(self, item_id: str, words: list[str], audio: np.ndarray) -> None:
        """The server's answer: ``response.content_part.added``, then its deltas, all at once
        (a realtime model sends faster than real time), then the audio and transcript done."""
        content = RealtimeContent(
            response_id=f"resp_{item_id}",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text="",
            audio=[],
            text_stream=utils.aio.Chan[str](),
            audio_stream=utils.aio.Chan[rtc.AudioFrame](),
        )
        self.emit("response_content_added", content)
        for word in words:
            content.text += word + " "
            content.text_stream.send_nowait(word + " ")
        for start in range(0, audio.size, 2400):
            chunk = audio[start : start + 2400]
            frame = rtc.AudioFrame(chunk.tobytes(), RATE, 1, chunk.size)
            content.audio.append(frame)
            content.audio_stream.send_nowait(frame)
        content.audio_stream.close()
        content.text_stream.close()

    def speech_started(self) -> None:
        """Server VAD heard the user (``input_audio_buffer.speech_started``)."""
        self.emit("input_speech_started")


class RealtimeModel:
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.sessions: list[RealtimeSession] = []

    def session(self, *, chat_ctx: Any = None, fnc_ctx: Any = None) -> RealtimeSession:
        self.sessions.append(RealtimeSession())
        return self.sessions[-1]


class Publication:
    """What ``LocalParticipant.publish_track`` returns once a server accepted the track."""

    def __init__(self, track: rtc.LocalAudioTrack, source: int) -> None:
        self.track = track
        self.sid = "TR_agent_voice"
        self.source = source

    async def wait_for_subscription(self) -> None:
        return None


class LocalParticipant:
    """The local participant of a room that is not connected: publishing is recorded."""

    identity = "agent"

    def __init__(self) -> None:
        self.track_publications: dict[str, Publication] = {}
        self.published: list[rtc.LocalAudioTrack] = []

    async def publish_track(self, track: rtc.LocalAudioTrack, options: Any) -> Publication:
        publication = Publication(track, options.source)
        self.track_publications[publication.sid] = publication
        self.published.append(track)
        return publication


class Room(rtc.Room):
    """A real, unconnected ``rtc.Room`` whose local participant exists before connecting."""

    def __init__(self) -> None:
        super().__init__()
        self._stand_in = LocalParticipant()

    @property
    def local_participant(self) -> Any:
        return self._stand_in


@dataclass
class Rig:
    session: RealtimeSession
    listener: Listener
    handles: list[PlayoutHandle]
    text_at_stop: dict[str, str]
    """Each item's ``played_text`` when its ``playout_stopped`` fired (LiveKit's forwarder
    runs one word ahead once closed, so a later read can hold one word more)."""


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    handles: list[PlayoutHandle] = []
    playouts: list[AgentPlayout] = []
    text_at_stop: dict[str, str] = {}

    class RecordedPlayout(agent_playout.AgentPlayout):
        """This package's AgentPlayout, keeping the handles it returns for the test."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            playouts.append(self)
            self.on("playout_stopped", self._record_stop)

        def _record_stop(self, interrupted: bool) -> None:
            stopping = self.current
            assert stopping is not None
            text_at_stop[stopping.item_id] = stopping.played_text

        def play(self, **kwargs: Any) -> PlayoutHandle:
            handles.append(super().play(**kwargs))
            return handles[-1]

    monkeypatch.setattr(lk_agent_playout, "AgentPlayout", RecordedPlayout)
    model = RealtimeModel()
    room = Room()
    agent = multimodal.MultimodalAgent(model=model)  # type: ignore[arg-type]
    agent.start(room)
    await _until(lambda: bool(playouts) and bool(room.local_participant.published))
    sink = playouts[0].sink
    ready = getattr(sink, "ready", None)
    if ready is not None:
        await ready()
    listener = Listener(room.local_participant.published[0])
    yield Rig(model.sessions[0], listener, handles, text_at_stop)
    await listener.aclose()
    await playouts[0].aclose()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()``: the agent under test has no event to wait on for it."""

    async def polled() -> None:
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(polled(), timeout)


WORDS_A = ["the", "first", "answer", "runs", "on", "for", "a", "while", "so", "it", "is", "cut"]
WORDS_B = ["a", "second", "answer"]


async def _interrupt_then_answer(rig: Rig) -> tuple[PlayoutHandle, np.ndarray]:
    """Item A plays for 0.6 s; the user barges in and the model answers at once with B."""
    audio_a = ramp(2 * RATE)
    rig.session.respond("item_a", WORDS_A, audio_a)
    await asyncio.sleep(0.6)
    rig.session.speech_started()
    rig.session.respond("item_b", WORDS_B, ramp(RATE // 2, start=5000))
    await _until(lambda: len(rig.handles) == 2 and rig.handles[1].done())
    await asyncio.sleep(0.1)
    return rig.handles[0], audio_a


async def test_an_interrupted_item_is_truncated_at_what_was_heard(rig: Rig) -> None:
    handle_a, audio_a = await _interrupt_then_answer(rig)
    heard = await rig.listener.settled()
    went_out = heard_through(heard, audio_a, FADE)
    assert went_out is not None
    assert handle_a.interrupted
    assert went_out[0] == handle_a.audio_samples
    assert rig.session.truncated == [("item_a", 0, went_out[0] * 1000 // RATE)]


async def test_an_interrupted_item_commits_its_own_heard_text(rig: Rig) -> None:
    await _interrupt_then_answer(rig)
    _assert_each_item_committed_its_own_text(rig)


async def test_a_superseded_item_commits_its_own_heard_text(rig: Rig) -> None:
    rig.session.respond("item_a", WORDS_A, ramp(2 * RATE))
    await asyncio.sleep(0.6)
    rig.session.respond("item_b", WORDS_B, ramp(RATE // 2, start=5000))
    await _until(lambda: len(rig.handles) == 2 and rig.handles[1].done())
    await asyncio.sleep(0.1)
    assert rig.handles[0].interrupted
    _assert_each_item_committed_its_own_text(rig)


def _assert_each_item_committed_its_own_text(rig: Rig) -> None:
    """Item A, cut, commits the words it had shown when it stopped; B commits all of its own."""
    heard_a = rig.text_at_stop["item_a"]
    assert heard_a
    assert " ".join(WORDS_A).startswith(heard_a)
    assert heard_a != " ".join(WORDS_A)
    assert rig.session.committed.get("item_a") == [heard_a + "..."]
    assert rig.session.committed.get("item_b") == [rig.text_at_stop["item_b"]]
    assert rig.text_at_stop["item_b"] == rig.handles[1].played_text
