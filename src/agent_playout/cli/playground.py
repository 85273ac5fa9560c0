"""The ``agent-playout playground`` command: serves the playground page (``playground``
package, extra ``[playground]``) with the offline voice until Ctrl-C or SIGTERM.

Each tab is a session of its own. On a stop every tab's socket is closed, which cuts the
item it plays and closes its peer connection; then the command exits 0 after SIGTERM, 130
after Ctrl-C, like ``phone``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ..tts import Voice
from .exits import fail, interrupted
from .realtime_options import check_realtime_url, dialect_for, parse_headers, shown_url
from .service import LOOPBACK, ConsoleLog, Stop, bind_error, check_bindable
from .session import RunConsole, warm_voice

if TYPE_CHECKING:
    from ..playground.realtime import RealtimeTarget

PLAYGROUND_PACKAGES = ("aiohttp", "aiortc")
PlaygroundHostOption = Annotated[
    str,
    typer.Option(
        metavar="HOST",
        help="The address to listen on. The page has no login: keep it on loopback unless"
        " you mean anyone who reaches HOST to use it.",
    ),
]
PlaygroundRealtimeOption = Annotated[
    str | None,
    typer.Option(
        "--realtime",
        metavar="URL",
        help="Give each tab a connection of its own to the realtime model at this ws:// or"
        " wss:// URL: Speak asks it for a response (the text is that response's"
        " instructions), instead of the offline voice speaking the text.",
    ),
]
PLAYGROUND_EPILOG = (
    "Open the URL it prints in a browser: type or pick a response, press Speak, and"
    " Interrupt (or the space bar) to cut it. Runs until SIGINT or SIGTERM: exit 0 after"
    " SIGTERM, 130 after Ctrl-C, 1 if the port is in use, 2 for bad arguments."
)


def serve(
    *,
    voice_name: str,
    host: str,
    port: int,
    realtime: str | None = None,
    headers: Sequence[str] = (),
    instructions: str | None = None,
) -> None:
    """The ``playground`` command: check the options, the extra and the port, load the
    voice (or settle the realtime model's target), serve."""
    if not host.strip():
        raise typer.BadParameter("must name an address, such as 127.0.0.1", param_hint="'--host'")
    if realtime is None and (headers or instructions is not None):
        named = "'--header'" if headers else "'--instructions'"
        raise typer.BadParameter("goes with --realtime URL", param_hint=named)
    if realtime is not None:
        check_realtime_url(realtime, "'--realtime'")
    parsed = parse_headers(headers, "'--header'")
    packages = PLAYGROUND_PACKAGES + (("websockets",) if realtime is not None else ())
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        extra = "playground,realtime" if realtime is not None else "playground"
        fail(
            f"the playground needs {' and '.join(missing)} (the '{extra}' extra):"
            f" pip install 'agent-playout[{extra}]'"
        )
    check_bindable(host, port)
    console = RunConsole()
    target = None
    voice = None
    if realtime is not None:
        from ..playground.realtime import RealtimeTarget

        target = RealtimeTarget(realtime, tuple(parsed), instructions, dialect_for(parsed))
    else:
        voice = warm_voice(console, voice_name)
    try:
        stop = asyncio.run(_serve(voice, target, host, port, console))
    except KeyboardInterrupt:
        interrupted()
    stop.exit(None)


async def _serve(
    voice: Voice | None,
    target: RealtimeTarget | None,
    host: str,
    port: int,
    console: RunConsole,
) -> Stop:
    """Serve until stopped; on the way out every session is closed (bounded, logged)."""
    from ..playground import PlaygroundServer

    stop = Stop()
    console.stop_run_on_broken_pipe(stop.on_broken_pipe)
    try:
        with ConsoleLog(console).installed():
            server = PlaygroundServer(voice, host=host, port=port, realtime=target)
            try:
                await server.start()
            except OSError as error:
                fail(bind_error(host, port, error))
            try:
                if host != LOOPBACK:
                    console.print(
                        f"warning: listening on {host}: anyone who reaches it may use the page",
                        markup=False,
                        highlight=False,
                    )
                if target is not None:
                    console.print(
                        f"each tab talks to the realtime model at {shown_url(target.url)}",
                        markup=False,
                        highlight=False,
                    )
                console.print(
                    f"playground: open {server.url} in a browser (Ctrl-C or SIGTERM stops)",
                    markup=False,
                    highlight=False,
                )
                await stop.event.wait()
                console.print(
                    f"stopping ({stop.cause}): closing {len(server.sessions)} session(s)",
                    markup=False,
                    highlight=False,
                )
            finally:
                await server.aclose()
            console.print("stopped", markup=False, highlight=False)
    finally:
        stop.restore_signals()
        console.stop_run_on_broken_pipe(None)
    return stop
