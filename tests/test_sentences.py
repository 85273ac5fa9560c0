"""Sentence segments: the heard words of an item cut into sentences with real times."""

from __future__ import annotations

from agent_playout import TimedText
from agent_playout.transcript.aligner import TranscriptAligner
from agent_playout.transcript.sentences import HeardWord, SentenceSegmenter, TranscriptSegment

RATE = 24000
TEXT = [
    TimedText("Hello there. ", 0.0, 0.5),
    TimedText("How are ", 0.6, 0.9),
    TimedText("you today? ", 1.0, 1.6),
    TimedText("Fine.", 1.8, 2.0),
]


def segmenter(*, record_words: bool = False, language: str = "en-US") -> SentenceSegmenter:
    """A segmenter over ``TEXT`` and 2.2 s of audio, both ended."""
    aligner = TranscriptAligner(RATE)
    for piece in TEXT:
        aligner.push_text(piece)
    aligner.end_text()
    aligner.push_audio(round(2.2 * RATE))
    aligner.end_audio()
    return SentenceSegmenter(aligner, language=language, record_words=record_words)


def summary(segments: list[TranscriptSegment]) -> list[tuple[str, bool, float, float]]:
    return [(s.text, s.final, round(s.start, 3), round(s.end, 3)) for s in segments]


def test_segments_are_interim_then_final_with_real_times() -> None:
    sentences = segmenter(language="en-GB")
    segments = [
        segment
        for seconds in (0.1, 0.7, 1.3)
        for segment in sentences.advance(round(seconds * RATE))
    ]
    segments += sentences.hear_all()
    assert summary(segments) == [
        ("Hello", False, 0.0, 0.1),
        ("Hello there.", True, 0.0, 0.6),
        ("How", False, 0.6, 0.7),
        ("How are you today?", False, 0.6, 1.3),
        ("How are you today?", True, 0.6, 1.8),
        ("Fine.", True, 1.8, 2.2),
    ]
    assert len({s.id for s in segments}) == 3
    assert all(s.language == "en-GB" for s in segments)


def test_a_move_that_hears_no_new_word_makes_no_segment() -> None:
    sentences = segmenter()
    assert summary(sentences.advance(1)) == [("Hello", False, 0.0, 0.0)]
    assert sentences.advance(2) == []


def test_closing_makes_the_cut_sentence_final_with_what_was_heard() -> None:
    sentences = segmenter()
    sentences.advance(round(0.95 * RATE))
    assert summary(sentences.close(round(0.95 * RATE))) == [("How are", True, 0.6, 0.95)]
    assert sentences.close(round(0.95 * RATE)) == []


def test_record_words_keeps_the_heard_words_with_their_starts() -> None:
    sentences = segmenter(record_words=True)
    sentences.advance(round(0.7 * RATE))
    assert sentences.heard_words == [
        HeardWord("Hello ", 0),
        HeardWord("there. ", round(0.5 * 2 / 4.5 * RATE)),  # "Hello" weighs 2 of 4.5
        HeardWord("How ", round(0.6 * RATE)),
    ]
    assert segmenter().heard_words is None
