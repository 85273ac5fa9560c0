"""What a session tells its page about an item: each caption, with the playout position it
came from, and the item's report once it ended (both positions, the settle, the delay)."""

from __future__ import annotations

from typing import Any

from ..core.truncation import Truncation
from ..engine.handle import PlayoutHandle
from ..engine.report import PlayoutReport
from ..sinks.webrtc import Settlement, WebRtcSink
from ..transcript.forwarder import TranscriptForwarder


def caption_message(
    sink: WebRtcSink,
    handle: PlayoutHandle,
    forwarder: TranscriptForwarder,
    *,
    final: bool,
    report_seq: int | None,
) -> dict[str, Any]:
    """The heard text as the engine just moved it, with the position it came from: read in
    the same call, as the engine moves the captions synchronously. ``word_start`` (the last
    heard word's first sample) and ``played`` are on the item's axis, ``position`` and
    ``sent`` on the sink's, all at the sink's rate; ``report_seq`` names the receiver report
    the position came from."""
    rate = sink.sample_rate
    words = forwarder.heard_words
    word_start = words[-1].start * rate // forwarder.sample_rate if words else None
    heard = forwarder.played_text
    return {
        "type": "caption",
        "item_id": handle.item_id,
        "heard": heard,
        "rest": forwarder.text[len(heard) :],
        "final": final,
        "played": handle.played_samples,
        "word_start": word_start,
        "position": sink.samples_played,
        "report_seq": report_seq,
        "sent": sink.samples_sent,
        "sample_rate": rate,
    }


def report_message(
    sink: WebRtcSink,
    handle: PlayoutHandle,
    report: PlayoutReport,
    *,
    text: str,
    settlement: Settlement | None,
    truncation: Truncation | None,
    plot: str | None,
) -> dict[str, Any]:
    """The item's report for the page: the engine's, with both positions and the delay.
    ``settlement`` is the sink's settle of this item (None if it had none), ``truncation``
    the event the item implies or was sent, ``plot`` the timeline's URL."""
    delays = sink.delays()
    if settlement is not None:
        sent = settlement.end - settlement.start
    else:  # not settled: the count is what was sent
        sent = report.played_samples if report.interrupted else handle.pushed_samples
    return {
        "type": "report",
        "item_id": report.item_id,
        "text": text,
        "interrupted": report.interrupted,
        "error": report.error,
        "heard_text": report.heard_text,
        "heard_samples": report.played_samples,
        "sample_rate": report.sample_rate,
        "pushed_samples": handle.pushed_samples,
        "sent_samples": sent,
        "position_confirmed": report.position_confirmed,
        "settlement": None
        if settlement is None
        else {
            "start": settlement.start,
            "end": settlement.end,
            "sent": sent,
            "heard": settlement.heard,
            "lost": settlement.lost,
            "confirmed": settlement.confirmed,
        },
        "samples_sent": sink.samples_sent,
        "samples_played": sink.samples_played,
        "delay": {"count": delays.count, "median_ms": delays.median_ms, "max_ms": delays.max_ms},
        "truncation": None if truncation is None else truncation.to_event(),
        "plot": plot,
        "report": report.to_dict(),
    }
