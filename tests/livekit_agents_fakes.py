"""A fake LLM and TTS written against LiveKit Agents 1.x's abstract classes (no cloud).

The LLM answers every turn with one reply, streamed a few characters at a time; the TTS
speaks each text it is given as distinct non-zero samples (``ramp``), a fixed length per
character, in 20 ms frames, so any sample heard can be traced to its place in the reply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import NOT_GIVEN, NotGivenOr, llm, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from .conftest import RATE, ramp

SAMPLES_PER_CHAR = 480
"""20 ms of audio per character of text (a fast talker; the tests stay short)."""


class ReplyLLM(llm.LLM):
    """Answers every chat with ``reply``."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _ReplyStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _ReplyStream(llm.LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, ReplyLLM)
        text = self._llm.reply
        for start in range(0, len(text), 3):
            await asyncio.sleep(0.001)
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id="reply",
                    delta=llm.ChoiceDelta(role="assistant", content=text[start : start + 3]),
                )
            )


class RampTTS(tts.TTS):
    """Speaks text as ramp samples, ``SAMPLES_PER_CHAR`` per character; records each text."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=RATE, num_channels=1
        )
        self.spoken: list[tuple[str, int]] = []
        """Each text synthesized and the samples made of it."""

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _RampStream(tts=self, input_text=text, conn_options=conn_options)


class _RampStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        assert isinstance(self._tts, RampTTS)
        output_emitter.initialize(
            request_id=utils.shortuuid("ramp_"),
            sample_rate=RATE,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=20,
        )
        signal = ramp(len(self._input_text) * SAMPLES_PER_CHAR, start=5000)
        self._tts.spoken.append((self._input_text, signal.size))
        for start in range(0, signal.size, 480):
            output_emitter.push(signal[start : start + 480].tobytes())
            await asyncio.sleep(0)
        output_emitter.flush()
