"""The package's shape: its public names, the import paths the README shows, and the layers."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import agent_playout

PACKAGE = Path(agent_playout.__file__).parent

PUBLIC_API = {
    "CLEANUP_TIMEOUT_S",
    "AgentPlayout",
    "AudioByteStream",
    "AudioFrame",
    "AudioSink",
    "Clock",
    "DeleteItem",
    "EventEmitter",
    "HeardWord",
    "ItemState",
    "MonotonicClock",
    "NullSink",
    "PacedSink",
    "PlayoutClosedError",
    "PlayoutError",
    "PlayoutHandle",
    "PlayoutReport",
    "PlayoutStateError",
    "PositionUnconfirmedError",
    "PositionedSink",
    "SettlingSink",
    "ReportWord",
    "TimedText",
    "TranscriptForwarder",
    "TranscriptSegment",
    "TruncateItem",
    "Truncation",
    "VirtualClock",
    "from_character_alignment",
    "from_word_timestamps",
    "truncation_for",
}

FOUNDATIONS = {"errors", "clock", "events"}
"""Top-level modules every layer may use; they use only the core."""

ALLOWED = {
    "core": {"core", "errors"},
    "errors": set(),
    "clock": {"core"},
    "events": set(),
    "transcript": {"core", "transcript", *FOUNDATIONS},
    "tts": {"tts", "core", "errors"},
    "sinks": {"sinks", "core", "transcript", *FOUNDATIONS},
    "engine": {"engine", "core", "transcript", "sinks.base", *FOUNDATIONS},
    "bridges": {"bridges", "engine", "sinks", "core", "transcript", *FOUNDATIONS},
    "playground": {
        "playground",
        "cli",
        "bridges",
        "engine",
        "sinks",
        "core",
        "transcript",
        "tts",
        *FOUNDATIONS,
    },
    "integrations": {"integrations", "sinks", "core", "transcript", *FOUNDATIONS},
}
"""What each layer may import from the package: data flows down, nothing flows back up."""


def test_the_public_api_is_the_same_set_of_names() -> None:
    assert set(agent_playout.__all__) == PUBLIC_API
    assert all(hasattr(agent_playout, name) for name in PUBLIC_API)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("agent_playout.sinks.wav", ["WavSink"]),
        ("agent_playout.sinks.device", ["DeviceSink", "NoOutputDeviceError"]),
        ("agent_playout.sinks.livekit", ["LiveKitSink", "SourceQueueError", "TranscriptPublisher"]),
        ("agent_playout.sinks.livekit_transcript", ["TranscriptPublisher"]),
        (
            "agent_playout.sinks.twilio",
            ["serve_phone", "PhoneCall", "PhoneSink", "CallEndedError", "SimulatedCaller"],
        ),
        ("agent_playout.sinks.twilio", ["DelayedLink", "PhoneServer", "MediaStreamError"]),
        (
            "agent_playout.bridges",
            ["RealtimeBridge", "ItemHeard", "AudioFormat", "session_update", "connect_realtime"],
        ),
        ("agent_playout.bridges", ["SimulatedRealtimeServer", "ScriptedResponse"]),
        ("agent_playout.playground", ["serve_playground", "PlaygroundServer", "Session"]),
        (
            "agent_playout.sinks.webrtc",
            ["WebRtcSink", "ReceiverReporter", "parse_report", "ReportError", "Settlement"],
        ),
        ("agent_playout.sinks.webrtc", ["Delays", "TrackEndedError", "REPORT_CHANNEL_LABEL"]),
        ("agent_playout.clock", ["VirtualClock", "MonotonicClock"]),
        ("agent_playout.tts", ["load_voice", "available_voices"]),
    ],
)
def test_the_import_paths_readers_were_shown_keep_working(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"


def _layer_of(module: str) -> str:
    """The layer of ``module``; ``sinks.base``, which the engine may use, counts as its own."""
    parts = module.split(".")[1:]
    if parts[:2] == ["sinks", "base"]:
        return "sinks.base"
    return parts[0] if parts else ""


def _imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, at any depth of the file."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(relative.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("agent_playout."):
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("agent_playout."))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    files = sorted(PACKAGE.glob(f"{layer}/**/*.py")) or [PACKAGE / f"{layer}.py"]
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {target}"
        for path in files
        for target in _imports(path)
        if _layer_of(target) not in ALLOWED[layer]
        and _layer_of(target).split(".")[0] not in ALLOWED[layer]
    ]
    assert not wrong


def test_the_bridges_names_that_need_websockets_load_on_first_use_and_others_fail() -> None:
    bridges = importlib.import_module("agent_playout.bridges")
    assert set(bridges.__all__) >= {"connect_realtime", "SimulatedRealtimeServer"}
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = bridges.nothing
