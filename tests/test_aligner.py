"""The aligner: words placed on the sample clock, heard text at a position, bounded work."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pyphen
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout import TimedText
from agent_playout.transcript.aligner import TranscriptAligner

RATE = 24000


def heard_at(aligner: TranscriptAligner, played: int) -> str:
    aligner.advance(played)
    return aligner.text[: aligner.heard_chars]


def test_a_word_is_heard_once_its_first_sample_has_played() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text(TimedText("Hello, ", 0.1, 0.4))
    aligner.push_text(TimedText("world.", 0.5, 0.9))
    aligner.push_audio(RATE)
    assert heard_at(aligner, 2400) == ""
    assert heard_at(aligner, 2401) == "Hello, "
    assert heard_at(aligner, 12000) == "Hello, "
    assert heard_at(aligner, 12001) == "Hello, world."


def test_timed_text_with_several_words_spreads_them_by_syllables() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text(TimedText("a information ", 1.0, 2.0))
    assert aligner.word_start(0) == RATE
    assert aligner.word_start(1) == RATE + RATE // 5


def test_words_split_across_pushes_are_joined() -> None:
    aligner = TranscriptAligner(RATE)
    for piece in ["Hel", "lo wor", "ld", ", how", " are", " you?"]:
        aligner.push_text(piece)
    assert aligner.word_count == 5
    assert aligner.text == "Hello world, how are you?"
    spans = [aligner.text[aligner.word_offset(i) :].split(" ")[0] for i in range(5)]
    assert spans == ["Hello", "world,", "how", "are", "you?"]


def test_estimate_is_refitted_so_the_last_word_lands_in_the_audio() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text("one two three four five")
    aligner.end_text()
    aligner.push_audio(10 * RATE)
    aligner.end_audio()
    starts = [aligner.word_start(i) for i in range(5)]
    assert starts == [0, 2 * RATE, 4 * RATE, 6 * RATE, 8 * RATE]


def test_estimate_is_paced_by_audio_received_while_it_streams() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text("one two three four five")
    aligner.end_text()
    aligner.push_audio(RATE // 2)
    prior = RATE / 3.83
    assert aligner.word_start(1) == round(prior)
    aligner.push_audio(20 * RATE)
    assert aligner.word_start(1) == round(20.5 * RATE / 5)


def test_speed_scales_the_prior() -> None:
    slow = TranscriptAligner(RATE, speed=0.5)
    fast = TranscriptAligner(RATE, speed=2.0)
    for aligner in (slow, fast):
        aligner.push_text("one two")
    assert abs(slow.word_start(1) - 4 * fast.word_start(1)) <= 2


def test_heard_text_never_shrinks_when_the_estimate_moves_later() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text("one two three")
    aligner.end_text()
    aligner.push_audio(RATE)
    assert heard_at(aligner, RATE // 2) == "one two "
    aligner.push_audio(30 * RATE)
    assert heard_at(aligner, RATE // 2) == "one two "


def test_backwards_timestamps_are_repaired_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aligner = TranscriptAligner(RATE)
    with caplog.at_level(logging.WARNING, logger="agent_playout"):
        aligner.push_text(TimedText("late ", 2.0, 2.5))
        aligner.push_text(TimedText("early ", 1.0, 1.2))
        aligner.push_text(TimedText("earlier ", 0.5, 0.7))
    assert aligner.repairs == 2
    assert [aligner.word_start(i) for i in range(3)] == [2 * RATE] * 3
    assert len(caplog.records) == 1
    assert "starts before the previous word" in caplog.text


def test_timestamps_past_the_audio_end_are_clamped_into_it() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text(TimedText("inside ", 0.0, 0.5))
    aligner.push_text(TimedText("outside", 5.0, 6.0))
    aligner.push_audio(RATE)
    aligner.end_audio()
    assert aligner.word_start(1) == RATE - 1
    assert heard_at(aligner, RATE) == "inside outside"


def test_empty_text_and_audio_without_text_both_work() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text("")
    aligner.push_audio(RATE)
    aligner.end_text()
    aligner.end_audio()
    assert aligner.advance(RATE) == 0
    assert aligner.next_boundary(RATE) is None
    assert aligner.heard_chars == 0


def test_an_hour_of_small_pieces_keeps_only_what_is_not_yet_heard() -> None:
    aligner = TranscriptAligner(RATE)
    words_per_second = 3
    for second in range(3600):
        for word in range(words_per_second):
            aligner.push_text(f"w{second}x{word} ")
        aligner.push_audio(RATE)
        aligner.advance(second * RATE)
        aligner.forget_before(aligner.heard_words)
        assert aligner.kept_words < 40
        assert aligner.kept_chars < 400
    assert aligner.word_count == 3 * 3600


@given(
    pieces=st.lists(st.text(alphabet="ab ,.", min_size=0, max_size=6), max_size=30),
    positions=st.lists(st.integers(0, 10 * RATE), max_size=20),
)
def test_heard_text_is_a_growing_prefix_ending_on_a_whole_word(
    pieces: list[str], positions: list[int]
) -> None:
    aligner = TranscriptAligner(RATE)
    for piece in pieces:
        aligner.push_text(piece)
    aligner.end_text()
    aligner.push_audio(5 * RATE)
    aligner.end_audio()
    text = aligner.text
    previous = ""
    for played in sorted(positions):
        heard = heard_at(aligner, played)
        assert text.startswith(heard)
        assert heard.startswith(previous)
        assert heard == "" or heard == text or text[len(heard) - 1].isspace()
        previous = heard


def hyphenated_chars(monkeypatch: pytest.MonkeyPatch, work: Callable[[], object]) -> int:
    """Characters pyphen is asked to hyphenate while ``work`` runs: the weighing's cost."""
    counted = 0
    original = pyphen.Pyphen.positions

    def counting(self: pyphen.Pyphen, word: str) -> list[int]:
        nonlocal counted
        counted += len(word)
        return original(self, word)  # type: ignore[no-any-return]

    with monkeypatch.context() as patch:
        patch.setattr(pyphen.Pyphen, "positions", counting)
        work()
    return counted


