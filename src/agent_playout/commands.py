"""The ``agent-playout`` commands (typer): ``say``, ``play`` and ``demo``.

Each one streams an answer through ``AgentPlayout`` into the chosen output, shows its
captions, prints what was heard and the realtime API event it implies, and optionally
writes the JSON report and the timeline plot.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console
from rich.markup import escape

from .clock import Clock, MonotonicClock, VirtualClock
from .display import captions_for, print_result
from .playout import AgentPlayout
from .sinks.device import DeviceSink, NoOutputDeviceError, output_device_available
from .sinks.paced import NullSink
from .sinks.wav import WavSink
from .speak import Piece, Spoken, file_pieces, speak, voice_pieces
from .tts import Voice, VoiceUnavailableError, load_voice

T = TypeVar("T")

SINK_RATE = 24000
"""Outputs play at the realtime API's rate; the engine resamples whatever comes in."""

app = typer.Typer(
    name="agent-playout",
    help="Play an agent's spoken answer in real time, captions in step, and report exactly"
    " what the listener heard when they barge in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class VoiceName(str, Enum):
    """The embedded offline voices."""

    auto = "auto"
    piper = "piper"
    espeak = "espeak"


@dataclass(frozen=True)
class Output:
    """Where the audio goes: ``speakers``, ``null``, or ``wav`` with its ``path``."""

    kind: str
    path: Path | None = None


def parse_output(value: str) -> Output:
    """``speakers``, ``null`` or ``wav:PATH``; anything else is a usage error (exit 2)."""
    if value in ("speakers", "null"):
        return Output(value)
    if value.startswith("wav:") and value[4:].strip():
        return Output("wav", _writable(Path(value[4:]), "'--out'"))
    raise typer.BadParameter(
        f"{value!r} is not an output; use speakers, null or wav:PATH", param_hint="'--out'"
    )


def _writable(path: Path, hint: str) -> Path:
    """``path`` if its folder exists, so a run does not fail only once it has played."""
    if not path.parent.is_dir():
        raise typer.BadParameter(f"folder {str(path.parent)!r} does not exist", param_hint=hint)
    return path


VoiceOption = Annotated[
    VoiceName, typer.Option(help="Offline voice; auto is piper if installed, else espeak.")
]
OutOption = Annotated[
    str,
    typer.Option(
        metavar="speakers|wav:PATH|null",
        help="Where the audio plays. Without a sound device, speakers fall back to a WAV file"
        " in the current directory.",
    ),
]
InterruptOption = Annotated[
    float | None,
    typer.Option(min=0.0, help="Barge in once the listener has heard this many seconds."),
]
ReportOption = Annotated[
    Path | None, typer.Option(dir_okay=False, help="Write the per-item report here (JSON).")
]
PlotOption = Annotated[
    Path | None,
    typer.Option(dir_okay=False, help="Draw the timeline here (PNG; needs the plot extra)."),
]
FastOption = Annotated[
    bool,
    typer.Option(
        "--fast", help="Run on a virtual clock, as fast as possible (wav and null outputs only)."
    ),
]


@app.command()
def say(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What the agent says.")],
    voice: VoiceOption = VoiceName.auto,
    out: OutOption = "speakers",
    interrupt_at: InterruptOption = None,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
) -> None:
    """Speak TEXT with an offline voice, streamed through the engine like a model's audio."""
    if not text.strip():
        raise typer.BadParameter("there is nothing to say", param_hint="TEXT")
    output = _checked_output(out, fast=fast, report=report, plot=plot)
    console = Console()
    spoken_voice = _load_voice(console, voice)

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = voice_pieces(spoken_voice, text, in_thread=not fast)
        item = await _play_item(
            console, playout, pieces, "item_1", spoken_voice.sample_rate, interrupt_at
        )
        return [item]

    spoken = _run(script, output, console=console, fast=fast, fallback=Path("agent-playout.wav"))
    _write_outputs(spoken, report=report, plot=plot, console=console, single=True)


@app.command()
def play(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, metavar="FILE", help="A 16-bit PCM WAV."
        ),
    ],
    text: Annotated[str, typer.Option(help="The transcript of the recording.")] = "",
    out: OutOption = "speakers",
    interrupt_at: InterruptOption = None,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
) -> None:
    """Play a recorded answer (any rate; the engine resamples), its captions estimated."""
    output = _checked_output(out, fast=fast, report=report, plot=plot)
    audio, rate, channels = _read_wav(file)
    console = Console()

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = file_pieces(audio, text)
        item = await _play_item(console, playout, pieces, "item_1", rate, interrupt_at, channels)
        return [item]

    spoken = _run(script, output, console=console, fast=fast, fallback=Path("agent-playout.wav"))
    _write_outputs(spoken, report=report, plot=plot, console=console, single=True)


DEMO_TURNS = (
    (
        "When is the next train to Boston?",
        "At 6:40. It leaves from platform three, and it is on time.",
        None,
    ),
    (
        "How long is the trip?",
        "About four hours. There is a short stop in Providence, and the café car stays open"
        " until New Haven.",
        "Sorry, which platform?",
    ),
)
"""(user question, agent answer, the user's barge-in or None) for each turn."""


