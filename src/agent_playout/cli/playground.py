"""The ``agent-playout playground`` command: serves the playground page (``playground``
package, extra ``[playground]``) with the offline voice until Ctrl-C or SIGTERM.

Each tab is a session of its own. On a stop every tab's socket is closed, which cuts the
item it plays and closes its peer connection; then the command exits 0 after SIGTERM, 130
after Ctrl-C, like ``phone``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Annotated

import typer

from ..tts import Voice
from .exits import fail, interrupted
from .service import ConsoleLog, Stop, bind_error, check_bindable
from .session import RunConsole, warm_voice

PLAYGROUND_EXTRA = "pip install 'agent-playout[playground]'"
PLAYGROUND_PACKAGES = ("aiohttp", "aiortc")
LOOPBACK = "127.0.0.1"

PlaygroundPortOption = Annotated[
    int,
    typer.Option(
        metavar="PORT",
        min=0,
        max=65535,
        help="The TCP port to serve the page on; 0 picks a free one (the start line says which).",
    ),
]
PlaygroundHostOption = Annotated[
    str,
    typer.Option(
        metavar="HOST",
        help="The address to listen on. The page has no login: keep it on loopback unless"
        " you mean anyone who reaches HOST to use it.",
    ),
]
PLAYGROUND_EPILOG = (
    "Open the URL it prints in a browser: type or pick a response, press Speak, and"
    " Interrupt (or the space bar) to cut it. Runs until SIGINT or SIGTERM: exit 0 after"
    " SIGTERM, 130 after Ctrl-C, 1 if the port is in use, 2 for bad arguments."
)


def serve(*, voice_name: str, host: str, port: int) -> None:
    """The ``playground`` command: check the extra and the port, load the voice, serve."""
    if not host.strip():
        raise typer.BadParameter("must name an address, such as 127.0.0.1", param_hint="'--host'")
    missing = [name for name in PLAYGROUND_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            f"the playground needs {' and '.join(missing)} (the 'playground' extra):"
            f" {PLAYGROUND_EXTRA}"
        )
    check_bindable(host, port)
    console = RunConsole()
    voice = warm_voice(console, voice_name)
    try:
        stop = asyncio.run(_serve(voice, host, port, console))
    except KeyboardInterrupt:
        interrupted()
    stop.exit(None)


async def _serve(voice: Voice, host: str, port: int, console: RunConsole) -> Stop:
    """Serve until stopped; on the way out every session is closed (bounded, logged)."""
    from ..playground import PlaygroundServer

    stop = Stop()
    console.stop_run_on_broken_pipe(stop.on_broken_pipe)
    try:
        with ConsoleLog(console).installed():
            server = PlaygroundServer(voice, host=host, port=port)
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
