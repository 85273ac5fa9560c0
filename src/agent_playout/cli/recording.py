"""A recorded answer read from a file, for ``play``: any format libsndfile reads, as int16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import typer

from .exits import fail


def read_audio(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """The file's samples as interleaved int16, its rate and channel count.

    Any format libsndfile reads (WAV of any sample type, FLAC, OGG, AIFF...), through
    ``soundfile``; float audio is clipped to full scale. A usage error (exit 2) when the
    file is not audio, or holds none.
    """
    try:
        import soundfile
    except ImportError:
        fail("play needs soundfile (the 'cli' extra): pip install 'agent-playout[cli]'")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise typer.BadParameter(
            f"{path} is not an audio file this can read: {error}", param_hint="'FILE'"
        ) from None
    if data.size == 0:
        raise typer.BadParameter(f"{path} holds no audio", param_hint="'FILE'")
    scaled = np.clip(np.round(data * 32768.0), -32768, 32767).astype(np.int16)
    return scaled.reshape(-1), int(rate), int(data.shape[1])
