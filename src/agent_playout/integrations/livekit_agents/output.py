"""``ExactAudioOutput``: a LiveKit Agents 1.x ``AudioOutput`` with exact playback positions.

LiveKit's room output estimates the played position as seconds pushed minus
``rtc.AudioSource.queued_duration``, a wall-clock guess. This one plays through
``LiveKitSink``, which counts the source's native 10 ms release ticks, so
``playback_position`` is the exact count of samples that went out (the declick fade after
a ``clear_buffer()`` included), and ``synchronized_transcript`` is the words whose first
sample is among them, placed on the same count by this package's aligner.

The contract is ``livekit.agents.voice.io.AudioOutput``'s, as ``AgentSession`` drives it:
``capture_frame`` runs, ``flush()`` ends a segment, ``clear_buffer()`` cuts it short, and
``pause()``/``resume()`` hold and continue it on a false interruption. Each segment reports
``playback_started`` once, a ``playback_progressed`` for each run that played (runs are
split by pauses and by the source running dry), and one ``playback_finished``, which
``wait_for_playout()`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io

from ...errors import PositionUnconfirmedError
from ...sinks.livekit.sink import LiveKitSink
from .segments import Run, Segment, TextSegments
from .tap import TranscriptTap, find_tap

__all__ = ["DEFAULT_QUEUE_MS", "ExactAudioOutput"]

logger = logging.getLogger("agent_playout")

DEFAULT_QUEUE_MS = 200
"""The source's queue when this output makes the source: the one LiveKit's room output uses."""
CONFIRM_TIMEOUT_S = 2.0
"""How long ``last_playback_confirmed()`` waits for the source's clear to have run."""


