"""The ``agent-playout`` commands (typer): ``say``, ``play``, ``demo``, ``phone``, ``realtime``
and ``playground``.

Each one streams an answer through ``AgentPlayout`` into the chosen output (``output``),
shows its captions, prints what was heard and the realtime API event it implies
(``session``), and optionally writes the JSON report and the timeline plot (``artifacts``).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from ..engine.playout import AgentPlayout
from .artifacts import write_artifacts
from .model_stream import Spoken, file_pieces, voice_pieces
from .output import DEMO_FALLBACK_WAV, FALLBACK_WAV, checked_output
from .phone import (
    PHONE_EPILOG,
    HostOption,
    JsonLinesReportOption,
    MaxCallsOption,
    PublicUrlOption,
    RealtimeOption,
    SayOption,
    TurnCutOption,
    answer_calls,
)
from .playground import (
    PLAYGROUND_EPILOG,
    PlaygroundHostOption,
    PlaygroundRealtimeOption,
    serve,
)
from .realtime import (
    REALTIME_EPILOG,
    FalseInterruptionOption,
    RealtimeReportOption,
    talk_to_model,
)
from .realtime_options import HeaderOption, InstructionsOption, RealtimeUrlOption
from .recording import read_audio
from .service import PortOption
from .session import RunConsole, play_item, run, warm_voice


class _PlainArgument(TyperArgument):
    """An argument shown by its name only: no type tag, no braces in the usage line."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.metavar or (self.name or "").upper()]


def _untagged(option: TyperOption | None) -> TyperOption | None:
    """The help option without the ``<bool>`` tag typer shows for a flag without metavar."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(TyperCommand):
    """A command whose help shows its parameters by name, without typer's type tags.

    Flags declare ``metavar=""``, which typer honours, and the help option gets the same
    through click's ``get_help_option``. For arguments typer 0.29 has no such setting (an
    argument's type column ignores its metavar, a required one is wrapped in braces in
    the usage line, and a parameter's class cannot be chosen), so each argument becomes
    a ``_PlainArgument`` once, as the command is built.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _untagged(super().get_help_option(ctx))


class _Group(TyperGroup):
    """The command group, its help option untagged like its commands'."""

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _untagged(super().get_help_option(ctx))


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
            metavar="",
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
        "--fast",
        metavar="",
        help="Run on a virtual clock, as fast as possible (wav and null outputs only).",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        metavar="",
        help="Let the speakers' fallback WAV file replace an existing one.",
    ),
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
    output = checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(FALLBACK_WAV), force=force
    )
    console = RunConsole()
    spoken_voice = warm_voice(console, voice.value)

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = voice_pieces(spoken_voice, text, in_thread=not fast)
        item = await play_item(
            console, playout, pieces, "item_1", spoken_voice.sample_rate, interrupt_at
        )
        return [item]

    spoken = run(script, output, console=console, fast=fast)
    write_artifacts(spoken, report=report, plot=plot, console=console)


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
    output = checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(FALLBACK_WAV), force=force
    )
    audio, rate, channels = read_audio(file)
    console = RunConsole()

    async def script(playout: AgentPlayout) -> list[Spoken]:
        pieces = file_pieces(audio, text)
        item = await play_item(console, playout, pieces, "item_1", rate, interrupt_at, channels)
        return [item]

    spoken = run(script, output, console=console, fast=fast)
    write_artifacts(spoken, report=report, plot=plot, console=console)


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
    output = checked_output(
        out, fast=fast, report=report, plot=plot, fallback=Path(DEMO_FALLBACK_WAV), force=force
    )
    console = RunConsole()
    spoken_voice = warm_voice(console, voice.value)

    async def script(playout: AgentPlayout) -> list[Spoken]:
        items = []
        for number, (question, answer, barge_in) in enumerate(DEMO_TURNS, start=1):
            console.print(f"[bold]user:[/] {question}", highlight=False)
            pieces = voice_pieces(spoken_voice, answer, in_thread=not fast)
            cut = interrupt_at if barge_in else None
            item = await play_item(
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

    spoken = run(script, output, console=console, fast=fast)
    write_artifacts(spoken, report=report, plot=plot, console=console)


@app.command(cls=_Command, epilog=PHONE_EPILOG)
def phone(
    port: PortOption,
    say: SayOption = None,
    interrupt_at: TurnCutOption = None,
    report: JsonLinesReportOption = None,
    host: HostOption = None,
    max_calls: MaxCallsOption = 100,
    public_url: PublicUrlOption = None,
    voice: VoiceOption = VoiceName.auto,
    realtime: RealtimeOption = None,
    header: HeaderOption = None,
    instructions: InstructionsOption = None,
) -> None:
    """Answer Twilio Media Streams calls at ws://HOST:PORT/, speaking the turns into each,
    or bridging each to a realtime model."""
    answer_calls(
        voice_name=voice.value,
        say=say or [],
        interrupt_at=interrupt_at or [],
        report=report,
        host=host,
        port=port,
        max_calls=max_calls,
        public_url=public_url,
        realtime=realtime,
        headers=header or [],
        instructions=instructions,
    )


@app.command(cls=_Command, epilog=REALTIME_EPILOG)
def realtime(
    url: RealtimeUrlOption,
    header: HeaderOption = None,
    instructions: InstructionsOption = None,
    out: OutOption = "speakers",
    report: RealtimeReportOption = None,
    false_interruption_timeout: FalseInterruptionOption = None,
    force: ForceOption = False,
) -> None:
    """Talk to a realtime model: its answers play with captions, cut to what was heard."""
    talk_to_model(
        url=url,
        header=header,
        instructions=instructions,
        out=out,
        report=report,
        false_interruption_timeout=false_interruption_timeout,
        force=force,
    )


@app.command(cls=_Command, epilog=PLAYGROUND_EPILOG)
def playground(
    port: PortOption = 8080,
    host: PlaygroundHostOption = "127.0.0.1",
    voice: VoiceOption = VoiceName.auto,
    realtime: PlaygroundRealtimeOption = None,
    header: HeaderOption = None,
    instructions: InstructionsOption = None,
) -> None:
    """Serve a page to hear a response over WebRTC, watch its captions follow what the
    browser played, interrupt it, and read what was heard."""
    serve(
        voice_name=voice.value,
        host=host,
        port=port,
        realtime=realtime,
        headers=header or [],
        instructions=instructions,
    )
