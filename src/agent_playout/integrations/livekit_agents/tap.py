"""A ``TextOutput`` that passes the session's text on and gives the output a copy of it.

``AudioOutput`` sees only audio; the words it reports as heard come from the text the
session sends to its transcription output, so the output puts this tap in front of it.
"""

from __future__ import annotations

from livekit.agents.voice import io

from .segments import TextSegments


class TranscriptTap(io.TextOutput):
    """Copies each text segment into ``segments``, then forwards it unchanged."""

    def __init__(self, segments: TextSegments, *, next_in_chain: io.TextOutput | None) -> None:
        super().__init__(label="agent_playout.TranscriptTap", next_in_chain=next_in_chain)
        self._segments = segments

    @property
    def segments(self) -> TextSegments:
        return self._segments

    async def capture_text(self, text: str) -> None:
        self._segments.push(text)
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_text(text)

    def flush(self) -> None:
        self._segments.end()
        if self.next_in_chain is not None:
            self.next_in_chain.flush()


def find_tap(output: io.TextOutput | None, segments: TextSegments) -> bool:
    """True if ``output``'s chain already holds a tap feeding ``segments``."""
    while output is not None:
        if isinstance(output, TranscriptTap) and output.segments is segments:
            return True
        output = output.next_in_chain
    return False
