"""The ``agent-playout`` entry point: runs the commands, or says which extra to install.

The commands themselves (``app`` and the modules it uses) need typer and rich, which only
the ``[cli]`` extra brings, so this module imports nothing beyond the standard library up
front.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

CLI_EXTRA = "pip install 'agent-playout[cli]'"


def missing_cli_packages() -> list[str]:
    """The packages of the ``[cli]`` extra that cannot be imported here."""
    return [name for name in ("typer", "rich") if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``agent-playout`` with ``argv`` (default: the process's); returns the exit code."""
    missing = missing_cli_packages()
    if missing:
        print(
            f"agent-playout needs {' and '.join(missing)} (the 'cli' extra): {CLI_EXTRA}",
            file=sys.stderr,
        )
        return 1
    from .app import app

    try:
        app(args=list(sys.argv[1:] if argv is None else argv), prog_name="agent-playout")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
