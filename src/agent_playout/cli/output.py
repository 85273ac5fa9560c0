"""Where a command's audio goes: speakers, a WAV file or nowhere, settled before it plays.

Without speakers the audio falls back to the command's WAV file, which is never replaced
without ``--force``; speakers that fail to open at the start fall back the same way.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..clock import Clock
from ..core.units import REALTIME_SAMPLE_RATE
from ..sinks.device import DeviceSink, NoOutputDeviceError, output_device_available
from ..sinks.paced import NullSink
from ..sinks.wav import WavSink
from .exits import fail

FALLBACK_WAV = "agent-playout.wav"
DEMO_FALLBACK_WAV = "demo.wav"
"""Where ``say``/``play`` and ``demo`` write their audio when there are no speakers."""


@dataclass(frozen=True)
class Output:
    """Where the audio goes: ``speakers``, ``null``, or ``wav`` with its ``path``. For
    speakers, ``path`` is the fallback file should the device fail to open, and ``force``
    whether that may replace an existing file."""

    kind: str
    path: Path | None = None
    force: bool = False


def parse_output(value: str) -> Output:
    """``speakers``, ``null`` or ``wav:PATH``; anything else is a usage error (exit 2)."""
    if value in ("speakers", "null"):
        return Output(value)
    if value.startswith("wav:") and value[4:].strip():
        return Output("wav", writable(Path(value[4:]), "'--out'"))
    raise typer.BadParameter(
        f"{value!r} is not an output; use speakers, null or wav:PATH", param_hint="'--out'"
    )


def writable(path: Path, hint: str) -> Path:
    """``path`` if its folder exists, so a run does not fail only once it has played."""
    if not path.parent.is_dir():
        raise typer.BadParameter(f"folder {str(path.parent)!r} does not exist", param_hint=hint)
    return path


def checked_output(
    out: str,
    *,
    fast: bool,
    report: Path | None,
    plot: Path | None,
    fallback: Path,
    force: bool,
) -> Output:
    """Validate the options that depend on each other, and settle where the audio goes,
    before anything is loaded: speakers, or the fallback file when there are none."""
    output = parse_output(out)
    for path, hint in ((report, "'--report'"), (plot, "'--plot'")):
        if path is not None:
            writable(path, hint)
    if fast and output.kind == "speakers":
        raise typer.BadParameter(
            "--fast runs on a virtual clock, so it needs --out wav:PATH or --out null",
            param_hint="'--fast'",
        )
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        fail("--plot needs matplotlib: pip install 'agent-playout[plot]'")
    if output.kind == "speakers":
        reason = no_speakers_reason()
        if reason is not None:
            return _fallback(reason, fallback, force=force)
        return Output("speakers", fallback, force)
    return output


def no_speakers_reason() -> str | None:
    """Why the speakers cannot play here, or None when there is an output device."""
    try:
        importlib.import_module("sounddevice")
    except ImportError:
        return "sounddevice is not installed (pip install 'agent-playout[device]')"
    except OSError:
        return "the PortAudio library is missing (apt-get install libportaudio2)"
    if not output_device_available():
        return "no sound output device was found (no sound card or sound server)"
    return None


def _fallback(reason: str, path: Path, *, force: bool) -> Output:
    """The WAV file that stands in for missing speakers; an existing one is replaced only
    with ``--force``, so a second run never silently loses the first one's audio."""
    replacing = path.exists()
    if replacing and not force:
        fail(
            f"no speakers ({reason}), and {path} already exists: pass --force to overwrite"
            " it, or choose a file with --out wav:PATH"
        )
    action = "overwriting" if replacing else "writing the audio to"
    Console(stderr=True).print(
        f"[yellow]no speakers:[/] {escape(reason)}; {action} {escape(str(path))} instead",
        soft_wrap=True,
    )
    return Output("wav", path)


@contextlib.contextmanager
def open_sink(
    output: Output, clock: Clock, console: Console
) -> Iterator[NullSink | WavSink | DeviceSink]:
    """The output's sink. Speakers that fail to open here, though the probe found them,
    fall back to the command's WAV file like missing ones."""
    if output.kind == "null":
        yield NullSink(REALTIME_SAMPLE_RATE, clock=clock)
        return
    if output.kind == "speakers":
        assert output.path is not None
        try:
            device = DeviceSink(REALTIME_SAMPLE_RATE, 1)
        except NoOutputDeviceError as error:
            output = _fallback(str(error), output.path, force=output.force)
        else:
            with contextlib.closing(device):
                yield device
            return
    assert output.path is not None
    with WavSink(output.path, REALTIME_SAMPLE_RATE, clock=clock) as wav:
        yield wav
    console.print(
        f"wrote {output.path}: {wav.frames_written} samples at {REALTIME_SAMPLE_RATE} Hz",
        markup=False,
        highlight=False,
    )
