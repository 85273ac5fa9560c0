from __future__ import annotations

import pytest

from agent_playout import EventEmitter


def test_listeners_receive_only_the_arguments_they_take() -> None:
    emitter: EventEmitter[str] = EventEmitter()
    seen: list[object] = []
    emitter.on("stopped", lambda: seen.append("none"))
    emitter.on("stopped", lambda interrupted: seen.append(interrupted))
    emitter.on("stopped", lambda *args: seen.append(args))
    emitter.emit("stopped", True)
    assert seen == ["none", True, (True,)]


def test_decorator_and_once_and_off() -> None:
    emitter: EventEmitter[str] = EventEmitter()
    seen: list[str] = []

    @emitter.on("e")
    def always() -> None:
        seen.append("always")

    emitter.once("e", lambda: seen.append("once"))
    emitter.emit("e")
    emitter.emit("e")
    emitter.off("e", always)
    emitter.emit("e")
    assert seen == ["always", "once", "always"]


def test_a_failing_listener_does_not_starve_the_others_and_its_error_surfaces() -> None:
    emitter: EventEmitter[str] = EventEmitter()
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("listener broke")

    emitter.on("e", broken)
    emitter.on("e", lambda: seen.append("second"))
    with pytest.raises(RuntimeError, match="listener broke"):
        emitter.emit("e")
    assert seen == ["second"]


def test_non_callable_listener_is_refused() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        EventEmitter[str]().on("e", 42)  # type: ignore[arg-type]
