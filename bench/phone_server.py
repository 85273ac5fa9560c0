"""Our phone server for the benchmark: ``serve_phone`` and one ``AgentPlayout`` per call.

``python -m bench.phone_server --calls N [--turns T --turn-s S --min-cut-s C --mark-every-ms M
--profile PATH --uvloop]`` serves Media Streams at ``ws://127.0.0.1:PORT/``, prints
``{"port": PORT}`` once listening and, after N calls have ended, one JSON line: each call's
turns (the position it reported at each cut, the confirmed marks alone, echoes ignored) and
the process's CPU, memory and event-loop lag. Every call plays ``bench.phone_plan``'s turns,
cut where the plan says (``handle.interrupt()``), the next turn starting at once.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

import numpy as np

from agent_playout import AgentPlayout, AudioFrame
from agent_playout.sinks.twilio import PhoneCall, serve_phone

from .phone_plan import RATE, ServerTally, paced_chunks, plan_for, speech_like

TEXT = ("This", "is", "what", "the", "agent", "says", "on", "the", "phone.")


async def _frames(signal: np.ndarray, started: float) -> AsyncIterator[AudioFrame]:
    async for chunk in paced_chunks(signal, started):
        yield AudioFrame(chunk, RATE, 1, chunk.size)


async def _words() -> AsyncIterator[str]:
    for word in TEXT:
        yield word + " "


class Server(ServerTally):
    """Answers the calls, records each cut, and measures the process over the calls."""

    def __init__(self, calls: int, turns: int, turn_s: float, min_cut_s: float) -> None:
        super().__init__(calls, turns, turn_s, min_cut_s)
        self.signal = speech_like(turn_s)
        self.errors = 0

    async def answer(self, call: PhoneCall) -> None:
        self.call_started()
        seed = int(call.custom_parameters.get("seed", "0"))
        plan = plan_for(seed, turns=self.turns, turn_s=self.turn_s, min_cut_s=self.min_cut_s)
        sink = call.sink
        playout = AgentPlayout(audio_source=sink)
        turns: list[dict[str, Any]] = []
        try:
            for index, cut in enumerate(plan.cuts):
                if call.ended:
                    break
                started = time.monotonic()
                base, stale_base = sink.samples_played, sink.stale_echoes
                handle = playout.play(
                    item_id=f"{seed}-{index}",
                    content_index=0,
                    transcription_fwd=None,
                    text_stream=_words(),
                    audio_stream=_frames(self.signal, started),
                )
                await asyncio.sleep(max(started + cut - time.monotonic(), 0.0))
                confirmed = sink.confirmed_samples - base
                late_ms = (time.monotonic() - started - cut) * 1000
                handle.interrupt()
                turns.append(
                    {
                        "cut_s": cut,
                        "late_ms": round(late_ms, 2),
                        "audio_samples": handle.audio_samples,
                        "played_samples": handle.played_samples,
                        "confirmed": max(confirmed, 0),
                        "round_trip_ms": _ms(sink.round_trip_ns),
                        "stale_before": stale_base,
                        "error": None if handle.error is None else repr(handle.error),
                    }
                )
            await call.wait_ended()
        finally:
            await playout.aclose()
            self.call_ended(
                {
                    "seed": seed,
                    "turns": turns,
                    "stale_echoes": sink.stale_echoes,
                    "marks_sent": sink.marks_sent,
                    "media_sent": sink.media_sent,
                    "end_reason": call.end_reason,
                }
            )


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 2)


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Answer ``args.calls`` calls, then return the measurements (profiled if asked)."""
    server = Server(args.calls, args.turns, args.turn_s, args.min_cut_s)
    profile = cProfile.Profile() if args.profile else None
    async with serve_phone(
        server.answer, max_calls=args.calls + 10, mark_every_ms=args.mark_every_ms
    ) as phone:
        print(json.dumps({"port": phone.port}), flush=True)
        if profile is not None:
            profile.enable()
        await server.all_ended.wait()
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        server.lag.stop()
        return server.result("ours")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phone_server", description=__doc__)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--turn-s", type=float, default=4.0)
    parser.add_argument("--min-cut-s", type=float, default=0.4)
    parser.add_argument("--mark-every-ms", type=int, default=100)
    parser.add_argument("--profile", help="write cProfile stats of the calls here")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.uvloop:
        import uvloop

        result = uvloop.run(serve(args))
    else:
        result = asyncio.run(serve(args))
    result["versions"] = {name: version(name) for name in ("agent-playout", "websockets")}
    result["loop"] = "uvloop" if args.uvloop else "asyncio"
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
