"""The forwarder: LiveKit Agents 0.12's methods, driven by the position, fanning out segments."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pyphen
import pytest

from agent_playout import (
    AgentPlayout,
    AudioFrame,
    NullSink,
    PlayoutHandle,
    TimedText,
    TranscriptForwarder,
    TranscriptSegment,
    VirtualClock,
)
from agent_playout.core.units import NS_PER_SECOND

from .conftest import RATE, LiveKitShapedForwarder, frames_of, ramp, stream

TEXT = [
    TimedText("Hello there. ", 0.0, 0.5),
    TimedText("How are ", 0.6, 0.9),
    TimedText("you today? ", 1.0, 1.6),
    TimedText("Fine.", 1.8, 2.0),
]


def feed(forwarder: TranscriptForwarder, seconds: float = 2.2) -> None:
    forwarder.segment_playout_started()
    for piece in TEXT:
        forwarder.push_text(piece)
    forwarder.mark_text_segment_end()
    forwarder.push_audio(
        AudioFrame(np.zeros(round(seconds * RATE), np.int16), RATE, 1, round(seconds * RATE))
    )
    forwarder.mark_audio_segment_end()


def test_it_constructs_with_no_arguments_and_starts_empty() -> None:
    forwarder = TranscriptForwarder()
    assert forwarder.played_text == ""
    assert forwarder.language == "en-US"


def test_position_drives_played_text_and_returns_the_next_boundary() -> None:
    forwarder = TranscriptForwarder()
    feed(forwarder)
    assert forwarder.set_playout_position(1) == forwarder.set_playout_position(1)
    assert forwarder.played_text == "Hello "
    upcoming = forwarder.set_playout_position(2)
    assert upcoming is not None
    forwarder.set_playout_position(upcoming - 1)
    assert forwarder.played_text == "Hello "
    forwarder.set_playout_position(upcoming)
    assert forwarder.played_text == "Hello there. "


async def test_interrupt_makes_the_cut_sentence_final_with_what_was_heard() -> None:
    forwarder = TranscriptForwarder(before_forward=str.upper)
    received: list[TranscriptSegment] = []

    async def consume() -> None:
        async for segment in forwarder.segments():
            received.append(segment)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    feed(forwarder)
    forwarder.set_playout_position(round(0.95 * RATE))
    await forwarder.aclose()
    await asyncio.wait_for(consumer, 1)
    assert received[-1].final
    assert received[-1].text == "HOW ARE"
    assert received[-1].end == pytest.approx(0.95)
    assert forwarder.played_text == "Hello there. How are "


def test_completion_hears_everything() -> None:
    forwarder = TranscriptForwarder()
    feed(forwarder)
    forwarder.segment_playout_finished()
    assert forwarder.played_text == "Hello there. How are you today? Fine."


def test_heard_words_need_record_words() -> None:
    forwarder = TranscriptForwarder(record_words=True)
    feed(forwarder)
    forwarder.set_playout_position(round(0.7 * RATE))
    assert [word.text for word in forwarder.heard_words] == ["Hello ", "there. ", "How "]
    with pytest.raises(RuntimeError, match="record_words=True"):
        TranscriptForwarder().heard_words  # noqa: B018


def test_position_going_backwards_is_refused() -> None:
    forwarder = TranscriptForwarder()
    forwarder.set_playout_position(100)
    with pytest.raises(ValueError, match="went backwards: 99 < 100"):
        forwarder.set_playout_position(99)


def play_text(clock: VirtualClock, forwarder: TranscriptForwarder) -> PlayoutHandle:
    """Play ``TEXT`` with 2.2 s of audio through the engine on ``clock``."""
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    return playout.play(
        item_id="it_1",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=stream(TEXT),
        audio_stream=stream(frames_of(ramp(round(2.2 * RATE)), 480)),
    )


async def test_engine_interrupt_reports_exactly_the_words_heard() -> None:
    clock = VirtualClock()
    forwarder = TranscriptForwarder()
    handle = play_text(clock, forwarder)
    heard_over_time = []
    for cut in (0.1, 0.6, 0.5):
        await clock.advance(cut)
        heard_over_time.append(forwarder.played_text)
    handle.interrupt()
    await clock.run(handle.wait_for_playout())
    assert heard_over_time == ["Hello ", "Hello there. How ", "Hello there. How are you today? "]
    assert forwarder.played_text == "Hello there. How are you today? "
    assert handle.text_chars == len(forwarder.played_text)


async def test_engine_wakes_the_caption_exactly_at_each_word_start() -> None:
    clock = VirtualClock()
    forwarder = TranscriptForwarder()
    changes: list[tuple[int, str]] = []
    forwarder.on("segment", lambda s: changes.append((clock.now_ns(), s.text)))
    handle = play_text(clock, forwarder)
    await clock.run(handle.wait_for_playout())
    interim_times = [t for t, _ in changes][:5]
    there = round(0.5 * 2 / 4.5 * RATE) * NS_PER_SECOND // RATE
    word_starts_ns = [0, there, 600_000_000, 600_000_000, 750_000_000]
    tick = NS_PER_SECOND // RATE
    for got, start in zip(interim_times, word_starts_ns, strict=True):
        assert start <= got <= start + 2 * tick


async def test_audio_without_text_and_text_without_audio_both_finish() -> None:
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    silent_text = TranscriptForwarder()
    handle = playout.play(
        item_id="no_text",
        content_index=0,
        transcription_fwd=silent_text,
        text_stream=stream([]),
        audio_stream=stream(frames_of(ramp(4800), 480)),
    )
    await clock.run(handle.wait_for_playout())
    assert handle.audio_samples == 4800
    assert silent_text.played_text == ""
    no_audio = TranscriptForwarder()
    handle = playout.play(
        item_id="no_audio",
        content_index=0,
        transcription_fwd=no_audio,
        text_stream=stream(["words only"]),
        audio_stream=stream([]),
    )
    await clock.run(handle.wait_for_playout())
    assert no_audio.closed
    assert handle.audio_samples == 0


def test_forwarder_checks_are_remembered_only_for_classes_that_define_the_methods() -> None:
    from types import SimpleNamespace

    from agent_playout.transcript.forwarder import is_position_driven, is_segments_forwarder

    assert is_segments_forwarder(TranscriptForwarder())
    assert is_position_driven(TranscriptForwarder())
    driven = SimpleNamespace(set_playout_position=lambda played: None)
    assert is_position_driven(driven)
    assert not is_position_driven(SimpleNamespace())


def test_next_caption_sample_is_what_the_position_returned_and_moves_nothing() -> None:
    forwarder = TranscriptForwarder()
    feed(forwarder)
    assert forwarder.next_caption_sample() == 1
    upcoming = forwarder.set_playout_position(2)
    assert forwarder.next_caption_sample() == upcoming
    assert forwarder.next_caption_sample() == upcoming
    assert forwarder.played_text == "Hello "
    forwarder.segment_playout_finished()
    assert forwarder.next_caption_sample() is None


class EveryInputForwarder(LiveKitShapedForwarder):
    """Delegates to a ``TranscriptForwarder`` but is not one, so the engine cannot ask it
    where its next caption is and wakes its caption driver on every input."""

    def __init__(self, inner: TranscriptForwarder) -> None:
        super().__init__(inner)
        self.positions = 0

    def set_playout_position(self, played_samples: int) -> int | None:
        self.positions += 1
        return self.inner.set_playout_position(played_samples)


async def _streamed_captions(
    wrap: bool, words: list[str], pause_at: float | None = None
) -> tuple[list[tuple[int, str, float, bool]], int]:
    """Stream plain text and 6 s of audio in real time (virtual), with an optional pause;
    returns each segment with the time it came out, and how often the driver looked.

    Frames come every 13 ms and words every 97 ms, so input rarely lands on a caption time.
    """
    clock = VirtualClock()
    playout = AgentPlayout(audio_source=NullSink(clock=clock))
    inner = TranscriptForwarder()
    forwarder = EveryInputForwarder(inner) if wrap else inner
    looks = 0
    if not wrap:
        setter = inner.set_playout_position

        def counted(played_samples: int) -> int | None:
            nonlocal looks
            looks += 1
            return setter(played_samples)

        inner.set_playout_position = counted  # type: ignore[method-assign]
    segments: list[tuple[int, str, float, bool]] = []
    inner.on("segment", lambda s: segments.append((clock.now_ns(), s.text, s.end, s.final)))

    async def audio() -> AsyncIterator[AudioFrame]:
        for frame in frames_of(ramp(6 * RATE), 480):
            await clock.sleep_until(clock.now_ns() + 13_000_000)
            yield frame

    async def text() -> AsyncIterator[str]:
        for word in words:
            await clock.sleep_until(clock.now_ns() + 97_000_000)
            yield word

    handle = playout.play(
        item_id="streamed",
        content_index=0,
        transcription_fwd=forwarder,
        text_stream=text(),
        audio_stream=audio(),
    )
    if pause_at is not None:
        await clock.advance(pause_at)
        playout.pause()
        await clock.advance(0.4)
        playout.resume()
    await clock.run(handle.wait_for_playout())
    return segments, forwarder.positions if isinstance(forwarder, EveryInputForwarder) else looks


@pytest.mark.parametrize("pause_at", [None, 2.3])
async def test_captions_woken_only_by_earlier_input_match_captions_woken_by_all_input(
    pause_at: float | None,
) -> None:
    words = [f"word{n}{'.' if n % 7 == 6 else ''} " for n in range(40)]
    selective, looks = await _streamed_captions(False, words, pause_at)
    every_input, every_looks = await _streamed_captions(True, words, pause_at)
    assert [s[1:] for s in selective] == [s[1:] for s in every_input]
    sample_ns = NS_PER_SECOND // RATE + 1
    assert all(abs(a[0] - b[0]) <= sample_ns for a, b in zip(selective, every_input, strict=True))
    assert len(selective) >= len(words)
    assert looks < every_looks / 3


async def test_a_failing_segment_listener_is_logged_once_per_item_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    forwarder = TranscriptForwarder()
    good: list[str] = []
    received: list[str] = []
    bare_calls: list[int] = []

    def bad(segment: TranscriptSegment) -> None:
        raise RuntimeError("listener bug")

    async def consume() -> None:
        async for segment in forwarder.segments():
            received.append(segment.text)

    forwarder.on("segment", bad)
    forwarder.on("segment", lambda segment: good.append(segment.text))
    forwarder.on("segment", lambda: bare_calls.append(1))
    consumer = asyncio.create_task(consume())
    with caplog.at_level(logging.ERROR, logger="agent_playout"):
        handle = play_text(clock, forwarder)
        await clock.run(handle.wait_for_playout())
    await asyncio.wait_for(consumer, 1)
    failures = [r for r in caplog.records if "listener" in r.getMessage()]
    assert len(failures) == 1
    assert "it_1" in failures[0].getMessage()
    assert "listener bug" in caplog.text
    assert len(good) >= 6
    assert received == good
    assert len(bare_calls) == len(good)


def test_a_listener_taken_off_gets_no_more_segments() -> None:
    forwarder = TranscriptForwarder()
    seen: list[TranscriptSegment] = []
    forwarder.on("segment", seen.append)
    feed(forwarder)
    forwarder.set_playout_position(1)
    forwarder.off("segment", seen.append)
    forwarder.segment_playout_finished()
    assert len(seen) == 1


HUGE_SENTENCE = "The quick brown fox jumps over the lazy dog, and then it rests. "


@dataclass
class HugeItem:
    """One push of a huge text over 10 s of audio, and what the forwarder did with it."""

    text: str = field(repr=False)
    forwarder: TranscriptForwarder = field(repr=False)
    segments: list[TranscriptSegment] = field(repr=False)
    hyphenated: int = 0
    """Characters hyphenated (the estimate's cost per word cut) from push to close."""


def huge_item(
    monkeypatch: pytest.MonkeyPatch,
    chars: int,
    stop: Callable[[TranscriptForwarder], object],
    *,
    text_ended: bool = True,
) -> HugeItem:
    """Push ``chars`` characters at once and 10 s of audio, ``stop`` the item, close."""
    text = (HUGE_SENTENCE * (chars // len(HUGE_SENTENCE) + 1))[:chars]
    item = HugeItem(text, TranscriptForwarder(), [])
    original = pyphen.Pyphen.positions

    def counting(self: pyphen.Pyphen, word: str) -> list[int]:
        item.hyphenated += len(word)
        return original(self, word)  # type: ignore[no-any-return]

    with monkeypatch.context() as patch:
        patch.setattr(pyphen.Pyphen, "positions", counting)
        forwarder = item.forwarder
        forwarder.on("segment", item.segments.append)
        forwarder.segment_playout_started()
        forwarder.push_text(text)
        if text_ended:
            forwarder.mark_text_segment_end()
        for _ in range(500):
            forwarder.push_audio(AudioFrame(np.zeros(480, np.int16), RATE, 1, 480))
        forwarder.mark_audio_segment_end()
        stop(forwarder)
        asyncio.run(forwarder.aclose())
    return item


@pytest.mark.parametrize("text_ended", [True, False])
def test_a_cut_in_a_huge_push_does_bounded_work_and_hears_a_proportional_prefix(
    monkeypatch: pytest.MonkeyPatch, text_ended: bool
) -> None:
    items = {}
    for chars in (200_000, 800_000):
        item = items[chars] = huge_item(
            monkeypatch,
            chars,
            lambda forwarder: forwarder.set_playout_position(5 * RATE),
            text_ended=text_ended,
        )
        heard = item.forwarder.played_text
        assert item.text.startswith(heard)
        assert item.text[len(heard) - 1] == " "
        assert item.text[len(heard)] != " "
        assert len(heard) == pytest.approx(chars / 2, rel=0.01)
        assert item.segments[-1].final
        assert "".join(segment.text + " " for segment in item.segments if segment.final) == heard
    small, large = items[200_000], items[800_000]
    assert 0 < large.hyphenated < 1.5 * small.hyphenated
    assert len(large.segments) < 1.5 * len(small.segments)


def test_completing_a_huge_push_does_bounded_work_and_hears_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def complete(forwarder: TranscriptForwarder) -> None:
        forwarder.set_playout_position(10 * RATE)
        forwarder.segment_playout_finished()

    items = {chars: huge_item(monkeypatch, chars, complete) for chars in (200_000, 800_000)}
    for item in items.values():
        assert item.forwarder.played_text == item.text
        assert item.segments[-1].final
        finals = [segment.text for segment in item.segments if segment.final]
        assert " ".join(finals) == item.text.strip()
    small, large = items[200_000], items[800_000]
    assert 0 < large.hyphenated < 1.5 * small.hyphenated
    assert len(large.segments) < 1.5 * len(small.segments)


def test_a_cut_in_a_huge_text_pushed_in_pieces_emits_a_bounded_number_of_segments() -> None:
    emitted = {}
    for chars in (200_000, 800_000):
        text = (HUGE_SENTENCE * (chars // len(HUGE_SENTENCE) + 1))[:chars]
        forwarder = TranscriptForwarder()
        forwarder.segment_playout_started()
        for start in range(0, chars, 1000):
            forwarder.push_text(text[start : start + 1000])
        forwarder.mark_text_segment_end()
        for _ in range(500):
            forwarder.push_audio(AudioFrame(np.zeros(480, np.int16), RATE, 1, 480))
        forwarder.mark_audio_segment_end()
        segments: list[TranscriptSegment] = []
        forwarder.on("segment", segments.append)
        forwarder.set_playout_position(5 * RATE)
        asyncio.run(forwarder.aclose())
        emitted[chars] = len(segments)
        heard = forwarder.played_text
        assert text.startswith(heard)
        assert text[len(heard) - 1] == " "
        assert len(heard) == pytest.approx(chars / 2, rel=0.01)
    assert 0 < emitted[800_000] < 1.5 * emitted[200_000]


async def test_an_engine_cut_as_a_huge_text_arrives_does_bounded_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work, heard = {}, {}
    original = pyphen.Pyphen.positions
    counted = 0

    def counting(self: pyphen.Pyphen, word: str) -> list[int]:
        nonlocal counted
        counted += len(word)
        return original(self, word)  # type: ignore[no-any-return]

    for chars in (200_000, 800_000):
        text = (HUGE_SENTENCE * (chars // len(HUGE_SENTENCE) + 1))[:chars]
        clock = VirtualClock()

        async def late_text(text: str = text, clock: VirtualClock = clock) -> AsyncIterator[str]:
            await clock.sleep_until(5_000_000_000)
            yield text

        forwarder = TranscriptForwarder()
        handle = AgentPlayout(audio_source=NullSink(clock=clock)).play(
            item_id="late",
            content_index=0,
            transcription_fwd=forwarder,
            text_stream=late_text(),
            audio_stream=stream(frames_of(np.ones(10 * RATE, np.int16), 480)),
        )
        await clock.advance(4.999)
        counted = 0
        with monkeypatch.context() as patch:
            patch.setattr(pyphen.Pyphen, "positions", counting)
            await clock.advance(0.001)
            handle.interrupt()
            await clock.run(handle.wait_for_playout())
        work[chars], heard[chars] = counted, handle.played_text
        assert text.startswith(heard[chars])
        assert text[len(heard[chars]) - 1] == " "
        assert len(heard[chars]) == pytest.approx(chars / 2, rel=0.01)
    assert 0 < work[800_000] < 1.5 * work[200_000]
