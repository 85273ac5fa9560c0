"""The parts every sink shares, tested on their own."""

from __future__ import annotations

from agent_playout.sinks.base import UnderrunMeter


def test_an_underrun_counts_from_going_dry_to_refilling() -> None:
    meter = UnderrunMeter()
    meter.went_dry(100)
    meter.went_dry(150)  # still the same span
    assert (meter.count(), meter.length(130), meter.dry_since) == (1, 30, 100)
    meter.refilled(180)
    assert (meter.count(), meter.length(1000), meter.dry_since) == (1, 80, None)


def test_a_clear_forgets_the_open_span_but_keeps_the_closed_ones() -> None:
    meter = UnderrunMeter()
    meter.span(0, 40)
    meter.went_dry(100)
    meter.forget()
    meter.refilled(200)
    assert (meter.count(), meter.length(500)) == (1, 40)


def test_a_span_learned_late_never_counts_negative_time() -> None:
    meter = UnderrunMeter()
    meter.span(50, 20)
    assert (meter.count(), meter.length(0)) == (1, 0)
