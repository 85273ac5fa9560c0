"""Build the peer's virtual environment: LiveKit Agents 0.12.21 (the last 0.x) in bench/.peer-venv.

Run it as a script (``python bench/peer_env.py``) or call ``ensure_peer_env()``; it does
nothing when the venv already holds the pinned version.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

PEER_REQUIREMENT = "livekit-agents[codecs]==0.12.21"
PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
_MARKER = PEER_VENV / ".installed"


def peer_python() -> Path:
    """The peer venv's interpreter."""
    return PEER_VENV / "bin" / "python"


def ensure_peer_env(*, quiet: bool = True) -> Path:
    """Create the peer venv and install the peer into it if needed; return its interpreter."""
    if _MARKER.exists() and _MARKER.read_text().strip() == PEER_REQUIREMENT:
        return peer_python()
    if not peer_python().exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(PEER_VENV)
    pip = [str(peer_python()), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    subprocess.run([*pip, PEER_REQUIREMENT, "numpy"], check=True)
    subprocess.run(
        [str(peer_python()), "-c", "import livekit.agents.multimodal.agent_playout"], check=True
    )
    _MARKER.write_text(PEER_REQUIREMENT + "\n")
    return peer_python()


if __name__ == "__main__":
    print(ensure_peer_env(quiet="-v" not in sys.argv))
