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
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import numpy as np
import numpy.typing as npt
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from ..clock import Clock, MonotonicClock, VirtualClock
from ..core.units import REALTIME_SAMPLE_RATE
from ..engine.playout import AgentPlayout
from ..sinks.device import DeviceSink, NoOutputDeviceError, output_device_available
from ..sinks.paced import NullSink
from ..sinks.wav import WavSink
from ..tts import Voice, VoiceUnavailableError, load_voice
from .display import captions_for, print_result
from .model_stream import Piece, Spoken, file_pieces, speak, voice_pieces

T = TypeVar("T")

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report a process SIGINT ended."""
BROKEN_PIPE_EXIT = 141
"""Exit code when stdout's reader goes away (``| head``): 128 + SIGPIPE, what a shell
reports for a command that a closed pipe ended, so ``set -o pipefail`` still sees it."""


def _plain_help(command: Any, ctx: Any) -> None:
    """Drop the type tags typer adds to help: ``<bool>`` on flags, ``<str>`` on arguments."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and not isinstance(param, _PlainArgument):
            param.__class__ = _PlainArgument


class _PlainArgument(TyperArgument):
    """An argument shown by its name only: no type tag, no braces in the usage line."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.metavar or (self.name or "").upper()]


class _Command(TyperCommand):
    """A command whose help shows each parameter by name, without typer's type tags."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self, ctx)
        super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        _plain_help(self, ctx)
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return pieces


class _Group(TyperGroup):
    """The command group, with the same plain help as its commands."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="agent-playout",
    cls=_Group,
    help="Play an agent's spoken answer in real time, captions in step, and report exactly"
    " what the listener heard when they barge in.",
    epilog="Exit codes: 0 done, 1 error, 2 bad usage, 130 Ctrl-C, 141 output pipe closed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"agent-playout {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Play an agent's spoken answer in real time, captions in step, and report exactly
    what the listener heard when they barge in."""


class VoiceName(str, Enum):
    """The embedded offline voices."""

    auto = "auto"
    piper = "piper"
    espeak = "espeak"


@dataclass(frozen=True)
class Output:
    """Where the audio goes: ``speakers``, ``null``, or ``wav`` with its ``path``. For
    speakers, ``path`` is the fallback file should the device fail to open, and ``force``
    whether that may replace an existing file."""

    kind: str
    path: Path | None = None
    force: bool = False


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


def _seconds(value: float | None) -> float | None:
    if value is not None and not value >= 0:
        raise typer.BadParameter(f"must be 0 or more seconds, got {value}")
    return value


VoiceOption = Annotated[
    VoiceName,
    typer.Option(
        metavar="auto|piper|espeak", help="Offline voice; auto is piper if installed, else espeak."
    ),
]
OutOption = Annotated[
    str,
    typer.Option(
        metavar="speakers|wav:PATH|null",
        help="Where the audio plays. Without a sound device, speakers fall back to a WAV file"
        " in the current directory, which is never overwritten without --force.",
    ),
]
InterruptOption = Annotated[
    float | None,
    typer.Option(
        metavar="SECONDS",
        callback=_seconds,
        help="Barge in once the listener has heard this many seconds.",
    ),
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        dir_okay=False,
        help="Write the report here as JSON, the same shape for every command: an object"
        ' with "version" and "items" (one report per item).',
    ),
]
PlotOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        dir_okay=False,
        help="Draw the timeline here (PNG; needs the plot extra).",
    ),
]
FastOption = Annotated[
    bool,
    typer.Option(
        "--fast", help="Run on a virtual clock, as fast as possible (wav and null outputs only)."
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Let the speakers' fallback WAV file replace an existing one."),
]


@app.command(cls=_Command)
def say(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What the agent says.")],
    voice: VoiceOption = VoiceName.auto,
    out: OutOption = "speakers",
    interrupt_at: InterruptOption = None,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
    force: ForceOption = False,
) -> None:
    """Speak TEXT with an offline voice, streamed through the engine like a model's audio."""
    if not text.strip():
        raise typer.BadParameter("there is nothing to say", param_hint="'TEXT'")
    output = _checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(FALLBACK_WAV), force=force
    )
    console = _Console()
    spoken_voice = _load_voice(console, voice)

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = voice_pieces(spoken_voice, text, in_thread=not fast)
        item = await _play_item(
            console, playout, pieces, "item_1", spoken_voice.sample_rate, interrupt_at
        )
        return [item]

    spoken = _run(script, output, console=console, fast=fast)
    _write_outputs(spoken, report=report, plot=plot, console=console)


