"""The WebRTC sink's sans-I/O core: frames, the two axes, reports and settles, on plain numbers."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout.sinks.base import faded
from agent_playout.sinks.webrtc import ReceiverReport, ReportError, WorkletStats, parse_report
from agent_playout.sinks.webrtc.reports import report_text
from agent_playout.sinks.webrtc.scheduler import FRAME, OPUS_DELAY, WebRtcScheduler

MS = 1_000_000


def audio(count: int, value: int = 1000) -> np.ndarray:
    return np.full(count, value, dtype=np.int16)


def report(seq: int, emitted: int, **inbound: int) -> ReceiverReport:
    """A report as a receiver sends it, with its W3C field names."""
    return parse_report(report_text(seq, 0.0, {"jitterBufferEmittedCount": emitted, **inbound}))


def scheduler(fade: int = 240) -> WebRtcScheduler:
    return WebRtcScheduler(1, queue_limit=9600, fade=fade)


def send(s: WebRtcScheduler, frames: int, start_ns: int = 0) -> np.ndarray:
    out = [s.frame(start_ns + i * 20 * MS) for i in range(frames)]
    return np.concatenate(out)


def test_nothing_queued_sends_silence_and_the_stream_still_moves() -> None:
    s = scheduler()
    frame = s.frame(0)
    assert frame.shape == (FRAME,)
    assert not frame.any()
    assert (s.stream_sent, s.audio_sent, s.written) == (FRAME, 0, 0)


def test_a_frame_takes_queued_audio_first_then_silence() -> None:
    s = scheduler()
    s.push(audio(1500))
    first, second = s.frame(0), s.frame(20 * MS)
    assert first.all()
    assert second[:540].all()
    assert not second[540:].any()
    assert (s.audio_sent, s.stream_sent, s.written, s.queued) == (1500, 2 * FRAME, 1500, 0)


def test_stereo_frames_interleave_both_channels() -> None:
    s = WebRtcScheduler(2, queue_limit=9600, fade=0)
    s.push(np.tile(np.array([5, -5], dtype=np.int16), 480))
    frame = s.frame(0)
    assert frame.shape == (2 * FRAME,)
    assert (frame[:960:2] == 5).all()
    assert (frame[1:960:2] == -5).all()
    assert not frame[960:].any()
    assert s.audio_sent == 480


def test_clear_keeps_the_next_fade_samples_faded_and_counts_them_written() -> None:
    s = scheduler()
    signal = (np.arange(4000) % 700 + 100).astype(np.int16)
    s.push(signal)
    s.frame(0)
    assert s.clear() == FRAME + 240
    assert s.written == s.audio_sent + 240
    frame = s.frame(20 * MS)
    expected = faded(signal[FRAME : FRAME + 240].reshape(-1, 1)).reshape(-1)
    assert np.array_equal(frame[:240], expected)
    assert frame[239] == 0  # the fade ends on silence
    assert not frame[240:].any()
    assert s.audio_sent == s.written == FRAME + 240


def test_clear_with_less_than_the_fade_queued_fades_what_there_is() -> None:
    s = scheduler()
    s.push(audio(1000))
    s.frame(0)
    assert s.clear() == 1000
    frame = s.frame(20 * MS)
    assert frame[:39].all()
    assert not frame[40:].any()


def test_clear_with_nothing_queued_changes_no_count() -> None:
    s = scheduler()
    s.push(audio(FRAME))
    s.frame(0)
    assert s.clear() == FRAME
    assert not s.frame(20 * MS).any()
    assert (s.written, s.audio_sent) == (FRAME, FRAME)


def test_audio_after_a_clear_follows_its_fade_in_the_same_frame() -> None:
    s = scheduler()
    s.push(audio(2000))
    s.frame(0)
    s.clear()
    s.push(audio(100, 7))
    frame = s.frame(20 * MS)
    assert (frame[240:340] == 7).all()
    assert s.written == s.audio_sent == FRAME + 240 + 100


def test_pause_fades_out_the_next_samples_then_holds_the_queue() -> None:
    s = scheduler()
    signal = (np.arange(6000) % 500 + 200).astype(np.int16)
    s.push(signal)
    s.frame(0)
    s.pause()
    assert s.paused
    frame = s.frame(20 * MS)
    assert np.array_equal(frame[:240], faded(signal[960:1200].reshape(-1, 1)).reshape(-1))
    assert not frame[240:].any()
    assert not s.frame(40 * MS).any()
    assert (s.audio_sent, s.written, s.queued) == (1200, 6000, 4800)
    assert s.underruns() == (0, 0)  # a pause is no underrun
    s.resume()
    frame = s.frame(60 * MS)
    up = faded(signal[1200:1440].reshape(-1, 1), down=False).reshape(-1)
    assert np.array_equal(frame[:240], up)
    assert np.array_equal(frame[240:], signal[1440:2160])
    assert s.audio_sent == 2160


def test_resume_before_the_fade_out_went_out_sends_both_fades() -> None:
    s = scheduler()
    signal = (np.arange(3000) % 500 + 200).astype(np.int16)
    s.push(signal)
    s.pause()
    s.resume()
    frame = s.frame(0)
    assert np.array_equal(frame[:240], faded(signal[:240].reshape(-1, 1)).reshape(-1))
    up = faded(signal[240:480].reshape(-1, 1), down=False).reshape(-1)
    assert np.array_equal(frame[240:480], up)
    assert np.array_equal(frame[480:], signal[480:960])


def test_clear_while_paused_keeps_only_the_pauses_fade_out() -> None:
    s = scheduler()
    s.push(audio(3000))
    s.pause()
    assert s.clear() == 240
    s.frame(0)
    assert not s.frame(20 * MS).any()
    assert s.audio_sent == s.written == 240
    s.frame(40 * MS)
    assert s.clear() == 240  # the fade-out went: nothing more to keep


def test_the_axes_map_through_silence_between_items_and_underruns() -> None:
    s = scheduler()
    send(s, 2)  # stream 0..1920: silence
    s.push(audio(1000))  # audio 0..1000 at stream 1920..2920, then dry mid-frame
    send(s, 2)
    s.push(audio(500))  # audio 1000..1500 at stream 3840..4340
    send(s, 1)
    assert s.audio_before(1920) == 0
    assert s.audio_before(1921) == 1
    assert s.audio_before(3840) == 1000
    assert s.audio_before(4000) == 1160
    assert s.audio_before(s.stream_sent) == 1500
    assert s.stream_after(0) == 0
    assert s.stream_after(1) == 1921
    assert s.stream_after(1000) == 2920
    assert s.stream_after(1001) == 3841
    assert s.stream_after(1500) == 4340
    assert s.stream_after(1501) is None
    assert s.stream_of(1000) == 3840
    assert s.stream_of(1500) == s.stream_sent  # not sent yet: the next frame


def test_the_position_is_the_emitted_count_less_the_opus_delay_on_the_audio_axis() -> None:
    s = scheduler()
    send(s, 1)
    s.push(audio(4800))
    send(s, 5)
    assert s.played == 0
    s.on_report(report(0, emitted=FRAME), 0)
    assert s.played == 0  # the receiver is still in the silence before the audio
    s.on_report(report(1, emitted=2 * FRAME + OPUS_DELAY), 0)
    assert s.played == FRAME
    s.on_report(report(2, emitted=6 * FRAME), 0)
    assert s.played == 5 * FRAME - OPUS_DELAY
    assert s.played <= s.audio_sent


def test_an_emitted_count_above_what_was_sent_is_refused() -> None:
    s = scheduler()
    send(s, 2)
    with pytest.raises(ReportError, match="EmittedCount says 1921 samples, more than the 1920"):
        s.on_report(report(0, emitted=2 * FRAME + 1), 0)
    assert not s.has_report


def test_a_decreasing_counter_or_seq_is_refused_and_changes_nothing() -> None:
    s = scheduler()
    s.push(audio(9600))
    send(s, 10)
    s.on_report(report(5, emitted=4 * FRAME, concealedSamples=0), 0)
    played = s.played
    with pytest.raises(ReportError, match=r"inbound.jitterBufferEmittedCount decreased"):
        s.on_report(report(6, emitted=3 * FRAME), 0)
    with pytest.raises(ReportError, match="seq is 5, not above the previous 5"):
        s.on_report(report(5, emitted=8 * FRAME), 0)
    assert s.played == played
    s.on_report(report(7, emitted=8 * FRAME), 0)
    assert s.played == 8 * FRAME - OPUS_DELAY


def test_the_worklet_count_is_the_fallback_converted_to_48_khz() -> None:
    s = scheduler()
    s.push(audio(9600))
    send(s, 10)
    worklet = WorkletStats(frames=44100 // 10, sample_rate=44100)
    s.on_report(ReceiverReport(seq=0, at_ms=0.0, worklet=worklet), 0)
    assert s.receiver_stream == 4800 - OPUS_DELAY
    assert s.played == 4800 - OPUS_DELAY


def test_settle_waits_for_reports_covering_the_end_then_counts_it_all_heard() -> None:
    s = scheduler()
    s.push(audio(3000))
    send(s, 3)
    s.clear()
    send(s, 2)
    end = s.written
    assert s.settled(0, end) is None
    s.on_report(report(0, emitted=end + OPUS_DELAY - 1), 0)
    assert s.settled(0, end) is None
    s.on_report(report(1, emitted=end + OPUS_DELAY), 0)
    assert s.settled(0, end) == (end, 0)
    assert s.settled(10, 10) == (0, 0)


def test_losses_reported_after_the_item_went_out_are_charged_to_it() -> None:
    s = scheduler()
    send(s, 2)
    s.on_report(report(0, emitted=FRAME, packetsLost=1, concealedSamples=960), 0)
    s.push(audio(4800))  # starts at stream 1920: the report above came before it
    send(s, 2)
    s.on_report(report(1, emitted=3 * FRAME, packetsLost=2, concealedSamples=1000), 0)
    send(s, 4)
    # a lost packet is never emitted: the receiver is past the end once it emitted all but it
    s.on_report(report(2, emitted=6 * FRAME, packetsLost=2, concealedSamples=1000), 0)
    assert s.settled(0, 4800) is None
    s.on_report(report(3, emitted=7 * FRAME, packetsLost=2, concealedSamples=1000), 0)
    assert s.settled(0, 4800) == (4800 - FRAME, FRAME)


def test_concealment_alone_charges_nothing() -> None:
    # NetEq conceals while a packet is late, then still plays it: nothing sent went unheard
    s = scheduler()
    s.push(audio(4800))
    send(s, 6)
    s.on_report(report(0, emitted=6 * FRAME, packetsLost=0, concealedSamples=1500), 0)
    assert s.settled(0, 4800) == (4800, 0)


def received(packets: int, lost: int = 0) -> dict[str, int]:
    """The counters of a receiver whose highest packet is ``packets`` from its first."""
    return {"packetsReceived": packets - lost, "packetsLost": lost}


def item_after_silence(silent_frames: int, count: int) -> WebRtcScheduler:
    s = scheduler()
    send(s, silent_frames)
    s.push(audio(count))
    return s


def test_a_packet_lost_inside_the_item_is_charged_one_frame_not_its_concealment() -> None:
    s = item_after_silence(2, 4800)  # the item is stream [1920, 6720)
    s.on_report(report(0, emitted=FRAME, **received(2)), 0)
    send(s, 8)
    s.on_report(report(1, emitted=3 * FRAME, concealedSamples=2000, **received(5, lost=1)), 0)
    assert s.settled(0, 4800) is None
    s.on_report(report(2, emitted=7 * FRAME, concealedSamples=2000, **received(9, lost=1)), 0)
    assert s.settled(0, 4800) == (4800 - FRAME, FRAME)


def test_a_loss_before_the_item_reported_after_its_first_frame_went_out_is_not_charged() -> None:
    s = item_after_silence(6, 4800)  # the item is stream [5760, 10560)
    send(s, 2)  # its first frames went out; the receiver is still in the silence before it
    s.on_report(report(0, emitted=2 * FRAME, concealedSamples=8160, **received(5, lost=1)), 0)
    send(s, 4)
    s.on_report(report(1, emitted=12 * FRAME, concealedSamples=8160, **received(12, lost=1)), 0)
    assert s.settled(0, 4800) == (4800, 0)


def test_without_a_receive_front_a_report_is_placed_at_its_playout_position() -> None:
    s = item_after_silence(6, 4800)
    send(s, 2)
    s.on_report(report(0, emitted=2 * FRAME, packetsLost=1), 0)  # played to stream 1608
    send(s, 4)
    s.on_report(report(1, emitted=11 * FRAME, packetsLost=2), 0)
    assert s.settled(0, 4800) == (4800 - FRAME, FRAME)


def test_no_report_before_the_start_charges_from_the_streams_start() -> None:
    s = item_after_silence(1, 4800)
    send(s, 6)
    s.on_report(report(0, emitted=7 * FRAME, **received(7, lost=1)), 0)
    assert s.settled(0, 4800) == (4800 - FRAME, FRAME)  # the stream's start lost nothing


def test_a_lost_packet_that_came_late_and_played_is_not_charged_nor_a_negative() -> None:
    s = item_after_silence(2, 4800)
    s.on_report(report(0, emitted=FRAME, **received(2, lost=1)), 0)  # before the item
    send(s, 4)
    s.on_report(report(1, emitted=3 * FRAME, **received(5, lost=2)), 0)  # one inside it
    send(s, 4)
    # both came late and played: packetsLost goes down (W3C) and below the start's count
    s.on_report(report(2, emitted=8 * FRAME, **received(9)), 0)
    assert s.settled(0, 4800) == (4800, 0)


def test_discarded_packets_are_charged_and_a_lost_one_discarded_counts_once() -> None:
    s = item_after_silence(2, 4800)
    s.on_report(report(0, emitted=FRAME, **received(2)), 0)
    send(s, 4)
    s.on_report(report(1, emitted=3 * FRAME, **received(5, lost=1)), 0)
    send(s, 4)
    s.on_report(report(2, emitted=5 * FRAME, packetsDiscarded=2, **received(9)), 0)
    s.on_report(report(3, emitted=5 * FRAME + 2 * FRAME, packetsDiscarded=2, **received(9)), 0)
    assert s.settled(0, 4800) == (4800 - 2 * FRAME, 2 * FRAME)


def test_a_drop_reported_after_a_report_reached_the_end_is_not_charged() -> None:
    s = item_after_silence(2, 4800)
    s.on_report(report(0, emitted=FRAME, **received(2)), 0)
    send(s, 8)
    s.on_report(report(1, emitted=8 * FRAME, **received(8)), 0)  # past the end
    send(s, 4)
    s.on_report(report(2, emitted=10 * FRAME, **received(14, lost=2)), 0)  # later silence
    assert s.settled(0, 4800) == (4800, 0)


def test_a_loss_never_charges_more_than_the_item() -> None:
    s = scheduler()
    s.push(audio(500))
    send(s, 3)
    s.on_report(report(0, emitted=2 * FRAME, packetsLost=1), 0)
    assert s.settled(0, 500) == (0, 500)


def test_delays_are_from_a_samples_send_to_the_report_that_passed_it() -> None:
    s = scheduler()
    s.push(audio(9600))
    send(s, 10)  # frame k sent at k * 20 ms
    assert s.delays().count == 0
    s.on_report(report(0, emitted=2 * FRAME + OPUS_DELAY), 130 * MS)  # stream 1919: frame 1
    s.on_report(report(1, emitted=2 * FRAME + OPUS_DELAY), 140 * MS)  # no progress: no sample
    s.on_report(report(2, emitted=5 * FRAME + OPUS_DELAY), 200 * MS)  # stream 4799: frame 4
    delays = s.delays()
    assert delays.count == 2
    assert delays.max_ms == 120.0
    assert delays.median_ms == 115.0


def test_running_dry_mid_audio_is_an_underrun_but_not_after_its_end() -> None:
    s = scheduler()
    s.push(audio(FRAME + 480))
    send(s, 3)  # dry 480 samples into the second frame, until now
    assert s.underruns() == (1, (3 * FRAME - (FRAME + 480)) * 1_000_000_000 // 48000)
    s.push(audio(FRAME))
    send(s, 1)
    s.end_of_audio()
    send(s, 3)
    count, length_ns = s.underruns()
    assert count == 1
    assert length_ns == 1440 * 1_000_000_000 // 48000


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(1, 3000)),
        st.tuples(st.just("frame"), st.integers(1, 4)),
        st.tuples(st.just("clear"), st.just(0)),
        st.tuples(st.just("pause"), st.just(0)),
        st.tuples(st.just("resume"), st.just(0)),
        st.tuples(st.just("report"), st.integers(0, 1 << 20)),
    ),
    max_size=40,
)


@given(OPS)
def test_any_run_keeps_the_axes_consistent_and_the_position_bounded(
    ops: list[tuple[str, int]],
) -> None:
    s = WebRtcScheduler(1, queue_limit=9600, fade=0)
    frames: list[np.ndarray] = []
    seq = 0
    last_played = 0
    for op, value in ops:
        if op == "push":
            s.push(audio(value, 1 + value % 1000))
        elif op == "frame":
            frames.extend(s.frame(len(frames) * 20 * MS) for _ in range(value))
        elif op == "clear":
            s.clear()
        elif op == "pause":
            s.pause()
        elif op == "resume":
            s.resume()
        else:
            with contextlib.suppress(ReportError):  # a count below the last one
                s.on_report(report(seq, emitted=value % (s.stream_sent + 1)), 0)
            seq += 1
        assert 0 <= s.played <= s.audio_sent <= s.written
        assert s.played >= last_played
        last_played = s.played
    stream = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
    assert stream.size == s.stream_sent
    # audio is exactly where the map says, and nowhere else
    assert np.count_nonzero(stream) == s.audio_sent
    assert s.audio_before(s.stream_sent) == s.audio_sent
    for sample in range(0, s.audio_sent, 97):
        where = s.stream_of(sample)
        assert where is not None
        assert stream[where] != 0
        assert s.audio_before(where) == sample
