"""Audio reading: soundfile decode, downmix, resampling to 16 kHz, clear errors for bad records."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from lst_lightning.data.speech.audio import (
    RecordError,
    encode_wav,
    load_audio,
    read_audio,
    resample,
)


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def test_read_path_and_bytes_downmixes(tmp_path):
    left = np.linspace(-0.5, 0.5, 800, dtype=np.float32)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "x.flac"
    soundfile.write(path, stereo, 16000)
    for source in (path, str(path), path.read_bytes()):
        mono, rate = read_audio(source, "rec")
        assert rate == 16000 and mono.dtype == np.float32
        np.testing.assert_allclose(mono, left / 2, atol=1e-4)


def test_resample_to_16k_keeps_duration_and_pitch():
    rate = 44100
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = load_audio(wav_bytes(tone, rate), "r")
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(spectrum.argmax()) - 1000) <= 1  # 1 Hz bins over one second
    assert resample(tone, rate, rate) is not None and len(resample(out, 16000)) == 16000


def test_bad_records_are_named(tmp_path):
    with pytest.raises(RecordError, match="r1: unreadable audio"):
        read_audio(b"RIFF0000WAVEgarbage" * 10, "r1")
    with pytest.raises(RecordError, match="r2: empty audio"):
        read_audio(b"", "r2")
    with pytest.raises(RecordError, match="r3: empty audio"):
        read_audio(wav_bytes(np.zeros(0, dtype=np.float32), 16000), "r3")
    with pytest.raises(RecordError, match="r4: missing audio file"):
        read_audio(tmp_path / "nope.wav", "r4")
    with pytest.raises(RecordError, match="r5: sample rate mismatch .*8000 Hz.*16000 Hz") as e:
        load_audio(wav_bytes(np.zeros(80, dtype=np.float32), 8000), "r5", expected_rate=16000)
    assert e.value.problem == "sample rate mismatch" and e.value.record == "r5"


def test_encode_wav_roundtrip():
    w = (0.25 * np.sin(np.arange(1600) / 5)).astype(np.float32)
    back, rate = read_audio(encode_wav(w), "x")
    assert rate == 16000
    np.testing.assert_allclose(back, w, atol=1 / 32767)