def test_pushing_a_character_at_a_time_costs_the_same_per_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def one_char_pushes(count: int) -> Callable[[], object]:
        def run() -> None:
            aligner = TranscriptAligner(RATE)
            for _ in range(count):
                aligner.push_text("a")
                aligner.next_boundary(0)

        return run

    short = hyphenated_chars(monkeypatch, one_char_pushes(4000))
    long = hyphenated_chars(monkeypatch, one_char_pushes(8000))
    assert 0 < long < 3 * short


def test_one_huge_push_does_bounded_work_and_the_rest_follows_the_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def huge_push(chars: int) -> Callable[[], object]:
        return lambda: TranscriptAligner(RATE).push_text(("word " * chars)[:chars])

    small = hyphenated_chars(monkeypatch, huge_push(200_000))
    large = hyphenated_chars(monkeypatch, huge_push(800_000))
    assert 0 < large < 2 * small
    text = "Some words, then more. " * 2000
    at_once, in_pieces = TranscriptAligner(RATE), TranscriptAligner(RATE)
    at_once.push_text(text)
    for start in range(0, len(text), 23):
        in_pieces.push_text(text[start : start + 23])
    for aligner in (at_once, in_pieces):
        aligner.end_text()
        for _ in range(1000):
            aligner.push_audio(480)
        aligner.end_audio()
    for played in (1, 240_000, 479_999, 480_000):
        assert heard_at(at_once, played) == heard_at(in_pieces, played)
    assert heard_at(at_once, 480_000) == text


