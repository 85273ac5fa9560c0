"""How the command ends when it cannot go on: one line on stderr and a shell's exit code."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report a process SIGINT ended."""
BROKEN_PIPE_EXIT = 141
"""Exit code when stdout's reader goes away (``| head``): 128 + SIGPIPE, what a shell
reports for a command that a closed pipe ended, so ``set -o pipefail`` still sees it."""


def fail(message: str) -> NoReturn:
    """Say what is wrong on stderr, and exit 1."""
    Console(stderr=True).print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def interrupted() -> NoReturn:
    """Ctrl-C: one line on stderr, and the exit code a shell gives a process SIGINT ended."""
    Console(stderr=True).print("agent-playout: interrupted", markup=False, highlight=False)
    raise typer.Exit(INTERRUPTED_EXIT)
