"""The text queue: pushed text waiting to be cut, taken in slices or dropped to an offset."""

from __future__ import annotations

from agent_playout.transcript.text_queue import SLICE_CHARS, QueuedText, TextQueue


def queue_of(*entries: QueuedText) -> TextQueue:
    queue = TextQueue()
    for entry in entries:
        queue.append(entry, cursor=0)
    return queue


def test_plain_text_is_taken_in_slices_of_the_budget_and_a_small_timed_piece_whole() -> None:
    queue = queue_of(QueuedText("abcdef", 0, None, None), QueuedText("timed", 6, 1.0, 2.0))
    assert queue.take(4) == (QueuedText("abcdef", 0, None, None), "abcd")
    assert queue.head_offset(11) == 4
    assert queue.take(4)[1] == "ef"
    assert queue.take(1)[1] == "timed"
    assert not queue
    assert queue.head_offset(11) == 11


def test_a_long_timed_piece_is_taken_in_slices() -> None:
    long = QueuedText("x" * (SLICE_CHARS + 1), 0, 0.0, 1.0)
    queue = queue_of(long)
    assert len(queue.take(10)[1]) == 10


def test_dropping_to_an_offset_moves_the_head_into_the_piece_it_falls_in() -> None:
    queue = queue_of(QueuedText("aaaa", 0, None, None), QueuedText("bbbb", 4, None, None))
    queue.drop_before(6)
    assert queue.head_offset(8) == 6
    assert queue.take(8)[1] == "bb"
    queue.drop_before(8)
    assert not queue


def test_the_region_says_whether_the_head_is_in_timed_text_and_where_that_ends() -> None:
    timed = QueuedText("tttt", 4, 1.0, 2.0)
    queue = queue_of(QueuedText("pppp", 0, None, None), timed, QueuedText("qq", 8, None, None))
    assert queue.region(10) == (None, 4)
    queue.drop_before(5)
    assert queue.region(10) == (timed, 8)
    queue.drop_before(8)
    assert queue.region(10) == (None, 10)
