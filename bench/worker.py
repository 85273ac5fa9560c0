"""Run one workload for one engine and print its result as one JSON line.

``python -m bench.worker ENGINE WORKLOAD '{"param": value}'`` under the engine's interpreter.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
from typing import Any

from . import engines
from .workloads import WORKLOADS


def run(engine_name: str, workload: str, params: dict[str, Any]) -> dict[str, Any]:
    """The workload's result, with the engine's package versions."""
    engine = engines.load(engine_name)
    function = WORKLOADS[workload]
    if inspect.iscoroutinefunction(function):
        result = asyncio.run(function(engine, **params))
    else:
        result = function(engine, **params)
    return {"engine": engine_name, "versions": engine.versions(), "params": params, **result}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.CRITICAL)
    engine_name, workload = argv[0], argv[1]
    params = json.loads(argv[2]) if len(argv) > 2 else {}
    print(json.dumps(run(engine_name, workload, params)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
