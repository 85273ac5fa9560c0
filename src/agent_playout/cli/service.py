"""What the long-running commands (``phone``, ``realtime``, ``playground``) share: where
they listen, their log on the console, the stop (a signal, a closed stdout, a report that
cannot be written) and the JSON Lines report."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import PlayoutError
from .exits import BROKEN_PIPE_EXIT, fail, interrupted

LOOPBACK = "127.0.0.1"
"""Where the long-running commands listen unless told otherwise."""

PortOption = Annotated[
    int,
    typer.Option(
        metavar="PORT",
        min=0,
        max=65535,
        help="The TCP port to listen on; 0 picks a free one (the start line says which).",
    ),
]


class ReportFile:
    """The ``--report`` JSON Lines file: one turn's report a line. Each line is appended
    with the file opened for it, so a reader can tail it and a rotated or deleted file is
    created again rather than written unseen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("a", encoding="utf-8"):
                pass
        except OSError as error:
            fail(f"cannot write the report to {path}: {error.strerror or error}")

    def append(self, record: dict[str, Any]) -> None:
        """One line; an ``OSError`` is the caller's to report (the file system refused it)."""
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


class ConsoleLog(logging.Handler):
    """The package's log records (the server's, the calls', the engine's) as lines of the
    command's log: one line each, with a traceback only for an error nobody expected.

    A record whose error is one of ``said_elsewhere`` (an item that the call's end stopped)
    is left out: the turn's own line says so, with the call's sid.
    """

    def __init__(
        self, console: Console, said_elsewhere: tuple[type[BaseException], ...] = ()
    ) -> None:
        super().__init__(logging.INFO)
        self._console = console
        self._said_elsewhere = said_elsewhere

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        named = (arg for arg in record.args or () if isinstance(arg, BaseException))
        if isinstance(error or next(iter(named), None), self._said_elsewhere):
            return
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        self._console.print(
            f"{level}{record.getMessage()}", markup=False, highlight=False, soft_wrap=True
        )
        if record.exc_info and not isinstance(error, PlayoutError):
            trace = logging.Formatter().formatException(record.exc_info)
            self._console.print(trace, markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route the ``agent_playout`` logger here (not to the root's handlers) meanwhile."""
        package = logging.getLogger("agent_playout")
        level, propagate = package.level, package.propagate
        package.addHandler(self)
        package.setLevel(logging.INFO)
        package.propagate = False
        try:
            yield
        finally:
            package.removeHandler(self)
            package.setLevel(level)
            package.propagate = propagate


class Stop:
    """What ended the server: the first SIGINT or SIGTERM, a closed stdout, or a report
    that could not be written. A second signal gets its default action (Ctrl-C twice
    exits at once)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: signal.Signals | None = None
        self.report_error: OSError | None = None
        self.broken_pipe = False
        self._loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: signal.Signals) -> None:
        self.signal = signum
        self.restore_signals()
        self.event.set()

    def on_report_error(self, error: OSError) -> None:
        if self.report_error is None:
            self.report_error = error
        self.event.set()

    def on_broken_pipe(self) -> None:
        self.broken_pipe = True
        self._loop.call_soon_threadsafe(self.event.set)

    def restore_signals(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(signum)

    def exit(self, report: ReportFile | None) -> None:
        """End the command as this stop says: exit 1 if the ``report`` could not be written,
        141 after a closed stdout, 130 after Ctrl-C; return after SIGTERM or a normal end."""
        if self.report_error is not None:
            assert report is not None
            refused = self.report_error
            fail(f"cannot write the report to {report.path}: {refused.strerror or refused}")
        if self.broken_pipe:
            raise typer.Exit(BROKEN_PIPE_EXIT)
        if self.signal == signal.SIGINT:
            interrupted()

    @property
    def cause(self) -> str:
        if self.signal is not None:
            return self.signal.name
        if self.report_error is not None:
            return "the report could not be written"
        return "stdout was closed"


def check_bindable(host: str, port: int) -> None:
    """Fail now (exit 1) if ``host:port`` cannot be bound, rather than after the voice has
    loaded: bind each address the server would, with the same ``SO_REUSEADDR`` (and
    ``IPV6_V6ONLY``) as asyncio's ``create_server``, then let go."""
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, protocol, _, address in addresses:
            try:
                probe = socket.socket(family, kind, protocol)
            except OSError:
                continue  # a family this host lacks, which asyncio skips too
            with probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as error:
        fail(bind_error(host, port, error))


def bind_error(host: str, port: int, error: OSError) -> str:
    """One line for a failed bind; asyncio's own message repeats the address and errno."""
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is in use; choose another --port"
    if isinstance(error, socket.gaierror) or not error.errno:
        return f"cannot listen on {where}: {error.strerror or error}"
    return f"cannot listen on {where}: {os.strerror(error.errno)}"
