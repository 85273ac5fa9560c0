"""``conforms`` answers as ``isinstance`` does against a runtime-checkable Protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agent_playout.core.protocols import conforms


@runtime_checkable
class _Speaker(Protocol):
    @property
    def rate(self) -> int: ...

    def speak(self) -> None: ...


class _Full:
    rate = 16000

    def speak(self) -> None:
        """Defines every member on the class."""


class _PerInstance:
    """Gets ``rate`` only when asked to, per instance: the class alone does not conform."""

    def __init__(self, with_rate: bool) -> None:
        if with_rate:
            self.rate = 8000

    def speak(self) -> None:
        """Always defined."""


def test_conforms_agrees_with_isinstance_for_whole_classes_and_per_instance_members() -> None:
    candidates: list[object] = [
        _Full(),
        _Full(),
        _PerInstance(True),
        _PerInstance(False),
        _PerInstance(True),
        object(),
    ]
    for _ in range(2):
        for obj in candidates:
            assert conforms(obj, _Speaker) is isinstance(obj, _Speaker), obj
    assert [conforms(obj, _Speaker) for obj in candidates] == [True, True, True, False, True, False]