class ExactAudioOutput(io.AudioOutput):
    """Plays a session's audio to a LiveKit room with exact positions and heard text.

    ``room``: the output publishes its source there as ``track_name`` when it is attached
    to a connected room's session, and, like LiveKit's room output, holds audio back until
    a participant subscribed. Without a room, give ``source`` (published by you, or read
    back with an ``rtc.AudioStream``). ``sample_rate``, ``num_channels`` and
    ``queue_size_ms`` make the source this output makes (LiveKit's 200 ms queue by
    default); a given ``source`` keeps its format, and its queue is measured unless told.
    ``fade_ms`` is the declick fade after a clear or pause.

    ``session``: with it the output puts a ``TranscriptTap`` in front of the session's
    transcription output once the session has started, and reports
    ``synchronized_transcript``, the text LiveKit puts in the chat context for an
    interrupted reply. Without it no transcript is reported.
    """

    def __init__(
        self,
        room: rtc.Room | None = None,
        *,
        session: AgentSession[Any] | None = None,
        source: rtc.AudioSource | None = None,
        sample_rate: int = 24000,
        num_channels: int = 1,
        queue_size_ms: int | None = None,
        fade_ms: float = 5.0,
        track_name: str = "agent_playout",
        publish_options: rtc.TrackPublishOptions | None = None,
    ) -> None:
        if room is None and source is None:
            raise ValueError("ExactAudioOutput needs a room to publish to, or a source to play to")
        if source is None:
            queue_size_ms = DEFAULT_QUEUE_MS if queue_size_ms is None else queue_size_ms
            source = rtc.AudioSource(sample_rate, num_channels, queue_size_ms=queue_size_ms)
            self._owns_source = True
        else:
            self._owns_source = False
        rate = source.sample_rate
        super().__init__(
            label="agent_playout.ExactAudioOutput",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=rate,
        )
        self._rate = rate
        self._channels = source.num_channels
        self._source = source
        self._sink = LiveKitSink(source, queue_size_ms=queue_size_ms, fade_ms=fade_ms)
        self._room = room
        self._track_name = track_name
        self._publish_options = publish_options or rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_MICROPHONE
        )
        self._publishing: asyncio.Task[rtc.LocalTrackPublication] | None = None
        self._session = session
        self._texts = TextSegments(rate)
        self._segment: Segment | None = None
        self._playout: asyncio.Task[None] | None = None
        self._last_samples = 0
        self._last_cut: tuple[int, int] | None = None
        self._closed = False
        if session is not None:
            session.on("agent_state_changed", self._on_agent_state)

    @property
    def sink(self) -> LiveKitSink:
        """The sink that counts what the source released."""
        return self._sink

    @property
    def source(self) -> rtc.AudioSource:
        return self._source

    @property
    def last_playback_samples(self) -> int:
        """The last finished segment's ``playback_position`` as an exact sample count."""
        return self._last_samples

    async def last_playback_confirmed(self) -> bool:
        """Whether the last finished segment, if ``clear_buffer()`` cut it, ended at its
        reported position: False if the source's clear ran so late (a starved event loop)
        that more may have gone out than ``playback_position`` says, or if the source did
        not finish the clear within ``CONFIRM_TIMEOUT_S``."""
        span = self._last_cut
        if span is None:
            return True
        try:
            await asyncio.wait_for(self._sink.settle(*span), CONFIRM_TIMEOUT_S)
        except (PositionUnconfirmedError, TimeoutError):
            return False
        return True

    # -- attachment ----------------------------------------------------------------------
    def on_attached(self) -> None:
        super().on_attached()
        self._install_tap()
        if self._room is not None and self._room.isconnected():
            self._start_publishing()

    def _on_agent_state(self, _event: object) -> None:
        self._install_tap()

    def _install_tap(self) -> None:
        """Put the tap in front of the session's transcription output, once it started
        (before, RoomIO sets that output and would keep the tap out) and while this output
        is in its audio chain."""
        session = self._session
        if session is None or session.agent_state == "initializing" or not self._in_chain():
            return
        current = session.output.transcription
        if not find_tap(current, self._texts):
            session.output.transcription = self.transcription_tap(current)

    def transcription_tap(self, next_in_chain: io.TextOutput | None = None) -> TranscriptTap:
        """A text output that feeds this output's transcript and passes the text on to
        ``next_in_chain``: for a pipeline driven without ``session``."""
        self._texts.attached = True
        return TranscriptTap(self._texts, next_in_chain=next_in_chain)

    def _in_chain(self) -> bool:
        assert self._session is not None
        output = self._session.output.audio
        while output is not None:
            if output is self:
                return True
            output = output.next_in_chain
        return False

    def _start_publishing(self) -> asyncio.Task[rtc.LocalTrackPublication]:
        if self._publishing is None:
            self._publishing = asyncio.ensure_future(self._publish())
        return self._publishing

    async def _publish(self) -> rtc.LocalTrackPublication:
        """Publish the source and wait, as LiveKit's room output does, for a subscriber."""
        assert self._room is not None
        track = rtc.LocalAudioTrack.create_audio_track(self._track_name, self._source)
        publication = await self._room.local_participant.publish_track(track, self._publish_options)
        await publication.wait_for_subscription()
        return publication

    async def _published(self) -> None:
        room = self._room
        if room is None:
            return
        if self._publishing is None and not room.isconnected():
            raise RuntimeError(
                f"ExactAudioOutput: room {room.name!r} is not connected, so its track cannot"
                " be published; connect the room before the session speaks"
            )
        await asyncio.shield(self._start_publishing())

    # -- the AudioOutput contract -------------------------------------------------------
    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            raise RuntimeError("capture_frame() on a closed ExactAudioOutput")
        if frame.sample_rate != self._rate or frame.num_channels != self._channels:
            raise ValueError(
                f"frame is {frame.sample_rate} Hz x{frame.num_channels}; ExactAudioOutput"
                f" plays {self._rate} Hz x{self._channels} (it declares its sample_rate, so"
                " AgentSession resamples to it)"
            )
        await self._published()
        await super().capture_frame(frame)
        segment = self._segment
        if segment is None:
            sink = self._sink
            started_at = time.time() + sink.samples_queued / self._rate
            segment = self._segment = Segment(sink.samples_written, self._texts.take(), started_at)
            self.on_playback_started(created_at=started_at)
        if segment.cut is not None:
            return  # cleared: the rest of the segment is dropped until its flush
        sink = self._sink
        if not sink.paused and sink.samples_played >= sink.samples_written:
            # the source ran dry waiting for this frame: the run so far has ended
            self._report(segment.end_run(segment.played(sink.samples_played), time.time()))
        segment.pushed_audio(frame.samples_per_channel)
        await sink.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        segment = self._segment
        if segment is None or segment.flushed:
            return
        segment.flush()
        if segment.cut is not None:
            self._finish(segment, segment.cut, interrupted=True)
            return
        self._playout = asyncio.ensure_future(self._play_out(segment))

    def clear_buffer(self) -> None:
        segment = self._segment
        if segment is None:
            self._texts.drop_unheard()
            return
        if segment.cut is not None:
            return
        self._sink.clear_queue()
        segment.cut = segment.played(self._sink.samples_written)
        self._last_cut = (segment.start, segment.start + segment.cut)
        if segment.flushed:
            self._finish(segment, segment.cut, interrupted=True)

    def pause(self) -> None:
        super().pause()
        self._sink.pause()

    def resume(self) -> None:
        super().resume()
        segment = self._segment
        if segment is not None and self._sink.paused:
            self._report(segment.end_run(segment.played(self._sink.samples_played), time.time()))
        self._sink.resume()

    async def _play_out(self, segment: Segment) -> None:
        """Finish ``segment`` once the source released all of it (a clear finishes it first)."""
        try:
            await self._sink.wait_for_playout()
        except Exception:
            logger.exception(
                "ExactAudioOutput: the source failed while a segment played out; it ends"
                " where the count stands, %d of its %d samples",
                segment.played(self._sink.samples_played),
                segment.pushed,
            )
            if self._segment is segment:
                self._finish(segment, segment.played(self._sink.samples_played), interrupted=True)
            return
        if self._segment is segment and segment.cut is None:
            self._finish(segment, segment.pushed, interrupted=False)

    def _finish(self, segment: Segment, played: int, *, interrupted: bool) -> None:
        if self._playout is not None and not self._playout.done():
            self._playout.cancel()
        self._playout = None
        self._report(segment.end_run(played, time.time()))
        transcript = (
            segment.transcript(played, complete=not interrupted) if self._texts.attached else None
        )
        self._texts.release(segment.text)
        self._segment = None
        self._last_samples = played
        if segment.cut is None:
            self._last_cut = None
        self.on_playback_finished(
            playback_position=played / self._rate,
            interrupted=interrupted,
            synchronized_transcript=transcript,
        )

    def _report(self, run: Run | None) -> None:
        """Report a run that played (older livekit-agents, 1.6.4 among them, have no such event)."""
        if run is None or not hasattr(io, "PlaybackProgressedEvent"):
            return
        self.on_playback_progressed(
            started_at=run.started_at,
            offset=run.offset / self._rate,
            duration=run.duration / self._rate,
        )

    async def aclose(self) -> None:
        """Cut what plays, let its fade-out finish, unpublish the track and close the source
        this output made (one passed in stays open: close it after this)."""
        self._closed = True
        if self._session is not None:
            self._session.off("agent_state_changed", self._on_agent_state)
        self.clear_buffer()
        if self._segment is not None:
            self.flush()
        publishing, self._publishing = self._publishing, None
        if publishing is not None:
            publishing.cancel()
        try:
            await self._sink.aclose()  # the fade-out and the clear finish before the source goes
            if publishing is not None:
                await asyncio.wait([publishing])
                if not publishing.cancelled() and publishing.exception() is None:
                    assert self._room is not None
                    await self._room.local_participant.unpublish_track(publishing.result().sid)
        finally:
            if self._owns_source:
                await self._source.aclose()
