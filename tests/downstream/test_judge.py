"""The Whisper judge: skips with a clear message when absent, checks its weights, transcribes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lst_lightning.data.corpora.tts import espeak_available
from lst_lightning.downstream import judge as judge_module
from lst_lightning.downstream.judge import JudgeUnavailable, judge_status, load_judge
from lst_lightning.downstream.metrics import wer

AVAILABLE, DETAIL = judge_status()
needs_judge = pytest.mark.skipif(not AVAILABLE, reason=f"the Whisper judge is absent: {DETAIL}")


def test_absent_judge_says_how_to_install(monkeypatch) -> None:
    real = importlib.util.find_spec

    def hide(name, *args):
        return (
            None if name in ("faster_whisper", judge_module.MODELS_PACKAGE) else real(name, *args)
        )

    monkeypatch.setattr(importlib.util, "find_spec", hide)
    ok, why = judge_status()
    assert not ok and "faster-whisper is not installed" in why and "[judge]" in why
    with pytest.raises(JudgeUnavailable, match="the TTS judge is unavailable: faster-whisper"):
        load_judge()


def test_wrong_weights_are_refused(monkeypatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "faster_whisper" else real(name, *a),
    )
    (tmp_path / "model.bin").write_bytes(b"not whisper")
    ok, why = judge_status(tmp_path)
    assert not ok and "has sha256" in why and judge_module.MODEL_SHA256 in why
    ok, why = judge_status(tmp_path / "nowhere")
    assert not ok and "no Whisper weights" in why


@needs_judge
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (make setup-system)")
def test_judge_transcribes_clear_speech() -> None:
    from lst_lightning.data.corpora.tts import synthesize_audio

    text = "she was very happy to see her sister again"
    wav = synthesize_audio(text, "en-us+m3", 160)
    judge = load_judge(beam_size=1)
    assert wer([judge.transcribe(wav)], [text]) <= 0.25