def test_text_waiting_behind_a_huge_push_keeps_its_timestamps() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text("a " * 3000)
    aligner.push_text(TimedText("end", 5.0, 5.5))
    aligner.end_text()
    for _ in range(20):
        aligner.push_audio(RATE // 2)
    aligner.end_audio()
    assert heard_at(aligner, 10 * RATE) == "a " * 3000 + "end"
    assert aligner.word_start(aligner.word_count - 1) == 5 * RATE


def test_a_timed_piece_longer_than_a_slice_is_spread_over_its_characters() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text(TimedText("w " * 2000, 0.0, 10.0))
    aligner.end_text()
    aligner.push_audio(10 * RATE)
    aligner.end_audio()
    aligner.advance(10 * RATE)
    assert aligner.word_count == 2000
    assert [aligner.word_start(k) for k in (0, 1, 1000, 1999)] == [0, 120, 5 * RATE, 239880]


def test_text_passed_over_in_a_huge_push_is_heard_in_proportion_to_the_audio() -> None:
    text = ("Some words, then more. " * 20_000)[:400_000]
    aligner = TranscriptAligner(RATE)
    aligner.push_text(text)
    aligner.end_text()
    for _ in range(500):
        aligner.push_audio(480)
    aligner.end_audio()
    previous = ""
    for quarter in (1, 2, 3):
        heard = heard_at(aligner, quarter * 60_000)
        assert heard.startswith(previous)
        assert text[len(heard) - 1] == " "
        assert len(heard) == pytest.approx(quarter * 100_000, rel=0.01)
        previous = heard
    assert heard_at(aligner, 240_000) == text


def test_a_cut_in_a_huge_timed_text_does_bounded_work_and_follows_its_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def cut_at_half(chars: int, heard: list[str]) -> Callable[[], object]:
        def run() -> None:
            text = ("Some words, then more. " * (chars // 23 + 1))[:chars]
            aligner = TranscriptAligner(RATE)
            aligner.push_text(TimedText(text, 1.0, 9.0))
            aligner.end_text()
            for _ in range(500):
                aligner.push_audio(480)
            aligner.end_audio()
            heard.append(heard_at(aligner, 5 * RATE))
            heard.append(heard_at(aligner, 7 * RATE))
            heard.append(text)

        return run

    work = {}
    for chars in (200_000, 800_000):
        heard: list[str] = []
        work[chars] = hyphenated_chars(monkeypatch, cut_at_half(chars, heard))
        half, three_quarters, text = heard
        assert three_quarters.startswith(half)
        assert text.startswith(three_quarters)
        assert text[len(half) - 1] == " "
        assert len(half) == pytest.approx(chars / 2, abs=30)
        assert len(three_quarters) == pytest.approx(chars * 3 / 4, abs=30)
    assert 0 < work[800_000] < 1.5 * work[200_000]


@given(
    words=st.lists(
        st.text(alphabet="ab,.今天きょうเป็นคนສະບາຍ「", min_size=1, max_size=5),
        min_size=1,
        max_size=12,
    ),
    separators=st.sampled_from([" ", "", "\n"]),
    positions=st.lists(st.integers(0, 10 * RATE), min_size=1, max_size=6),
    ended=st.booleans(),
)
def test_heard_text_in_a_huge_push_is_a_growing_prefix_ending_where_a_unit_starts(
    words: list[str], separators: str, positions: list[int], ended: bool
) -> None:
    unit = separators.join(words) + " "
    text = unit * (40_000 // len(unit) + 1)
    aligner = TranscriptAligner(RATE)
    aligner.push_text(text)
    if ended:
        aligner.end_text()
    for _ in range(500):
        aligner.push_audio(480)
    aligner.end_audio()
    previous = ""
    for played in sorted(positions):
        heard = heard_at(aligner, played)
        assert text.startswith(heard)
        assert heard.startswith(previous)
        if heard and heard != text:
            window = TranscriptAligner(RATE)
            window.push_text(text[max(len(heard) - 40, 0) : len(heard) + 40])
            window.end_text()
            starts = {window.word_offset(i) for i in range(window.word_count)}
            assert min(len(heard), 40) in starts
        previous = heard
