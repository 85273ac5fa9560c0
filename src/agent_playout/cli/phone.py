"""The ``agent-playout phone`` command: answers Twilio Media Streams calls with the offline voice,
or, with ``--realtime URL``, bridges each call to a realtime model (``phone_realtime``).

Every call hears the same turns, one after another, each played through its own
``AgentPlayout`` into the call's ``PhoneSink``. The texts are synthesized once at start (they
are the same for every call), so a call costs no synthesis; their audio is still streamed in
20 ms frames as a model streams it. ``--interrupt-at`` cuts a turn that many seconds after its
``play()``, as a barge-in would, and the next turn starts at once. Each turn's report is one
line of the ``--report`` JSON Lines file, flushed as soon as the turn ends.

After the last turn the phone has played, the call is hung up (close 1000): the command is an
answering machine, and Twilio goes on to the TwiML after ``<Connect><Stream>``. SIGINT or
SIGTERM stops the server: no new calls, each live turn is interrupted where the caller is (so
its report says what they heard), reported and hung up; then the command exits 0 after
SIGTERM, 130 after Ctrl-C like the other commands.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol
from urllib.parse import urlsplit

import typer

from .exits import fail, interrupted
from .output import writable
from .phone_calls import Answerer, prepare
from .phone_realtime import RealtimeAnswerer
from .realtime_options import check_realtime_url, parse_headers
from .service import (
    LOOPBACK,
    ConsoleLog,
    ReportFile,
    Stop,
    bind_error,
    check_bindable,
)
from .session import RunConsole, warm_voice

if TYPE_CHECKING:
    from ..sinks.twilio import PhoneCall

PHONE_EXTRA = "pip install 'agent-playout[phone]'"
PHONE_PACKAGES = ("websockets", "twilio")
AUTH_TOKEN_VARIABLE = "TWILIO_AUTH_TOKEN"
SayOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="TEXT",
        help="What the agent says in one turn; give it once per turn, in order.",
    ),
]
RealtimeOption = Annotated[
    str | None,
    typer.Option(
        "--realtime",
        metavar="URL",
        help="Bridge each call to the realtime model at this ws:// or wss:// URL (one"
        " connection per call) instead of speaking --say turns; OpenAI's is"
        " wss://api.openai.com/v1/realtime?model=gpt-realtime.",
    ),
]
TurnCutOption = Annotated[
    list[float] | None,
    typer.Option(
        metavar="SECONDS",
        help="Cut a turn this many seconds after its play(), as a barge-in; the n-th one"
        " cuts the n-th turn, and the next turn starts at once.",
    ),
]
JsonLinesReportOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        dir_okay=False,
        help="Append each turn's report to this file as one JSON line, written as soon as"
        " the turn ends: the report's fields (audio_samples at 24 kHz, interrupted,"
        " heard_text...) plus call_sid, stream_sid and round_trip_ms. With --realtime, one"
        " line per item the model spoke: item_id, audio_samples, audio_end_ms, interrupted,"
        " heard_text and the truncation sent.",
    ),
]
HostOption = Annotated[
    str | None,
    typer.Option(
        metavar="HOST",
        help=f"The address to listen on; {LOOPBACK} unless given. Without"
        f" {AUTH_TOKEN_VARIABLE}, only this option makes the server listen beyond loopback.",
    ),
]
MaxCallsOption = Annotated[
    int,
    typer.Option(metavar="N", min=1, help="Calls at once; beyond them a call is refused."),
]
PublicUrlOption = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="The wss:// URL Twilio dials, which X-Twilio-Signature signs (a path in it is"
        " the base of the request's); without it, wss:// and the request's Host header.",
    ),
]
PHONE_EPILOG = (
    "With --realtime, the caller's audio goes up to the model and the model's down to the"
    " phone, both G.711 mu-law; when the model hears the caller start, the phone gets"
    " Twilio's clear and the model the truncation the phone confirmed."
    f" With {AUTH_TOKEN_VARIABLE} set, a connection without a valid X-Twilio-Signature is"
    " refused (HTTP 403). Runs until SIGINT or SIGTERM, then ends each live call: exit 0"
    " after SIGTERM, 130 after Ctrl-C, 1 if the port is in use or the report cannot be"
    " written, 2 for bad arguments."
)


@dataclass(frozen=True)
class Listener:
    """Where the server listens and who may connect, settled from the options."""

    host: str
    port: int
    auth_token: str | None
    public_url: str | None
    max_calls: int
    said_at_start: tuple[str, ...]
    """The start lines on who may connect (none of the server's own warning's)."""


def check_options(
    *,
    say: Sequence[str],
    interrupt_at: Sequence[float],
    report: Path | None,
    host: str | None,
    port: int,
    max_calls: int,
    public_url: str | None,
    realtime: str | None = None,
    headers: Sequence[str] = (),
    instructions: str | None = None,
) -> Listener:
    """Refuse bad combinations (exit 2, naming the option) before anything is loaded."""
    if realtime is None and (headers or instructions is not None):
        named = "'--header'" if headers else "'--instructions'"
        raise typer.BadParameter("goes with --realtime URL", param_hint=named)
    if realtime is not None:
        check_realtime_url(realtime, "'--realtime'")
        if say or interrupt_at:
            given = "--say" if say else "--interrupt-at"
            raise typer.BadParameter(
                f"the model speaks on a bridged call: give --realtime or {given}, not both",
                param_hint=f"'--realtime' / '{given}'",
            )
    elif not say:
        raise typer.BadParameter(
            "give at least one turn to speak, or --realtime URL", param_hint="'--say'"
        )
    for text in say:
        if not text.strip():
            raise typer.BadParameter("a turn has nothing to say", param_hint="'--say'")
    if len(interrupt_at) > len(say):
        raise typer.BadParameter(
            f"{len(interrupt_at)} cuts for {len(say)} turns: give at most one per --say",
            param_hint="'--interrupt-at'",
        )
    for seconds in interrupt_at:
        if not seconds >= 0:
            raise typer.BadParameter(
                f"must be 0 or more seconds, got {seconds}", param_hint="'--interrupt-at'"
            )
    if report is not None:
        writable(report, "'--report'")
    if public_url is not None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("wss", "ws") or not parts.hostname or parts.query:
            raise typer.BadParameter(
                f"{public_url!r} is not wss://HOST or wss://HOST/BASE (ws:// also works)",
                param_hint="'--public-url'",
            )
    token = os.environ.get(AUTH_TOKEN_VARIABLE) or None
    said: list[str] = []
    if token is not None:
        signed = public_url or "wss://<Host header><path>"
        said.append(f"every connection must carry a valid X-Twilio-Signature (for {signed})")
    elif host is None:
        said.append(
            f"{AUTH_TOKEN_VARIABLE} is not set, so connections are not authenticated and the"
            " server listens on loopback only (--host to listen elsewhere)"
        )
    elif _on_loopback(host):  # beyond loopback the server warns of it itself
        said.append(f"{AUTH_TOKEN_VARIABLE} is not set: anyone who reaches {host} may connect")
    if token is None and public_url is not None:
        said.append(
            f"warning: --public-url has no effect without {AUTH_TOKEN_VARIABLE}:"
            " no X-Twilio-Signature is checked"
        )
    return Listener(host or LOOPBACK, port, token, public_url, max_calls, tuple(said))


def _on_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(listener: Listener) -> None:
    """Fail now (exit 1) if the port cannot be bound, rather than after the voice has loaded
    and the turns are spoken."""
    check_bindable(listener.host, listener.port)


class CallAnswerer(Protocol):
    """What answers the calls: the turns (``Answerer``) or a realtime model's bridge."""

    def log(self, line: str) -> None: ...

    async def answer(self, call: PhoneCall) -> None: ...

    def stop(self) -> int: ...

    async def wait_idle(self) -> None: ...


