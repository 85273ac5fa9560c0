"""The driver's position arithmetic: rate conversions, underrun shares, buffer sizes, pace."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_playout.core.positions import (
    CaptionPace,
    UnderrunShare,
    at_rate,
    input_heard,
    realtime_samples,
    refill_level,
    samples_in,
    samples_to_ns,
)
from agent_playout.core.units import NS_PER_SECOND, REALTIME_SAMPLE_RATE

RATES = st.sampled_from([8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000])
COUNTS = st.integers(min_value=0, max_value=10**9)


@given(COUNTS, RATES, RATES)
def test_a_converted_count_is_the_exact_count_rounded_down(
    samples: int, from_rate: int, to_rate: int
) -> None:
    converted = at_rate(samples, from_rate, to_rate)
    exact = Fraction(samples * to_rate, from_rate)
    assert converted <= exact < converted + 1


@given(COUNTS, COUNTS, RATES, RATES)
def test_a_converted_count_never_goes_backwards(
    first: int, more: int, from_rate: int, to_rate: int
) -> None:
    assert at_rate(first, from_rate, to_rate) <= at_rate(first + more, from_rate, to_rate)


@given(COUNTS, RATES)
def test_audio_samples_are_the_played_count_at_24_khz(played: int, sink_rate: int) -> None:
    assert realtime_samples(played, sink_rate) == at_rate(played, sink_rate, REALTIME_SAMPLE_RATE)


def test_audio_samples_of_a_24_khz_sink_are_its_own_count() -> None:
    assert realtime_samples(72000, 24000) == 72000
    assert realtime_samples(48000, 48000) == 24000
    assert realtime_samples(1, 48000) == 0
    assert realtime_samples(441, 44100) == 240


@given(COUNTS, RATES, RATES, COUNTS)
def test_input_heard_while_playing_never_passes_what_was_received(
    played: int, sink_rate: int, input_rate: int, received: int
) -> None:
    heard = input_heard(played, sink_rate, input_rate, received, False)
    assert heard == min(at_rate(played, sink_rate, input_rate), received)


@given(COUNTS, RATES, RATES, COUNTS)
def test_a_finished_item_counts_all_it_received(
    played: int, sink_rate: int, input_rate: int, received: int
) -> None:
    assert input_heard(played, sink_rate, input_rate, received, True) == received


def test_a_resampled_item_rounded_up_by_the_resampler_reports_only_what_it_received() -> None:
    # 1001 samples at 16 kHz became 1502 at 24 kHz (one more than 1501.5): all played.
    assert input_heard(1502, 24000, 16000, 1001, False) == 1001
    assert input_heard(1501, 24000, 16000, 1001, False) == 1000
    assert input_heard(0, 24000, 16000, 1001, False) == 0


@given(st.integers(min_value=0, max_value=10**7), RATES)
def test_samples_in_ms_are_rounded_down(ms: int, rate: int) -> None:
    samples = samples_in(ms, rate)
    assert samples <= Fraction(ms * rate, 1000) < samples + 1


def test_the_engine_sizes_at_24_khz() -> None:
    assert samples_in(50, 24000) == 1200
    assert samples_in(500, 24000) == 12000
    assert samples_in(20_000, 24000) == 480_000
    assert samples_in(0, 24000) == 0
    assert samples_in(50, 44100) == 2205


@given(COUNTS, COUNTS)
def test_the_refill_level_is_between_half_the_limit_and_the_limit(
    read_ahead: int, refill: int
) -> None:
    level = refill_level(read_ahead, refill)
    assert read_ahead - read_ahead // 2 <= level <= read_ahead
    assert level == read_ahead - min(refill, read_ahead // 2)


def test_the_refill_level_of_the_default_limit_and_of_small_ones() -> None:
    assert refill_level(480_000, 24000) == 456_000  # 20 s ahead: resume a second below
    assert refill_level(12000, 24000) == 6000  # 0.5 s ahead: resume at half
    assert refill_level(0, 24000) == 0
    assert refill_level(1, 24000) == 1


@given(st.integers(min_value=0, max_value=10**9), RATES)
def test_a_wait_in_nanoseconds_is_rounded_up_so_a_timer_never_fires_early(
    samples: int, rate: int
) -> None:
    wait_ns = samples_to_ns(samples, rate)
    exact = Fraction(samples * NS_PER_SECOND, rate)
    assert wait_ns - 1 < exact <= wait_ns


def test_one_sample_at_44_1_khz_takes_22676_ns() -> None:
    assert samples_to_ns(1, 44100) == 22676
    assert samples_to_ns(24000, 24000) == NS_PER_SECOND
    assert samples_to_ns(0, 24000) == 0


def test_an_underrun_share_counts_from_the_first_push() -> None:
    share = UnderrunShare()
    assert not share.live
    assert share.counts((5, 100)) is None  # before the first push: no share yet
    share.start((2, 40))
    assert share.live
    assert share.counts((2, 40)) == (0, 0)
    assert share.counts((5, 100)) == (3, 60)


def test_a_frozen_share_no_longer_moves() -> None:
    share = UnderrunShare()
    share.start((2, 40))
    share.freeze((4, 70))
    assert not share.live
    assert share.counts((9, 900)) == (2, 30)
    share.freeze((10, 1000))
    assert share.counts(None) == (2, 30)


def test_a_sink_that_cannot_say_leaves_no_share() -> None:
    unreported = UnderrunShare()
    unreported.start(None)
    assert not unreported.live
    assert unreported.counts((3, 3)) is None

    failed = UnderrunShare()
    failed.start((1, 1))
    assert failed.counts(None) is None  # a sink that stops saying
    failed.freeze(None)
    assert not failed.live
    assert failed.counts((7, 7)) is None


def test_freezing_before_the_first_push_leaves_the_share_unstarted() -> None:
    share = UnderrunShare()
    share.freeze((1, 1))
    assert share.counts((5, 5)) is None
    share.start((5, 5))
    assert share.counts((6, 9)) == (1, 4)


@given(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**12)),
)
def test_a_share_is_the_delta_until_it_freezes(
    base: tuple[int, int], more: tuple[int, int], later: tuple[int, int]
) -> None:
    share = UnderrunShare()
    share.start(base)
    at_stop = (base[0] + more[0], base[1] + more[1])
    assert share.counts(at_stop) == more
    share.freeze(at_stop)
    assert share.counts((at_stop[0] + later[0], at_stop[1] + later[1])) == more


PACE_NS = 20_000_000


def test_the_pace_lets_a_burst_through_then_one_per_period() -> None:
    pace = CaptionPace(PACE_NS, 4)
    fired = []
    now = 10**9
    for _ in range(8):
        due = pace.due(now)  # every caption is due at once
        pace.fired(due)
        fired.append(due - now)
    period = PACE_NS
    assert fired == [0, 0, 0, 0, 0, period, 2 * period, 3 * period]


def test_captions_slower_than_the_pace_are_never_held() -> None:
    pace = CaptionPace(PACE_NS, 4)
    for step in range(1, 50):
        wanted = step * 3 * PACE_NS
        due = pace.due(wanted)
        assert due == wanted
        pace.fired(due)


@given(st.lists(st.integers(min_value=0, max_value=10 * PACE_NS), min_size=1, max_size=60))
def test_the_timer_never_fires_more_than_the_burst_ahead_of_the_pace(gaps: list[int]) -> None:
    burst = 4
    pace = CaptionPace(PACE_NS, burst)
    wanted = 0
    fires: list[int] = []
    for gap in gaps:
        wanted += gap
        due = pace.due(wanted)
        assert due >= wanted
        pace.fired(due)
        fires.append(due)
        wanted = due
    for i, start in enumerate(fires):
        later = [t for t in fires[i:] if t < start + 5 * PACE_NS]
        assert len(later) <= burst + 5


@pytest.mark.parametrize("burst", [0, 1, 4])
def test_an_empty_pace_fires_at_once(burst: int) -> None:
    pace = CaptionPace(PACE_NS, burst)
    assert pace.due(0) == 0
    assert pace.due(123) == 123
