"""Word weights: syllables from a hyphenation dictionary, pauses, digits, a bounded cache."""

from __future__ import annotations

import random
import string

import pyphen

from agent_playout.transcript.weights import HYPHENATION_CACHE_WORDS
from agent_playout.transcript.words import word_weight


def test_syllables_come_from_a_hyphenation_dictionary() -> None:
    assert word_weight("information") == 4
    assert word_weight("extraordinary") == 5
    assert word_weight("the") == 1
    assert word_weight("queueing") < 4  # a vowel-group counter says 3, a vowel counter 6


def test_punctuation_adds_a_pause_and_digits_count_as_spoken() -> None:
    assert word_weight("done.") == word_weight("done") + 1.5
    assert word_weight("first,") == word_weight("first") + 0.75
    assert word_weight("2026") > word_weight("two")


def test_the_hyphenation_cache_stays_bounded_however_many_distinct_words() -> None:
    rng = random.Random(7)
    for _ in range(3 * HYPHENATION_CACHE_WORDS):
        word_weight("".join(rng.choices(string.ascii_lowercase, k=9)))
    assert len(pyphen.Pyphen(lang="en_US").hd.cache) == HYPHENATION_CACHE_WORDS
