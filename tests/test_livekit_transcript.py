"""Transcript publishing, against the real ``rtc`` classes as far as they go without a server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent_playout import AudioFrame, TimedText, TranscriptForwarder

rtc = pytest.importorskip("livekit.rtc", reason="the [livekit] extra is not installed")
from livekit.rtc.participant import PublishTranscriptionError  # noqa: E402

from agent_playout.sinks.livekit.captions import (  # noqa: E402
    TranscriptPublisher,
    to_transcription,
)


class ServerlessParticipant:
    """Stands in for ``rtc.LocalParticipant``, which exists only in a connected room; like
    the real one it raises ``PublishTranscriptionError`` when the server refuses."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.received: list[rtc.Transcription] = []
        self.refuse = refuse_first

    async def publish_transcription(self, transcription: rtc.Transcription) -> None:
        await asyncio.sleep(0)
        if self.refuse:
            self.refuse -= 1
            raise PublishTranscriptionError("engine: not connected")
        self.received.append(transcription)


def test_a_room_has_no_participant_to_publish_with_until_it_connects() -> None:
    async def probe() -> None:
        with pytest.raises(Exception, match="before connecting"):
            _ = rtc.Room().local_participant

    asyncio.run(probe())


async def test_segments_become_livekit_transcriptions_with_real_times() -> None:
    forwarder = TranscriptForwarder(language="en-US")
    target = ServerlessParticipant(refuse_first=1)
    publisher = TranscriptPublisher(
        target, participant_identity="agent", track_sid="TR_audio", offset_ms=1000
    )
    task = publisher.attach(forwarder)
    forwarder.segment_playout_started()
    forwarder.push_text(TimedText("Hello there. ", 0.0, 0.5))
    forwarder.push_text(TimedText("Bye.", 0.75, 1.0))
    forwarder.mark_text_segment_end()
    forwarder.push_audio(AudioFrame(np.zeros(24000, np.int16), 24000, 1, 24000))
    forwarder.set_playout_position(100)
    forwarder.set_playout_position(20000)
    forwarder.segment_playout_finished()
    await forwarder.aclose()
    await asyncio.wait_for(task, 1)
    assert publisher.failed == 1
    assert publisher.published == len(target.received) == 3
    segments = [t.segments[0] for t in target.received]
    assert all(isinstance(s, rtc.TranscriptionSegment) for s in segments)
    assert [(s.text, s.start_time, s.end_time, s.final) for s in segments] == [
        ("Hello there.", 1000, 1750, True),
        ("Bye.", 1750, 1833, False),
        ("Bye.", 1750, 2000, True),
    ]
    assert {t.participant_identity for t in target.received} == {"agent"}
    assert {t.track_sid for t in target.received} == {"TR_audio"}


def test_conversion_keeps_id_language_and_finality() -> None:
    from agent_playout import TranscriptSegment

    segment = TranscriptSegment("SG_1", "Hi.", 0.25, 0.5, True, "fr-FR")
    transcription = to_transcription(segment, participant_identity="a", track_sid="t")
    (converted,) = transcription.segments
    assert (converted.id, converted.language, converted.final) == ("SG_1", "fr-FR", True)
    assert (converted.start_time, converted.end_time) == (250, 500)
