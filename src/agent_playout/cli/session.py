"""A command's run: the voice loaded, the items played into the output, Ctrl-C and pipes.

Ctrl-C and a closed stdout both stop the run the same way: the main task is cancelled, so
the playout and the sink close (a WAV file keeps a valid header); then the command exits
with one line on stderr (Ctrl-C) or silently (closed stdout).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from ..clock import Clock, MonotonicClock, VirtualClock
from ..core.units import REALTIME_SAMPLE_RATE
from ..engine.playout import AgentPlayout
from ..tts import Voice, VoiceUnavailableError, load_voice
from .display import captions_for, print_result
from .exits import BROKEN_PIPE_EXIT, fail, interrupted
from .model_stream import Piece, Spoken, speak
from .output import Output, open_sink

T = TypeVar("T")


class RunConsole(Console):
    """The commands' stdout. When its reader goes away (``| head``) it goes quiet and
    stops the run instead of raising in whatever callback happened to print."""

    def __init__(self) -> None:
        super().__init__()
        self.broken_pipe = False
        self._stop: Callable[[], None] | None = None

    def stop_run_on_broken_pipe(self, stop: Callable[[], None] | None) -> None:
        self._stop = stop

    def on_broken_pipe(self) -> None:
        self.quiet = True
        if self.broken_pipe:
            return
        self.broken_pipe = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # later writes, and the exit flush, vanish
        if self._stop is None:  # no run to stop yet: end here
            raise typer.Exit(BROKEN_PIPE_EXIT)
        self._stop()


def warm_voice(console: Console, name: str) -> Voice:
    """Load and warm up the voice (its first synthesis pays one-time setup costs, which a
    model server would have paid long before the first answer)."""
    try:
        with console.status(f"loading the offline voice ({name})…"):
            try:
                voice = load_voice(name)
            except VoiceUnavailableError as error:
                fail(str(error))
            for _ in voice.synthesize("Ready."):
                pass
    except KeyboardInterrupt:
        interrupted()
    console.print(
        f"voice: {voice.name} ({voice.sample_rate} Hz, played at {REALTIME_SAMPLE_RATE} Hz)",
        highlight=False,
    )
    return voice


async def play_item(
    console: Console,
    playout: AgentPlayout,
    pieces: AsyncIterator[Piece],
    item_id: str,
    rate: int,
    interrupt_after: float | None,
    channels: int = 1,
    *,
    announce: str | None = None,
) -> Spoken:
    """One item with its captions, then its result."""
    captions = captions_for(console)
    try:
        spoken = await speak(
            playout,
            pieces,
            item_id=item_id,
            sample_rate=rate,
            num_channels=channels,
            interrupt_after=interrupt_after,
            watch=captions.watch,
        )
    except BaseException:
        captions.finish(None)
        raise
    captions.finish(spoken.report)
    if announce is not None and spoken.report.interrupted:
        console.print(announce, highlight=False)
    print_result(console, spoken.report)
    return spoken


def run(
    script: Callable[[AgentPlayout], Awaitable[T]],
    output: Output,
    *,
    console: RunConsole,
    fast: bool,
) -> T:
    """Run ``script`` against the output, on a virtual clock when ``fast``; see the module
    docstring for how Ctrl-C and a closed stdout end it."""
    clock: Clock = VirtualClock() if fast else MonotonicClock()

    async def run_script() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def stop() -> None:
            loop.call_soon_threadsafe(task.cancel)

        console.stop_run_on_broken_pipe(stop)
        with open_sink(output, clock, console) as sink:
            playout = AgentPlayout(audio_source=sink, clock=clock)
            try:
                result = await script(playout)
                await sink.wait_for_playout()
            finally:
                await playout.aclose()
            return result

    async def main_on_virtual_clock(virtual: VirtualClock) -> T:
        return await virtual.run(run_script())

    try:
        if isinstance(clock, VirtualClock):
            return asyncio.run(main_on_virtual_clock(clock))
        return asyncio.run(run_script())
    except KeyboardInterrupt:
        interrupted()
    except asyncio.CancelledError:
        if console.broken_pipe:
            raise typer.Exit(BROKEN_PIPE_EXIT) from None
        raise
    finally:
        console.stop_run_on_broken_pipe(None)
