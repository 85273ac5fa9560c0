"""Shared helpers: signal frames, streams and a virtual-clock playout."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.abc
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from agent_playout import AgentPlayout, AudioFrame, PlayoutHandle, TranscriptForwarder, VirtualClock

RATE = 24000

REQUIRE_PORTAUDIO = "AGENT_PLAYOUT_REQUIRE_PORTAUDIO"
"""Set to 1 (CI does) to fail, rather than skip, the tests that need a real PortAudio."""
PORTAUDIO_INSTALL = "apt-get install libportaudio2"


def portaudio_missing() -> str | None:
    """Why ``sounddevice`` cannot run here (no package, or no PortAudio library), or None."""
    try:
        importlib.import_module("sounddevice")
    except ImportError as error:
        return f"the [device] extra is not installed ({error}): pip install 'agent-playout[device]'"
    except OSError as error:
        return f"the PortAudio library is missing ({error}): {PORTAUDIO_INSTALL}"
    return None


def require_portaudio() -> ModuleType:
    """``sounddevice`` on a real PortAudio; skips with the reason and the install line when
    it cannot load, or fails when ``AGENT_PLAYOUT_REQUIRE_PORTAUDIO=1``."""
    reason = portaudio_missing()
    if reason is not None:
        if os.environ.get(REQUIRE_PORTAUDIO) == "1":
            pytest.fail(f"{REQUIRE_PORTAUDIO}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return importlib.import_module("sounddevice")


def ramp(samples: int, start: int = 0) -> np.ndarray:
    """Distinct non-zero int16 samples, so any played sample can be traced to its index."""
    values = (np.arange(start, start + samples) % 30000) + 1
    return values.astype(np.int16)


def frames_of(signal: np.ndarray, frame_samples: int, rate: int = RATE) -> list[AudioFrame]:
    return [
        AudioFrame(signal[i : i + frame_samples], rate, 1, signal[i : i + frame_samples].size)
        for i in range(0, signal.size, frame_samples)
    ]


async def stream(items: Iterable[Any], *, delay: float = 0.0) -> AsyncIterator[Any]:
    """An async stream of ``items``; ``delay`` real seconds between them when non-zero."""
    for item in items:
        if delay:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        yield item


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait, polling, for state there is no event for; the deadline only guards a hang."""
    for _ in range(round(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not reached within {timeout} s")


def play_tone(playout: AgentPlayout, item_id: str, seconds: float) -> PlayoutHandle:
    """Play ``seconds`` of a 440 Hz tone at 24 kHz in 20 ms frames, with no transcript."""
    wave = 6000 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * RATE)) / RATE)
    return playout.play(
        item_id=item_id,
        content_index=0,
        transcription_fwd=None,
        text_stream=stream([]),
        audio_stream=stream(frames_of(wave.astype(np.int16), RATE // 50)),
    )


async def failing_stream(items: Iterable[Any], error: Exception) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(0)
        yield item
    raise error


class LiveKitShapedForwarder:
    """A forwarder with only LiveKit 0.12's methods (not a ``TranscriptForwarder``), passing
    each call on to one, and recording the text it is given."""

    def __init__(self, inner: TranscriptForwarder | None = None) -> None:
        self.inner = inner if inner is not None else TranscriptForwarder()
        self.texts: list[object] = []

    @property
    def played_text(self) -> str:
        return self.inner.played_text

    def push_text(self, text: str) -> None:
        self.texts.append(text)
        self.inner.push_text(text)

    def push_audio(self, frame: Any) -> None:
        self.inner.push_audio(frame)

    def mark_text_segment_end(self) -> None:
        self.inner.mark_text_segment_end()

    def mark_audio_segment_end(self) -> None:
        self.inner.mark_audio_segment_end()

    def segment_playout_started(self) -> None:
        self.inner.segment_playout_started()

    def segment_playout_finished(self) -> None:
        self.inner.segment_playout_finished()

    async def aclose(self) -> None:
        await self.inner.aclose()


class SlowClosingForwarder:
    """A forwarder shaped like LiveKit 0.12's ``TTSSegmentsForwarder``: ``aclose()`` waits on
    its own task (here, until ``release`` is set), and only then is ``played_text`` whole."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closing = False
        self.played_text = ""
        self._text = ""

    def push_text(self, text: str) -> None:
        self._text += text

    def push_audio(self, frame: Any) -> None: ...

    def mark_text_segment_end(self) -> None: ...

    def mark_audio_segment_end(self) -> None: ...

    def segment_playout_started(self) -> None: ...

    def segment_playout_finished(self) -> None: ...

    async def aclose(self) -> None:
        self.closing = True
        await self.release.wait()
        self.played_text = self._text


@pytest.fixture(autouse=True)
def quiet_heap(request: pytest.FixtureRequest) -> Iterator[None]:
    """A real-time test measures the component, not the suite's heap: a full collection of
    what the earlier tests left takes 100-150 ms here, and stalls the event loop mid-test (a
    late capture, a fade that misses its tick). So collect first, and freeze what is left."""
    if request.node.get_closest_marker("realtime") is None:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def loop_failures() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop's exception handler is handed during the test (a callback or
    task that raised with nobody to tell), instead of being logged and passed over."""
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: failures.append(context))
    yield failures
    loop.set_exception_handler(None)


class _PortAudioNotFound(importlib.abc.MetaPathFinder):
    """Makes ``import sounddevice`` fail as it does on a machine without libportaudio2."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == "sounddevice":
            raise OSError("PortAudio library not found")


def hide_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import sounddevice`` raises sounddevice's own OSError, as with no PortAudio."""
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_PortAudioNotFound(), *sys.meta_path])


@pytest.fixture
def without_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine as if libportaudio2 were not installed."""
    hide_portaudio(monkeypatch)
