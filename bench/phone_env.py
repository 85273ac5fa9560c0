"""The phone benchmark's other venvs, built outside the repository on first use.

- Pipecat 1.14.0 with its WebSocket extra and uvicorn (its telephony examples serve FastAPI
  with uvicorn), for the side-by-side run (``bench.phone_pipecat``).
- A scratch venv with this package, ``uvloop`` and ``orjson``, to see whether they earn their
  keep; neither is a dependency of the package.

Both live under ``$AGENT_PLAYOUT_BENCH_VENVS`` (default ``~/.cache/agent-playout-bench``).
Run as ``python -m bench.phone_env`` to build them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIPECAT_REQUIREMENTS = ("pipecat-ai[websocket]==1.14.0", "uvicorn==0.54.0", "numpy")
SCRATCH_REQUIREMENTS = ("uvloop", "orjson")


def venvs_home() -> Path:
    """Where the benchmark's extra venvs live (never inside the repository)."""
    default = Path.home() / ".cache" / "agent-playout-bench"
    return Path(os.environ.get("AGENT_PLAYOUT_BENCH_VENVS", default))


def _ensure(name: str, requirements: tuple[str, ...], check: str, *, quiet: bool) -> Path:
    home = venvs_home() / name
    python = home / "bin" / "python"
    marker = home / ".installed"
    wanted = "\n".join(requirements)
    if marker.exists() and marker.read_text().strip() == wanted:
        return python
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    subprocess.run([*pip, *requirements], check=True)
    subprocess.run([str(python), "-c", check], check=True)
    marker.write_text(wanted + "\n")
    return python


def ensure_pipecat_env(*, quiet: bool = True) -> Path:
    """Pipecat's venv; its interpreter."""
    check = "import pipecat.serializers.twilio, pipecat.transports.websocket.fastapi, uvicorn"
    return _ensure("pipecat", PIPECAT_REQUIREMENTS, check, quiet=quiet)


def ensure_scratch_env(*, quiet: bool = True) -> Path:
    """This package (editable, with [phone]) plus uvloop and orjson; its interpreter."""
    requirements = ("-e", f"{ROOT}[phone]", *SCRATCH_REQUIREMENTS)
    check = "import agent_playout.sinks.twilio, uvloop, orjson"
    return _ensure("scratch", requirements, check, quiet=quiet)


if __name__ == "__main__":
    quiet = "-v" not in sys.argv
    print(ensure_pipecat_env(quiet=quiet))
    print(ensure_scratch_env(quiet=quiet))
