"""The WebRTC sink's shell on the virtual clock: pacing, the receiver's reports, settle, and the
ways a receiver or a caller can misbehave. The real peer is in ``test_webrtc_loopback``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame as AvFrame

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    PlayoutHandle,
    PositionUnconfirmedError,
    SettlingSink,
    TranscriptForwarder,
    VirtualClock,
)
from agent_playout.sinks.webrtc import TrackEndedError, WebRtcSink
from agent_playout.sinks.webrtc.reports import REPORT_NOW, report_text
from agent_playout.sinks.webrtc.scheduler import FRAME, OPUS_DELAY

from .conftest import frames_of, stream

RATE = 48000
MS = 1_000_000
CHUNK = 2400


def chunk(samples: int = CHUNK, value: int = 1000) -> AudioFrame:
    return AudioFrame(np.full(samples, value, dtype=np.int16).tobytes(), RATE, 1, samples)


class Peer:
    """aiortc's sender pulling the track at its pace, and a receiver that takes each frame
    ``delay_ms`` after it was sent and reports every 50 ms (while ``reporting``). With
    ``receiving`` the sink expects its reports from the start, and asks it for them."""

    def __init__(
        self, sink: WebRtcSink, clock: VirtualClock, delay_ms: int = 100, *, receiving: bool = False
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.delay_ns = delay_ms * MS
        self.sent_at: list[int] = []
        self.frames: list[AvFrame] = []
        self.reporting = True
        self.periodic = True
        self.asked: list[str] = []
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        if receiving:
            sink.expect_reports(self.ask)

    def start(self) -> Peer:
        self._tasks = [asyncio.create_task(self._pull()), asyncio.create_task(self._report())]
        return self

    def emitted(self) -> int:
        now = self.clock.now_ns()
        return sum(1 for sent in self.sent_at if sent + self.delay_ns <= now) * FRAME

    def report(self) -> None:
        text = report_text(self._seq, 0.0, {"jitterBufferEmittedCount": self.emitted()})
        self._seq += 1
        self.sink.receive_message(text)

    def ask(self, text: str) -> None:
        self.asked.append(text)
        if self.reporting:
            self.report()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pull(self) -> None:
        while True:
            frame = await self.sink.track.recv()
            self.sent_at.append(self.clock.now_ns())
            self.frames.append(frame)

    async def _report(self) -> None:
        while True:
            await self.clock.sleep(0.05)
            if self.reporting and self.periodic:
                self.report()


def play_tone(playout: AgentPlayout, item_id: str, texts: list[str], samples: int) -> PlayoutHandle:
    """Play ``samples`` of a steady tone at 48 kHz, in 20 ms frames, with ``texts``."""
    signal = np.full(samples, 3000, dtype=np.int16)
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=TranscriptForwarder(),
        text_stream=stream(texts),
        audio_stream=stream(frames_of(signal, FRAME, rate=RATE)),
    )


def sent_audio(peer: Peer) -> np.ndarray:
    return np.concatenate([f.to_ndarray().reshape(-1) for f in peer.frames])


async def test_the_track_paces_20_ms_frames_at_real_time_with_pts(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock).start()
    await clock.advance(0.1)
    await peer.stop()
    assert peer.sent_at == [k * 20 * MS for k in range(6)]
    assert [f.pts for f in peer.frames] == [k * FRAME for k in range(6)]
    frame = peer.frames[0]
    assert (frame.sample_rate, frame.samples, frame.format.name, frame.layout.name) == (
        48000,
        FRAME,
        "s16",
        "mono",
    )
    assert frame.time_base == frame.time_base.__class__(1, 48000)
    assert sink.track.kind == "audio"


async def test_a_capture_returns_while_the_queue_is_within_its_limit(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock, queue_size_ms=100)
    peer = Peer(sink, clock).start()
    await clock.settle()  # the first frame, at 0, was silence
    await clock.run(sink.capture_frame(chunk()))
    await clock.run(sink.capture_frame(chunk()))
    assert clock.now_ns() == 0
    third = asyncio.ensure_future(sink.capture_frame(chunk()))
    await clock.advance(0.059)
    assert not third.done()
    await clock.advance(0.001)  # the third audio frame goes: 150 - 3 * 20 = 90 ms queued
    assert third.done()
    assert sink.samples_queued <= 4800
    await peer.stop()


async def test_without_a_receiver_the_position_is_the_sent_one_and_unconfirmed(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock)
    peer.reporting = False
    peer.start()
    await clock.settle()
    await clock.run(sink.capture_frame(chunk()))
    await clock.advance(0.05)
    assert sink.samples_played == sink.samples_sent == 2 * FRAME
    assert not sink.position_confirmed
    with pytest.raises(PositionUnconfirmedError, match="no channel attached"):
        await sink.settle(0, CHUNK)
    assert clock.now_ns() == 50 * MS  # at once
    assert sink.settlement is not None
    assert not sink.settlement.confirmed
    assert sink.settlement.heard == CHUNK
    await peer.stop()


async def test_with_a_receiver_the_position_waits_for_its_reports(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=100, receiving=True)
    peer.reporting = False
    peer.start()
    await clock.run(sink.capture_frame(chunk()))
    await clock.advance(0.2)
    assert sink.samples_sent == CHUNK
    assert sink.samples_played == 0
    peer.reporting = True
    peer.report()
    assert sink.position_confirmed
    assert sink.samples_played == CHUNK  # all of it was emitted 100 ms after it went
    await peer.stop()


async def test_the_position_is_the_receivers_mapped_count_as_it_plays(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=100, receiving=True).start()
    await clock.advance(0.04)  # two silent frames first
    for _ in range(4):
        await clock.run(sink.capture_frame(chunk()))
    seen = []
    for _ in range(12):
        await clock.advance(0.05)
        stream_played = max(peer.emitted() - OPUS_DELAY, 0)
        truth = min(max(stream_played - 2 * FRAME, 0), 4 * CHUNK)
        seen.append(truth - sink.samples_played)
    # behind by at most the 50 ms report interval and the frame being taken, never ahead
    assert all(0 <= gap <= 50 * 48 + FRAME for gap in seen), seen
    assert sink.samples_played == 4 * CHUNK
    delays = sink.delays()
    assert delays.count > 0
    assert delays.median_ms is not None
    assert 100 <= delays.median_ms <= 150
    await peer.stop()


async def test_wait_for_playout_returns_once_the_receiver_played_it_all(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=100, receiving=True).start()
    await clock.run(sink.capture_frame(chunk()))
    await clock.run(sink.wait_for_playout())
    assert sink.samples_played == CHUNK
    assert 0.15 <= clock.now_ns() / 1e9 <= 0.25
    await peer.stop()


async def test_wait_for_playout_is_bounded_when_the_receiver_is_silent(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = WebRtcSink(clock=clock, settle_timeout_ms=300, label="mute")
    peer = Peer(sink, clock, receiving=True)
    peer.reporting = False
    peer.start()
    await clock.run(sink.capture_frame(chunk()))
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        await clock.run(sink.wait_for_playout())
    assert clock.now_ns() == 60 * MS + 300 * MS  # all sent by the third frame, + the bound
    assert any("mute" in r.getMessage() for r in caplog.records)
    assert sink.samples_played == 0
    await peer.stop()


async def test_settle_waits_for_the_report_covering_the_end_and_asks_for_it(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    assert isinstance(sink, SettlingSink)
    peer = Peer(sink, clock, delay_ms=100, receiving=True).start()
    await clock.run(sink.capture_frame(chunk(9600)))
    await clock.advance(0.05)
    sink.clear_queue()
    end = sink.samples_written
    assert end == sink.samples_sent + 240
    heard = await clock.run(sink.settle(0, end))
    assert heard == end
    assert REPORT_NOW in peer.asked
    assert sink.settlement is not None
    assert (sink.settlement.heard, sink.settlement.lost, sink.settlement.confirmed) == (
        end,
        0,
        True,
    )
    # the fade went out in the frame after the clear, then only silence
    sent = sent_audio(peer)
    assert np.count_nonzero(sent) == end - 1  # the fade's last sample is silent
    await peer.stop()


async def test_settle_asks_until_a_receiver_that_only_answers_requests_covers_it(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=100, receiving=True)
    peer.periodic = False
    peer.start()
    await clock.run(sink.capture_frame(chunk()))
    await clock.advance(0.02)
    sink.clear_queue()
    end = sink.samples_written
    assert await clock.run(sink.settle(0, end)) == end
    # the fade went out at 40 ms and was played 100 ms later: the next ask, 50 ms apart
    assert clock.now_ns() <= (40 + 100 + 50) * MS
    assert len(peer.asked) >= 3


async def test_settle_raises_when_no_report_covers_the_end_in_time(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock, settle_timeout_ms=400, label="late")
    peer = Peer(sink, clock, receiving=True)
    peer.reporting = False
    peer.start()
    await clock.run(sink.capture_frame(chunk()))
    await clock.advance(0.02)
    sink.clear_queue()
    end = sink.samples_written
    with pytest.raises(PositionUnconfirmedError, match=r"late: could not confirm .* 400 ms"):
        await clock.run(sink.settle(0, end))
    assert 0.4 <= clock.now_ns() / 1e9 <= 0.5
    assert sink.settlement is not None
    assert not sink.settlement.confirmed
    await peer.stop()


async def test_settle_raises_at_once_when_the_reports_stop(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, receiving=True).start()
    await clock.run(sink.capture_frame(chunk()))
    sink.clear_queue()
    settling = asyncio.ensure_future(sink.settle(0, sink.samples_written))
    await clock.advance(0.01)
    sink.receiver_closed()
    await clock.settle()
    with pytest.raises(PositionUnconfirmedError, match="the reports stopped"):
        await settling
    await peer.stop()


async def test_bad_reports_are_logged_once_a_second_and_the_position_kept(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = WebRtcSink(clock=clock, label="bad")
    peer = Peer(sink, clock, receiving=True).start()
    await clock.run(sink.capture_frame(chunk()))
    await clock.advance(0.3)
    played = sink.samples_played
    assert played == CHUNK
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        sink.receive_message("{")
        sink.receive_message(report_text(10_000, 0.0, {"jitterBufferEmittedCount": -5}))
        sink.receive_message(report_text(10_001, 0.0, {"jitterBufferEmittedCount": 10**9}))
        sink.receive_message(b"\x00")
        await clock.advance(1.0)
        sink.receive_message(report_text(10_002, 0.0, {"concealedSamples": "many"}))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("webrtc bad")]
    assert len(lines) == 2
    assert "not JSON" in lines[0]
    assert "inbound.concealedSamples" in lines[1]
    assert "(3 more since the last line)" in lines[1]
    assert sink.samples_played == played
    await peer.stop()


async def test_a_frame_of_another_format_is_refused_naming_it(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    frame = AudioFrame(np.zeros(480, dtype=np.int16).tobytes(), 24000, 1, 480)
    with pytest.raises(ValueError, match="24000 Hz x1, this sink plays 48000 Hz x1"):
        await sink.capture_frame(frame)
    assert sink.samples_written == 0
    stereo = WebRtcSink(clock=clock, num_channels=2)
    with pytest.raises(ValueError, match="48000 Hz x1, this sink plays 48000 Hz x2"):
        await stereo.capture_frame(chunk())


async def test_settings_out_of_range_are_refused(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="settle_timeout_ms"):
        WebRtcSink(clock=clock, settle_timeout_ms=0)
    with pytest.raises(ValueError, match="num_channels must be 1 or 2"):
        WebRtcSink(clock=clock, num_channels=3)
    with pytest.raises(ValueError, match="fade_ms"):
        WebRtcSink(clock=clock, fade_ms=-1)


async def test_clear_with_nothing_queued_changes_nothing(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock).start()
    sink.clear_queue()
    await clock.run(sink.capture_frame(chunk(FRAME)))
    await clock.advance(0.05)
    sink.clear_queue()
    assert sink.samples_written == sink.samples_sent == FRAME
    await clock.advance(0.05)
    assert sink.samples_sent == FRAME
    await peer.stop()


async def test_a_clear_releases_a_capture_waiting_for_room(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock, queue_size_ms=50)
    waiting = asyncio.ensure_future(sink.capture_frame(chunk(9600)))
    await clock.settle()
    assert not waiting.done()  # nobody pulls the track yet
    sink.clear_queue()
    await clock.settle()
    assert waiting.done()
    assert sink.samples_written == 240


async def test_close_mid_item_ends_every_wait(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock, queue_size_ms=50)
    peer = Peer(sink, clock, receiving=True).start()
    waiting = asyncio.ensure_future(sink.capture_frame(chunk(9600)))
    await clock.advance(0.03)
    settling = asyncio.ensure_future(sink.settle(0, 9600))
    await clock.settle()
    sink.close()
    await clock.settle()
    with pytest.raises(TrackEndedError):
        await waiting
    with pytest.raises(PositionUnconfirmedError):
        await settling
    with pytest.raises(TrackEndedError):
        await sink.capture_frame(chunk())
    with pytest.raises(TrackEndedError):
        await sink.wait_for_playout()
    with pytest.raises(MediaStreamError):
        await sink.track.recv()
    await peer.stop()


async def test_a_sender_that_stops_reading_the_track_fails_the_waits_bounded(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock, queue_size_ms=50, settle_timeout_ms=300, label="stuck")
    peer = Peer(sink, clock)
    peer.reporting = False
    peer.start()
    await clock.advance(0.05)
    await peer.stop()  # aiortc's sender stops reading, the track still live
    with pytest.raises(TrackEndedError, match="stuck: the track was not read for 300 ms"):
        await clock.run(sink.capture_frame(chunk(9600)))
    assert clock.now_ns() == 40 * MS + 300 * MS  # the last frame read, + the bound
    with pytest.raises(TrackEndedError, match="not read"):
        await clock.run(sink.wait_for_playout())


async def test_with_closes_the_sink(clock: VirtualClock) -> None:
    with WebRtcSink(clock=clock) as sink:
        pass
    assert sink.track.readyState == "ended"
    with pytest.raises(TrackEndedError):
        await sink.capture_frame(chunk())


async def test_an_interrupted_item_ends_at_the_count_the_receiver_confirmed(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=120, receiving=True).start()
    playout = AgentPlayout(audio_source=sink)
    text = "one two three four five six seven eight"
    handle = play_tone(playout, "it_1", re.findall(r"\S+\s*", text), 2 * RATE)
    seen: list[tuple[int, int, int, str]] = []

    def truth() -> int:
        """The item's samples the receiver took, from what it got: frames of the item's level."""
        first = next((k for k, f in enumerate(peer.frames) if f.to_ndarray().any()), None)
        if first is None:
            return 0
        return min(max(peer.emitted() - OPUS_DELAY - first * FRAME, 0), sink.samples_sent)

    async def watch() -> None:
        while not handle.done():
            seen.append((handle.played_samples, truth(), sink.samples_sent, handle.played_text))
            await clock.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    await clock.advance(0.7)
    handle.interrupt()
    sent_at_stop = handle.played_samples
    assert sent_at_stop == sink.samples_written  # the sent count, fade included, for now
    await clock.run(handle.wait_for_playout())
    await watcher
    assert handle.position_confirmed is True
    assert sink.settlement is not None
    assert handle.played_samples == sink.settlement.heard == sent_at_stop  # no loss here
    assert all(played <= heard for played, heard, _, _ in seen)  # never ahead of the receiver
    assert max(sent - played for played, _, sent, _ in seen) >= 120 * 48  # not the sender's
    texts = [played_text for *_, played_text in seen]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert text.startswith(handle.played_text.strip())
    await playout.aclose()
    await peer.stop()


async def test_an_item_cut_after_the_reports_stopped_keeps_the_sent_count_unconfirmed(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=120, receiving=True).start()
    playout = AgentPlayout(audio_source=sink)
    handle = play_tone(playout, "it_gone", ["a few words to say"], RATE)
    await clock.advance(0.4)
    peer.reporting = False
    sink.receiver_closed()  # the data channel closed mid-item
    handle.interrupt()
    sent = handle.played_samples
    await clock.run(handle.wait_for_playout())
    assert clock.now_ns() == 400 * MS  # no wait for a receiver that is gone
    assert handle.position_confirmed is False
    assert handle.played_samples == sent == sink.samples_written
    await playout.aclose()
    await peer.stop()


async def test_a_paused_playout_holds_its_audio_and_resumes_at_the_next_sample(
    clock: VirtualClock,
) -> None:
    sink = WebRtcSink(clock=clock)
    peer = Peer(sink, clock, delay_ms=100, receiving=True).start()
    playout = AgentPlayout(audio_source=sink)
    handle = play_tone(playout, "it_pause", ["held and resumed"], RATE)
    await clock.advance(0.3)
    playout.pause()
    assert sink.paused
    sent_at_pause = sink.samples_sent
    await clock.advance(0.5)
    held = sink.samples_played
    assert sink.samples_sent == sent_at_pause + 240  # the fade-out, then silence
    assert held == sink.samples_sent  # the receiver played up to the pause, and no further
    await clock.advance(0.2)
    assert sink.samples_played == held
    playout.resume()
    await clock.run(handle.wait_for_playout())
    assert not handle.interrupted
    assert handle.played_samples == RATE
    assert handle.position_confirmed is None  # completed: nothing to settle
    sent = sent_audio(peer)
    assert np.count_nonzero(sent) == RATE - 1  # all of it went out; the fade-out ends on 0
    await playout.aclose()
    await peer.stop()


async def test_wait_for_playout_with_nothing_written_returns_at_once(clock: VirtualClock) -> None:
    sink = WebRtcSink(clock=clock)
    sink.expect_reports()
    await clock.run(sink.wait_for_playout())
    assert clock.now_ns() == 0
