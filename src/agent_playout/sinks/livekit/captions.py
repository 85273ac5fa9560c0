"""Publish a ``TranscriptForwarder``'s segments to a LiveKit room (extra ``[livekit]``).

Each segment becomes an ``rtc.Transcription`` with real start and end times, in
milliseconds on the item's sample clock plus ``offset_ms`` (LiveKit 0.x sent 0 for both).
Publishing needs a room connected to a LiveKit server; everything up to the
``publish_transcription`` call works without one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from livekit import rtc

from ...transcript.forwarder import TranscriptForwarder, TranscriptSegment

logger = logging.getLogger("agent_playout")


class TranscriptionTarget(Protocol):
    """What publishes: ``rtc.LocalParticipant`` (``room.local_participant`` once connected)."""

    async def publish_transcription(self, transcription: rtc.Transcription) -> None: ...


def to_transcription(
    segment: TranscriptSegment, *, participant_identity: str, track_sid: str, offset_ms: int = 0
) -> rtc.Transcription:
    """The LiveKit form of ``segment``: one ``rtc.TranscriptionSegment`` with times in ms."""
    return rtc.Transcription(
        participant_identity=participant_identity,
        track_sid=track_sid,
        segments=[
            rtc.TranscriptionSegment(
                id=segment.id,
                text=segment.text,
                start_time=offset_ms + round(segment.start * 1000),
                end_time=offset_ms + round(segment.end * 1000),
                language=segment.language,
                final=segment.final,
            )
        ],
    )


class TranscriptPublisher:
    """Forwards segments to a room as they are heard; a failed publish is logged, not fatal.

    ``participant_identity`` and ``track_sid`` name the agent and its audio track, so
    clients attach the captions to that track.
    """

    def __init__(
        self,
        target: TranscriptionTarget,
        *,
        participant_identity: str,
        track_sid: str,
        offset_ms: int = 0,
    ) -> None:
        self._target = target
        self._identity = participant_identity
        self._track_sid = track_sid
        self._offset_ms = offset_ms
        self.published = 0
        self.failed = 0

    async def publish(self, segment: TranscriptSegment) -> None:
        transcription = to_transcription(
            segment,
            participant_identity=self._identity,
            track_sid=self._track_sid,
            offset_ms=self._offset_ms,
        )
        try:
            await self._target.publish_transcription(transcription)
        except Exception as error:
            self.failed += 1
            logger.warning("publishing transcription segment %s failed: %s", segment.id, error)
        else:
            self.published += 1

    async def forward(self, segments: AsyncIterator[TranscriptSegment]) -> None:
        """Publish every segment until the stream ends (its forwarder closes)."""
        async for segment in segments:
            await self.publish(segment)

    def attach(self, forwarder: TranscriptForwarder) -> asyncio.Task[None]:
        """Subscribe now and forward in a task that ends when the forwarder closes."""
        return asyncio.create_task(self.forward(forwarder.segments()))