@app.command(cls=_Command)
def play(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE",
            help="A recording: WAV (16/24/32-bit, float, 8-bit), FLAC, OGG, AIFF..., any rate,"
            " mono or stereo.",
        ),
    ],
    text: Annotated[
        str, typer.Option(metavar="TEXT", help="The transcript of the recording.")
    ] = "",
    out: OutOption = "speakers",
    interrupt_at: InterruptOption = None,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
    force: ForceOption = False,
) -> None:
    """Play a recorded answer (any rate; the engine resamples), its captions estimated."""
    output = _checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(FALLBACK_WAV), force=force
    )
    audio, rate, channels = read_audio(file)
    console = _Console()

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = file_pieces(audio, text)
        item = await _play_item(console, playout, pieces, "item_1", rate, interrupt_at, channels)
        return [item]

    spoken = _run(script, output, console=console, fast=fast)
    _write_outputs(spoken, report=report, plot=plot, console=console)


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


@app.command(cls=_Command)
def demo(
    voice: VoiceOption = VoiceName.auto,
    out: OutOption = "speakers",
    interrupt_at: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            callback=_seconds,
            help="Seconds of the second answer heard before the barge-in.",
        ),
    ] = 2.5,
    report: ReportOption = None,
    plot: PlotOption = None,
    fast: FastOption = False,
    force: ForceOption = False,
) -> None:
    """A two-turn conversation: one answer plays to the end, the next is cut by a barge-in."""
    output = _checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(DEMO_FALLBACK_WAV), force=force
    )
    console = _Console()
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

    spoken = _run(script, output, console=console, fast=fast)
    _write_outputs(spoken, report=report, plot=plot, console=console)


FALLBACK_WAV = "agent-playout.wav"
DEMO_FALLBACK_WAV = "demo.wav"
"""Where ``say``/``play`` and ``demo`` write their audio when there are no speakers."""


def _checked_output(
    out: str,
    *,
    fast: bool,
    report: Path | None,
    plot: Path | None,
    fallback: Path,
    force: bool,
) -> Output:
    """Validate the options that depend on each other, and settle where the audio goes,
    before anything is loaded: speakers, or the fallback file when there are none."""
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
        _error("--plot needs matplotlib: pip install 'agent-playout[plot]'")
    if output.kind == "speakers":
        reason = _no_speakers_reason()
        if reason is not None:
            return _fallback(reason, fallback, force=force)
        return Output("speakers", fallback, force)
    return output


def _fallback(reason: str, path: Path, *, force: bool) -> Output:
    """The WAV file that stands in for missing speakers; an existing one is replaced only
    with ``--force``, so a second run never silently loses the first one's audio."""
    replacing = path.exists()
    if replacing and not force:
        _error(
            f"no speakers ({reason}), and {path} already exists: pass --force to overwrite"
            " it, or choose a file with --out wav:PATH"
        )
    action = "overwriting" if replacing else "writing the audio to"
    Console(stderr=True).print(
        f"[yellow]no speakers:[/] {escape(reason)}; {action} {escape(str(path))} instead",
        soft_wrap=True,
    )
    return Output("wav", path)


def _error(message: str) -> NoReturn:
    """Say what is wrong on stderr, and exit 1."""
    Console(stderr=True).print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def _load_voice(console: Console, name: VoiceName) -> Voice:
    """Load and warm up the voice (its first synthesis pays one-time setup costs, which a
    model server would have paid long before the first answer)."""
    try:
        with console.status(f"loading the offline voice ({name.value})…"):
            try:
                voice = load_voice(name.value)
            except VoiceUnavailableError as error:
                _error(str(error))
            for _ in voice.synthesize("Ready."):
                pass
    except KeyboardInterrupt:
        _interrupted()
    console.print(
        f"voice: {voice.name} ({voice.sample_rate} Hz, played at {REALTIME_SAMPLE_RATE} Hz)",
        highlight=False,
    )
    return voice


def _interrupted() -> NoReturn:
    """Ctrl-C: one line on stderr, and the exit code a shell gives a process SIGINT ended."""
    Console(stderr=True).print("agent-playout: interrupted", markup=False, highlight=False)
    raise typer.Exit(INTERRUPTED_EXIT)


