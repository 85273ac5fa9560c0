from __future__ import annotations

import numpy as np
import pytest

from agent_playout.core.resample import FormatConverter, map_channels


@pytest.mark.parametrize(("in_rate", "out_rate"), [(22050, 48000), (24000, 8000), (16000, 44100)])
def test_a_long_stream_converts_to_exactly_its_length_at_the_new_rate(
    in_rate: int, out_rate: int
) -> None:
    converter = FormatConverter(in_rate, 1, out_rate, 1)
    seconds = 60
    step = in_rate // 50
    rng = np.random.default_rng(3)
    chunk = (rng.standard_normal(step) * 3000).astype(np.int16)
    total = sum(converter.process(chunk).size for _ in range(seconds * 50))
    total += converter.flush().size
    assert abs(total - seconds * out_rate) <= 1


def test_a_tone_keeps_its_pitch_through_resampling() -> None:
    converter = FormatConverter(22050, 1, 48000, 1)
    t = np.arange(22050) / 22050
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    out = np.concatenate([converter.process(tone), converter.flush()]).astype(float)
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * 48000 / out.size
    assert abs(peak_hz - 440) < 2


def test_mono_is_copied_to_both_channels_and_stereo_mixed_down() -> None:
    mono = np.array([100, -200], dtype=np.int16)
    assert map_channels(mono, 1, 2).tolist() == [100, 100, -200, -200]
    stereo = np.array([100, 300, -200, -400], dtype=np.int16)
    assert map_channels(stereo, 2, 1).tolist() == [200, -300]


def test_unmappable_layouts_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cannot map 3 channels to 2"):
        FormatConverter(24000, 3, 24000, 2)


def test_same_format_passes_audio_through_untouched() -> None:
    converter = FormatConverter(24000, 1, 24000, 1)
    samples = np.arange(10, dtype=np.int16)
    assert converter.process(samples) is samples
    assert converter.flush().size == 0
