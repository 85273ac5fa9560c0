"""Pipecat answering the benchmark's calls: its FastAPI WebSocket transport, Twilio serializer.

Runs under the Pipecat venv (``bench.phone_env``), never the project's: ``python -m
bench.phone_pipecat --calls N --turns T --turn-s S --min-cut-s C``. It serves Media Streams at
``ws://127.0.0.1:PORT/`` with uvicorn (one FastAPI app, one Pipecat pipeline per call, as
Pipecat's telephony examples do), prints ``{"port": PORT}`` once listening, and after N calls
have ended one JSON line: each call's turns (what Pipecat could report at each cut) and the
process's CPU, memory and event-loop lag. Every call plays ``bench.phone_plan``'s signal as a
TTS would (``TTSAudioRawFrame``s at 24 kHz, paced at real time) and is cut where its plan says,
with ``broadcast_interruption()``, as a user's barge-in does.

What Pipecat can report at a cut: it sends no marks, so the only count it has is the audio
its output transport has written (``written``: serialized into media messages) or pushed on
downstream after the paced write (``reported``: what a processor after ``transport.output()``,
such as its assistant aggregator, sees as spoken).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from importlib.metadata import version
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.frames.frames import (
    AudioRawFrame,
    Frame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

from .phone_plan import (
    PHONE_RATE,
    RATE,
    Plan,
    ServerTally,
    paced_chunks,
    plan_for,
    speech_like,
)


class CountingSerializer(TwilioFrameSerializer):
    """Pipecat's Twilio serializer, counting the 8 kHz samples it puts into media messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples_written = 0
        self.messages = 0

    async def serialize(self, frame: Frame) -> str | bytes | None:
        message: str | bytes | None = await super().serialize(frame)
        if message is not None:
            self.messages += 1
            if isinstance(frame, AudioRawFrame):
                self.samples_written += frame.num_frames * PHONE_RATE // frame.sample_rate
        return message


class PlayedProbe(FrameProcessor):
    """After ``transport.output()``: counts the audio the transport pushed on as played."""

    def __init__(self) -> None:
        super().__init__()
        self.samples = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self.samples += frame.num_frames * PHONE_RATE // frame.sample_rate
        await self.push_frame(frame, direction)


class FixedSpeech(FrameProcessor):
    """A TTS stand-in: plays the plan's turns back to back, cutting each where the plan says."""

    def __init__(self, plan: Plan, probe: PlayedProbe, serializer: CountingSerializer) -> None:
        super().__init__()
        self._plan = plan
        self._probe = probe
        self._serializer = serializer
        self._signal = speech_like(plan.turn_s)
        self.turns: list[dict[str, Any]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._speak())

    async def _speak(self) -> None:
        for cut in self._plan.cuts:
            started = time.monotonic()
            probe_base, written_base = self._probe.samples, self._serializer.samples_written
            await self.push_frame(TTSStartedFrame())
            feeder = asyncio.create_task(self._feed(started))
            await asyncio.sleep(max(started + cut - time.monotonic(), 0.0))
            feeder.cancel()
            self.turns.append(
                {
                    "cut_s": cut,
                    "reported": self._probe.samples - probe_base,
                    "written": self._serializer.samples_written - written_base,
                    "late_ms": round((time.monotonic() - started - cut) * 1000, 2),
                }
            )
            await self.broadcast_interruption()

    async def _feed(self, started: float) -> None:
        async for chunk in paced_chunks(self._signal, started):
            await self.push_frame(TTSAudioRawFrame(chunk.tobytes(), RATE, 1))


class Server(ServerTally):
    """One uvicorn server; a Pipecat pipeline per accepted call; the run's measurements."""

    def __init__(self, calls: int, turns: int, turn_s: float, min_cut_s: float) -> None:
        super().__init__(calls, turns, turn_s, min_cut_s)
        self.app = FastAPI()
        self.app.add_api_websocket_route("/", self.answer)

    async def answer(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.call_started()
        _, call_data = await parse_telephony_websocket(websocket)
        seed = int(call_data.body.get("seed", "0"))
        plan = plan_for(seed, turns=self.turns, turn_s=self.turn_s, min_cut_s=self.min_cut_s)
        serializer = CountingSerializer(
            call_data.stream_id,
            call_data.call_id,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        probe = PlayedProbe()
        speech = FixedSpeech(plan, probe, serializer)
        pipeline = Pipeline([transport.input(), speech, transport.output(), probe])
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=PHONE_RATE, audio_out_sample_rate=PHONE_RATE
            ),
            idle_timeout_secs=None,
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(_transport: Any, _websocket: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        self.call_ended({"seed": seed, "turns": speech.turns, "messages_sent": serializer.messages})


async def serve(calls: int, turns: int, turn_s: float, min_cut_s: float) -> dict[str, Any]:
    """Answer ``calls`` calls, then return the measurements."""
    server = Server(calls, turns, turn_s, min_cut_s)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    config = uvicorn.Config(server.app, log_level="warning", ws="websockets-sansio")
    web = uvicorn.Server(config)
    task = asyncio.create_task(web.serve(sockets=[listener]))
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    await server.all_ended.wait()
    server.lag.stop()
    result = server.result("pipecat")
    web.should_exit = True
    await task
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phone_pipecat", description=__doc__)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--turn-s", type=float, default=4.0)
    parser.add_argument("--min-cut-s", type=float, default=0.4)
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    result = asyncio.run(serve(args.calls, args.turns, args.turn_s, args.min_cut_s))
    result["versions"] = {"pipecat-ai": version("pipecat-ai"), "uvicorn": uvicorn.__version__}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