@app.command()
def demo(
    voice: VoiceOption = VoiceName.auto,
    out: OutOption = "speakers",
    interrupt_at: Annotated[
        float, typer.Option(min=0.0, help="Seconds of the second answer heard before the barge-in.")
    ] = 2.5,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
) -> None:
    """A two-turn conversation: one answer plays to the end, the next is cut by a barge-in."""
    output = _checked_output(out, fast=fast, report=report, plot=plot)
    console = Console()
    spoken_voice = _load_voice(console, voice)

    async def script(playout: AgentPlayout) -> list[Spoken]:
        items = []
        for number, (question, answer, barge_in) in enumerate(DEMO_TURNS, start=1):
            console.print(f"[bold]user:[/] {question}", highlight=False)
            pieces = voice_pieces(spoken_voice, answer, in_thread=not fast)
            cut = interrupt_at if barge_in else None
            item = await _play_item(
                console,
                playout,
                pieces,
                f"item_{number}",
                spoken_voice.sample_rate,
                cut,
                announce=f"[bold]user barges in:[/] {barge_in}" if barge_in else None,
            )
            items.append(item)
        return items

    spoken = _run(script, output, console=console, fast=fast, fallback=Path("demo.wav"))
    _write_outputs(spoken, report=report, plot=plot, console=console, single=False)


def _checked_output(out: str, *, fast: bool, report: Path | None, plot: Path | None) -> Output:
    """Validate the options that depend on each other, before anything is loaded."""
    output = parse_output(out)
    for path, hint in ((report, "'--report'"), (plot, "'--plot'")):
        if path is not None:
            _writable(path, hint)
    if fast and output.kind == "speakers":
        raise typer.BadParameter(
            "--fast runs on a virtual clock, so it needs --out wav:PATH or --out null",
            param_hint="'--fast'",
        )
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        Console(stderr=True).print(
            "--plot needs matplotlib: pip install 'agent-playout[plot]'", markup=False
        )
        raise typer.Exit(1)
    return output


def _load_voice(console: Console, name: VoiceName) -> Voice:
    """Load and warm up the voice (its first synthesis pays one-time setup costs, which a
    model server would have paid long before the first answer)."""
    with console.status(f"loading the offline voice ({name.value})…"):
        try:
            voice = load_voice(name.value)
        except VoiceUnavailableError as error:
            Console(stderr=True).print(f"error: {error}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        for _ in voice.synthesize("Ready."):
            pass
    console.print(
        f"voice: {voice.name} ({voice.sample_rate} Hz, played at {SINK_RATE} Hz)",
        highlight=False,
    )
    return voice


def _read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """The file's int16 samples (interleaved), rate and channel count."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, rate, channels = wav.getsampwidth(), wav.getframerate(), wav.getnchannels()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise typer.BadParameter(f"{path} is not a WAV file: {error}", param_hint="FILE") from None
    if width != 2:
        raise typer.BadParameter(
            f"{path} holds {8 * width}-bit samples; only 16-bit PCM is supported",
            param_hint="FILE",
        )
    return np.frombuffer(data, dtype="<i2").astype(np.int16), rate, channels


async def _play_item(
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


def _run(
    script: Callable[[AgentPlayout], Awaitable[T]],
    output: Output,
    *,
    console: Console,
    fast: bool,
    fallback: Path,
) -> T:
    """Run ``script`` against the output, on a virtual clock when ``fast``."""
    clock: Clock = VirtualClock() if fast else MonotonicClock()

    async def run_script() -> T:
        with _open_sink(output, clock, console, fallback) as sink:
            playout = AgentPlayout(audio_source=sink, clock=clock)
            try:
                result = await script(playout)
                await sink.wait_for_playout()
            finally:
                await playout.aclose()
            return result

    async def main_on_virtual_clock(virtual: VirtualClock) -> T:
        return await virtual.run(run_script())

    if isinstance(clock, VirtualClock):
        return asyncio.run(main_on_virtual_clock(clock))
    return asyncio.run(run_script())


@contextlib.contextmanager
def _open_sink(
    output: Output, clock: Clock, console: Console, fallback: Path
) -> Iterator[NullSink | WavSink | DeviceSink]:
    """The output's sink; speakers fall back to ``fallback`` (a WAV) with a message."""
    if output.kind == "null":
        yield NullSink(SINK_RATE, clock=clock)
        return
    if output.kind == "speakers":
        device, reason = _speakers()
        if device is not None:
            with contextlib.closing(device):
                yield device
            return
        Console(stderr=True).print(
            f"[yellow]no speakers:[/] {escape(reason)}; writing the audio to"
            f" {escape(str(fallback))} instead",
            soft_wrap=True,
        )
        output = Output("wav", fallback)
    assert output.path is not None
    with WavSink(output.path, SINK_RATE, clock=clock) as wav:
        yield wav
    console.print(
        f"wrote {output.path}: {wav.frames_written} samples at {SINK_RATE} Hz",
        markup=False,
        highlight=False,
    )


def _speakers() -> tuple[DeviceSink | None, str]:
    """A sink on the default output device, or None and the reason there is none."""
    try:
        importlib.import_module("sounddevice")
    except ImportError:
        return None, "sounddevice is not installed (pip install 'agent-playout[device]')"
    except OSError:
        return None, "the PortAudio library is missing (Debian: apt-get install libportaudio2)"
    if not output_device_available():
        return None, "no sound output device was found (no sound card or sound server)"
    try:
        return DeviceSink(SINK_RATE, 1), ""
    except NoOutputDeviceError as error:
        return None, str(error)


def _write_outputs(
    spoken: Sequence[Spoken],
    *,
    report: Path | None,
    plot: Path | None,
    console: Console,
    single: bool,
) -> None:
    """The JSON report (one object for ``say``/``play``, a list for ``demo``) and the plot."""
    if report is not None:
        dicts = [item.report.to_dict() for item in spoken]
        payload = dicts[0] if single else dicts
        report.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        console.print(f"wrote {report}", markup=False, highlight=False)
    if plot is not None:
        from .plot import plot_timeline

        plot_timeline(plot, [(item.report, item.audio) for item in spoken])
        console.print(f"wrote {plot}", markup=False, highlight=False)
