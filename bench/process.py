"""This process's memory, from the standard library alone (the Pipecat venv imports it too)."""

from __future__ import annotations

import os
import resource


def rss_mb() -> float:
    """Resident memory now, in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
