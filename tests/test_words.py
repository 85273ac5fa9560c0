"""The word cutter: streamed text cut into weighed words in bounded slices, or passed over."""

from __future__ import annotations

from agent_playout import TimedText
from agent_playout.transcript.text_queue import SLICE_CHARS
from agent_playout.transcript.words import WordCutter


def test_a_push_cuts_at_most_a_slice_and_the_rest_waits_to_be_asked_for() -> None:
    words = WordCutter("en_US")
    words.push_text("ab " * 2000, cut=True)
    assert SLICE_CHARS <= words.cursor < SLICE_CHARS + 3
    assert words.queued()
    count = words.word_count
    assert words.cut_next_word()
    assert words.word_count > count


def test_a_push_without_cut_waits_whole_and_its_weight_is_estimated_per_character() -> None:
    words = WordCutter("en_US")
    words.push_text("one two ", cut=True)
    per_char = words.total_weight / 8
    words.push_text("three four ", cut=False)
    assert words.cursor == 8
    assert words.estimated_weight() == words.total_weight + 11 * per_char


def test_words_keep_their_offsets_and_the_sentence_they_close() -> None:
    words = WordCutter("en_US")
    words.push_text("Hi there. Bye", cut=True)
    words.end_text()
    assert [words.word(i).offset for i in range(words.word_count)] == [0, 3, 10]
    assert [words.word(i).ends_sentence for i in range(words.word_count)] == [False, True, False]
    assert words.text_between(3, 10) == "there. "


def test_passing_over_makes_one_span_that_ends_where_a_word_starts() -> None:
    words = WordCutter("en_US")
    words.push_text("word " * 2000, cut=False)
    assert words.pass_over(words.text_length, lambda: 7002.5)
    assert words.word_count == 2
    assert (words.word(0).offset, words.word(1).offset) == (0, 5)
    assert words.word(1).ends_sentence  # a span is a segment of its own
    assert words.cursor == 7005


def test_a_timed_word_before_the_previous_one_is_moved_up_and_counted() -> None:
    words = WordCutter("en_US")
    words.push_text(TimedText("late ", 2.0, 2.5), cut=True)
    words.push_text(TimedText("early", 1.0, 1.5), cut=True)
    assert words.repairs == 1
    assert words.word(1).timed == 2.0