async def _serve(
    listener: Listener,
    console: RunConsole,
    answerer_for: Callable[[Callable[[OSError], None]], CallAnswerer],
) -> Stop:
    """Answer calls until stopped; then end the live ones and return what stopped it.
    ``answerer_for`` makes the answerer, given where it reports a report it cannot write."""
    from ..sinks.twilio import CallEndedError, serve_phone

    stop = Stop()
    console.stop_run_on_broken_pipe(stop.on_broken_pipe)
    answerer = answerer_for(stop.on_report_error)
    server = serve_phone(
        answerer.answer,
        host=listener.host,
        port=listener.port,
        auth_token=listener.auth_token,
        public_url=listener.public_url,
        max_calls=listener.max_calls,
    )
    try:
        with ConsoleLog(console, (CallEndedError,)).installed():
            try:
                await server.start()
            except OSError as error:
                fail(bind_error(listener.host, listener.port, error))
            try:
                for line in listener.said_at_start:
                    answerer.log(line)
                answerer.log(
                    f"listening on {server.url} (up to {listener.max_calls} calls at once;"
                    " Ctrl-C or SIGTERM stops)"
                )
                await stop.event.wait()
                live = answerer.stop()
                answerer.log(f"stopping ({stop.cause}): no new calls; ending {live} live call(s)")
                await answerer.wait_idle()
            finally:
                await server.aclose()
            answerer.log("stopped")
    finally:
        stop.restore_signals()
        console.stop_run_on_broken_pipe(None)
    return stop


def answer_calls(
    *,
    voice_name: str,
    say: Sequence[str],
    interrupt_at: Sequence[float],
    report: Path | None,
    host: str | None,
    port: int,
    max_calls: int,
    public_url: str | None,
    realtime: str | None = None,
    headers: Sequence[str] = (),
    instructions: str | None = None,
) -> None:
    """The ``phone`` command: check, then either load the voice and speak the turns once, or
    bridge each call to the realtime model; then serve."""
    listener = check_options(
        say=say,
        interrupt_at=interrupt_at,
        report=report,
        host=host,
        port=port,
        max_calls=max_calls,
        public_url=public_url,
        realtime=realtime,
        headers=headers,
        instructions=instructions,
    )
    parsed_headers = parse_headers(headers, "'--header'")
    missing = [name for name in PHONE_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"the phone command needs {' and '.join(missing)} (the 'phone' extra): {PHONE_EXTRA}")
    check_port(listener)
    console = RunConsole()
    report_file = None if report is None else ReportFile(report)
    answerer_for: Callable[[Callable[[OSError], None]], CallAnswerer]
    try:
        if realtime is not None:
            answerer_for = functools.partial(
                RealtimeAnswerer, realtime, parsed_headers, instructions, console, report_file
            )
        else:
            voice = warm_voice(console, voice_name)
            turns = asyncio.run(prepare(voice, say, interrupt_at))
            answerer_for = functools.partial(
                Answerer, turns, voice.sample_rate, console, report_file
            )
        stop = asyncio.run(_serve(listener, console, answerer_for))
    except KeyboardInterrupt:
        interrupted()
    stop.exit(report_file)