def read_audio(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """The file's samples as interleaved int16, its rate and channel count.

    Any format libsndfile reads (WAV of any sample type, FLAC, OGG, AIFF...), through
    ``soundfile``; float audio is clipped to full scale. A usage error (exit 2) when the
    file is not audio, or holds none.
    """
    try:
        import soundfile
    except ImportError:
        _error("play needs soundfile (the 'cli' extra): pip install 'agent-playout[cli]'")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise typer.BadParameter(
            f"{path} is not an audio file this can read: {error}", param_hint="'FILE'"
        ) from None
    if data.size == 0:
        raise typer.BadParameter(f"{path} holds no audio", param_hint="'FILE'")
    scaled = np.clip(np.round(data * 32768.0), -32768, 32767).astype(np.int16)
    return scaled.reshape(-1), int(rate), int(data.shape[1])


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


class _Console(Console):
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


def _run(
    script: Callable[[AgentPlayout], Awaitable[T]],
    output: Output,
    *,
    console: _Console,
    fast: bool,
) -> T:
    """Run ``script`` against the output, on a virtual clock when ``fast``.

    Ctrl-C and a closed stdout both stop the run the same way: the main task is
    cancelled, so the playout and the sink close (a WAV file keeps a valid header);
    then the command exits with one line on stderr (Ctrl-C) or silently (closed stdout).
    """
    clock: Clock = VirtualClock() if fast else MonotonicClock()

    async def run_script() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def stop() -> None:
            loop.call_soon_threadsafe(task.cancel)

        console.stop_run_on_broken_pipe(stop)
        with _open_sink(output, clock, console) as sink:
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
        _interrupted()
    except asyncio.CancelledError:
        if console.broken_pipe:
            raise typer.Exit(BROKEN_PIPE_EXIT) from None
        raise
    finally:
        console.stop_run_on_broken_pipe(None)


@contextlib.contextmanager
def _open_sink(
    output: Output, clock: Clock, console: Console
) -> Iterator[NullSink | WavSink | DeviceSink]:
    """The output's sink. Speakers that fail to open here, though the probe found them,
    fall back to the command's WAV file like missing ones."""
    if output.kind == "null":
        yield NullSink(REALTIME_SAMPLE_RATE, clock=clock)
        return
    if output.kind == "speakers":
        assert output.path is not None
        try:
            device = DeviceSink(REALTIME_SAMPLE_RATE, 1)
        except NoOutputDeviceError as error:
            output = _fallback(str(error), output.path, force=output.force)
        else:
            with contextlib.closing(device):
                yield device
            return
    assert output.path is not None
    with WavSink(output.path, REALTIME_SAMPLE_RATE, clock=clock) as wav:
        yield wav
    console.print(
        f"wrote {output.path}: {wav.frames_written} samples at {REALTIME_SAMPLE_RATE} Hz",
        markup=False,
        highlight=False,
    )


def _no_speakers_reason() -> str | None:
    """Why the speakers cannot play here, or None when there is an output device."""
    try:
        importlib.import_module("sounddevice")
    except ImportError:
        return "sounddevice is not installed (pip install 'agent-playout[device]')"
    except OSError:
        return "the PortAudio library is missing (apt-get install libportaudio2)"
    if not output_device_available():
        return "no sound output device was found (no sound card or sound server)"
    return None


def report_document(spoken: Sequence[Spoken]) -> dict[str, Any]:
    """What ``--report`` writes, the same shape for every command:
    ``{"version": <agent-playout's version>, "items": [one report object per item]}``."""
    return {"version": __version__, "items": [item.report.to_dict() for item in spoken]}


def _write_outputs(
    spoken: Sequence[Spoken],
    *,
    report: Path | None,
    plot: Path | None,
    console: Console,
) -> None:
    """The JSON report and the plot."""
    if report is not None:
        document = json.dumps(report_document(spoken), indent=2, ensure_ascii=False)
        report.write_text(document + "\n")
        console.print(f"wrote {report}", markup=False, highlight=False)
    if plot is not None:
        from .plot import plot_timeline

        plot_timeline(plot, [(item.report, item.audio) for item in spoken])
        console.print(f"wrote {plot}", markup=False, highlight=False)
