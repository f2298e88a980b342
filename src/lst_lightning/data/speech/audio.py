"""Audio in: read with soundfile (a path or encoded bytes), downmix to mono, resample to 16 kHz.

Everything downstream (unit tokenizers, aligners, the embedded corpus) takes float32 mono numpy at
16 kHz, so this is the one place where files, HF ``Audio`` cells and sample rates are dealt with.
soundfile (libsndfile) reads WAV, FLAC, OGG and MP3 without FFmpeg or torchcodec, which are optional.

A bad record raises :class:`RecordError`, which carries the record's name and a short ``problem``
label; the stage runner counts records by that label when its policy is to skip them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16_000
"""Every waveform the kit passes around is mono float32 at this rate."""


class RecordError(ValueError):
    """One input record is unusable. ``problem`` is a short label used to count skipped records."""

    def __init__(self, record: str, problem: str, detail: str = "") -> None:
        self.record = record
        self.problem = problem
        self.detail = detail
        super().__init__(f"{record}: {problem}" + (f" ({detail})" if detail else ""))


def resample(waveform: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float waveform with torchaudio's band-limited sinc interpolation."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    waveform = np.asarray(waveform, dtype=np.float32)
    if sample_rate == target_rate:
        return waveform
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(waveform)), sample_rate, target_rate)
    return out.numpy().astype(np.float32, copy=False)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a ``[frames, channels]`` array (1-D input is returned as is)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"audio must be [frames] or [frames, channels], got shape {samples.shape}")
    return samples.mean(axis=1, dtype=np.float32)


def read_audio(source: str | Path | bytes, record: str) -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes to (mono float32 samples, native sample rate).

    Raises :class:`RecordError` naming ``record`` for a missing file, undecodable data, no samples
    or non-finite samples.
    """
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise RecordError(record, "missing audio file", str(source))
        handle: object = str(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise RecordError(record, "empty audio", "0 bytes")
        handle = io.BytesIO(bytes(source))
    else:
        raise RecordError(record, "unreadable audio", f"unsupported source {type(source).__name__}")
    try:
        samples, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise RecordError(record, "unreadable audio", str(e).strip() or type(e).__name__) from None
    if samples.shape[0] == 0:
        raise RecordError(record, "empty audio", "no samples")
    mono = to_mono(samples)
    if not np.isfinite(mono).all():
        raise RecordError(record, "unreadable audio", "NaN or infinite samples")
    return mono, int(rate)


def load_audio(
    source: str | Path | bytes,
    record: str,
    expected_rate: int | None = None,
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Read, downmix and resample to ``target_rate`` (16 kHz).

    ``expected_rate``: when the dataset declares a sample rate, a file at another rate is a
    :class:`RecordError` ("sample rate mismatch") rather than being silently resampled, since it
    usually means the metadata and the audio disagree.
    """
    samples, rate = read_audio(source, record)
    if expected_rate is not None and rate != expected_rate:
        raise RecordError(
            record,
            "sample rate mismatch",
            f"file is {rate} Hz, the dataset declares {expected_rate} Hz",
        )
    return resample(samples, rate, target_rate)


def encode_wav(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode mono float audio as 16-bit PCM WAV bytes (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    clipped = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    soundfile.write(buffer, clipped, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
