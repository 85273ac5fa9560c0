"""Scripts written without spaces: units that follow the audio, in the aligner and the engine."""

from __future__ import annotations

import pytest

from agent_playout import AgentPlayout, NullSink, TimedText, TranscriptForwarder, VirtualClock
from agent_playout.transcript.aligner import TranscriptAligner
from agent_playout.transcript.scripts import sure_word_starts
from agent_playout.transcript.words import word_weight

from .conftest import frames_of, ramp, stream

RATE = 24000
CHINESE = "今天天气很好，我们去公园散步吧。"


def placed(text: str, seconds: float, *, by_char: bool = True) -> TranscriptAligner:
    """An aligner holding ``text`` (pushed a character at a time) and ``seconds`` of audio."""
    aligner = TranscriptAligner(RATE)
    for piece in text if by_char else [text]:
        aligner.push_text(piece)
    aligner.end_text()
    aligner.push_audio(round(seconds * RATE))
    aligner.end_audio()
    return aligner


def heard_over(aligner: TranscriptAligner, step: int = RATE // 100) -> list[str]:
    """The heard text every ``step`` samples, to the end of the audio."""
    heard = []
    for played in range(0, aligner.audio_samples + step, step):
        aligner.advance(played)
        heard.append(aligner.text[: aligner.heard_chars])
    return heard


async def test_a_cut_in_a_chinese_sentence_hears_a_prefix_proportional_to_the_audio() -> None:
    heard = {}
    for cut in (0.3, 3.0):
        clock = VirtualClock()
        forwarder = TranscriptForwarder(language="zh-CN")
        handle = AgentPlayout(audio_source=NullSink(clock=clock)).play(
            item_id="zh",
            content_index=0,
            transcription_fwd=forwarder,
            text_stream=stream(list(CHINESE)),
            audio_stream=stream(frames_of(ramp(6 * RATE), 480)),
        )
        await clock.advance(cut)
        handle.interrupt()
        await clock.run(handle.wait_for_playout())
        heard[cut] = forwarder.played_text
    assert CHINESE.startswith(heard[0.3])
    assert 1 <= len(heard[0.3]) <= 2
    assert CHINESE.startswith(heard[3.0])
    assert 6 <= len(heard[3.0]) <= 10


def test_each_han_character_is_a_unit_and_punctuation_stays_with_the_one_before() -> None:
    aligner = placed(CHINESE, 6.0)
    heard = heard_over(aligner)
    assert heard[-1] == CHINESE
    lengths = sorted(len(text) for text in set(heard))
    assert lengths == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 16]
    assert all(not text.endswith("好") for text in heard)


def test_kana_are_morae_and_a_small_kana_stays_with_the_one_before() -> None:
    text = "きょうは東京へ行きました。"
    aligner = placed(text, 4.0)
    heard = heard_over(aligner)
    assert "きょ" in heard
    assert all(not h.endswith("き") or h.endswith("行き") for h in heard)
    assert word_weight("きょう") == pytest.approx(1.0)
    assert word_weight("東京") == pytest.approx(2.0)
    assert heard[-1] == text


def test_latin_words_and_numbers_in_chinese_text_stay_whole() -> None:
    text = "我用iPhone 15拍照。"
    heard = heard_over(placed(text, 3.0))
    distinct = sorted(set(heard), key=len)
    assert distinct == ["", "我", "我用", "我用iPhone ", "我用iPhone 15", "我用iPhone 15拍", text]


def test_thai_clusters_keep_a_leading_vowel_with_its_consonant_across_pushes() -> None:
    aligner = TranscriptAligner(RATE)
    for piece in ["เ", "ป็", "นคน", "ไ", "ทย"]:
        aligner.push_text(piece)
    aligner.end_text()
    aligner.push_audio(2 * RATE)
    aligner.end_audio()
    heard = heard_over(aligner)
    assert heard[-1] == "เป็นคนไทย"
    assert all(not h.endswith(("เ", "ไ")) for h in heard)
    assert len(set(heard)) > 3


def test_myanmar_final_and_stacked_consonants_stay_in_their_syllable() -> None:
    heard = heard_over(placed("မင်္ဂလာပါ", 1.5))
    assert sorted(set(heard), key=len) == ["", "မင်္ဂ", "မင်္ဂလာ", "မင်္ဂလာပါ"]


def test_timed_chinese_text_is_spread_over_its_characters() -> None:
    aligner = TranscriptAligner(RATE)
    aligner.push_text(TimedText("你好。", 1.0, 2.0))
    aligner.push_text(TimedText("谢谢", 2.0, 2.5))
    starts = [aligner.word_start(i) for i in range(aligner.word_count)]
    assert starts == [RATE, RATE + round(RATE / 3.5), 2 * RATE, 2 * RATE + RATE // 4]


def test_a_word_pushed_a_character_at_a_time_weighs_what_it_weighs_whole() -> None:
    text = "Extraordinary information, done. 2026年の東京、きょう！"
    whole = placed(text, 8.0, by_char=False)
    by_char = placed(text, 8.0)
    assert by_char.total_weight == pytest.approx(whole.total_weight)
    assert heard_over(by_char) == heard_over(whole)


def test_korean_words_weigh_their_syllable_blocks() -> None:
    assert word_weight("안녕하세요") == 5
    assert word_weight("iPhone을") == word_weight("iPhone") + 1
    aligner = placed("안녕하세요 네", 6.0, by_char=False)
    aligner.advance(4 * RATE)
    assert aligner.text[: aligner.heard_chars] == "안녕하세요 "


def test_an_opening_bracket_after_chinese_text_opens_the_next_unit() -> None:
    heard = heard_over(placed("他说「你好」。", 2.0))
    assert sorted(set(heard), key=len) == ["", "他", "他说", "他说「你", "他说「你好」。"]


@pytest.mark.parametrize("text", ["เป็นคนไทย", "今天天气很好，我们去公园散步吧。"])
def test_a_cut_in_a_huge_unspaced_push_cuts_a_bounded_number_of_units(text: str) -> None:
    cut = {}
    for chars in (200_000, 800_000):
        whole = (text * (chars // len(text) + 1))[:chars]
        aligner = TranscriptAligner(RATE)
        aligner.push_text(whole)
        aligner.end_text()
        for _ in range(500):
            aligner.push_audio(480)
        aligner.end_audio()
        aligner.advance(5 * RATE)
        cut[chars] = aligner.word_count
        heard = whole[: aligner.heard_chars]
        assert len(heard) == pytest.approx(chars / 2, rel=0.01)
        whole_units = placed(whole[len(heard) - 40 : len(heard) + 40], 1.0, by_char=False)
        starts = {whole_units.word_offset(i) for i in range(whole_units.word_count)}
        assert 40 in starts
    assert cut[800_000] < 1.5 * cut[200_000]


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("one two  three", [4, 9]),
        ("東京きょう", [1, 2, 4]),
        ("เป็นคน", [3, 4, 5]),  # a cluster per consonant; the leading vowel joins the first
        ("abc", []),
    ],
)
def test_sure_word_starts_are_after_a_space_or_between_units(text: str, starts: list[int]) -> None:
    assert list(sure_word_starts(text, 0, 0, len(text))) == starts


def test_sure_word_starts_keep_to_the_range_and_count_from_the_window_base() -> None:
    text = "a b c d e"
    window = text[3:8]
    assert list(sure_word_starts(window, 3, 4, 6)) == [4, 6]
