"""Skip, naming the target that runs them, where livekit-agents 1.x is not installed; a
livekit-agents that is installed but fails to import is an error, not a skip."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import pytest

WHERE = "run `make test-livekit-agents`"


def require_livekit_agents() -> ModuleType:
    """``livekit.agents`` if 1.x is installed; else skips the calling module or test."""
    try:
        found = importlib.util.find_spec("livekit.agents") is not None
    except ModuleNotFoundError:  # not even livekit (rtc)
        found = False
    if not found:
        pytest.skip(
            f"needs livekit-agents 1.x (the [livekit-agents] extra): {WHERE}",
            allow_module_level=True,
        )
    agents = importlib.import_module("livekit.agents")
    if agents.__version__.startswith("0."):
        pytest.skip(
            f"needs livekit-agents 1.x, found {agents.__version__}: {WHERE}",
            allow_module_level=True,
        )
    return agents
