"""Restricted decoding and its counts; the Tab. 5 report from a results dict; the judge-absent
path of ``make downstream``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lst_lightning.downstream import run
from lst_lightning.downstream.decode import (
    allowed_ids,
    decode_tasks,
    global_positions,
    patch_rule,
)
from lst_lightning.downstream.judge import JudgeUnavailable
from lst_lightning.downstream.tasks import SpeechText, task_documents
from lst_lightning.model import BaselineConfig, LSTConfig, build_model
from lst_lightning.model.config import TransformerConfig


def _tiny(kind: str, vocab: int):
    torch.manual_seed(0)
    t = TransformerConfig(n_layers=1, d_model=32, n_heads=2)
    if kind == "lst":
        return build_model(LSTConfig(vocab_size=vocab, encoder=t, global_model=t, decoder=t))
    return build_model(BaselineConfig(vocab_size=vocab, transformer=t))


@pytest.mark.parametrize("kind", ["lst", "baseline"])
@pytest.mark.parametrize("task", ["asr", "tts"])
def test_decoding_stays_in_the_answer_modality_and_counts_steps(
    kind: str, task: str, mls_utterances, mls_space
) -> None:
    items = [SpeechText.from_aligned(u) for u in mls_utterances[:2]]
    docs = task_documents(task, items, mls_space)
    model = _tiny(kind, mls_space.vocab_size)
    patch = 4 if kind == "lst" else None
    out = decode_tasks(model, docs, mls_space, patch, max_factor=0.5, max_extra=1)
    allowed = allowed_ids(mls_space, task)
    rule = patch_rule(mls_space, patch)
    for doc, d in zip(docs, out, strict=True):
        assert all(allowed[t] for t in d.ids)
        assert len(d.ids) <= d.limit and (d.stopped == (d.ids[-1] == mls_space.eos_id))
        prompt = [int(t) for t in doc.prompt]
        assert d.context_positions == global_positions(prompt + list(d.ids), rule)
        assert d.decoder_steps == len(d.ids)
        if kind == "baseline":
            assert d.global_steps == len(d.ids) and d.context_positions == len(prompt) + len(d.ids)
        elif task == "tts":  # units share patches of 4: far fewer global steps than tokens
            assert d.global_steps <= len(d.ids) // 4 + 1


@pytest.mark.parametrize("kind", ["lst", "baseline"])
@pytest.mark.parametrize("task", ["asr", "tts"])
def test_batched_decoding_gives_the_one_at_a_time_answers(
    kind: str, task: str, mls_utterances, mls_space
) -> None:
    items = [SpeechText.from_aligned(u) for u in mls_utterances[:3]]
    docs = task_documents(task, items, mls_space)
    model = _tiny(kind, mls_space.vocab_size)
    patch = 4 if kind == "lst" else None
    one = decode_tasks(model, docs, mls_space, patch, max_factor=0.3, max_extra=2)
    many = decode_tasks(model, docs, mls_space, patch, max_factor=0.3, max_extra=2, batch_size=3)
    assert many == one


def _results() -> dict:
    def asr(wer: float, steps: float, ctx: float, stop: float) -> dict:
        row = {"wer": wer, "cer": wer / 2, "global_steps": steps, "context_positions": ctx}
        return {"step": 150, "sets": {"valid": {**row, "not_stopped": stop}}}

    def tts(cer: float, steps: float) -> dict:
        row = {"unit_ctc": {"wer": 90.0, "cer": cer}, "global_steps": steps}
        return {
            "step": 150,
            "sets": {"valid": {**row, "context_positions": 60.0, "not_stopped": 1.0}},
        }

    return {
        "meta": {
            "date": "2026-12-02 02:00 UTC",
            "machine": "x86_64",
            "load_start": "1.0",
            "load_end": "2.0",
            "wall_minutes": 12.5,
            "command": "make downstream",
            "recipe": "tiny.",
            "whisper": "skipped",
            "notes": ["Whisper judge skipped: absent"],
        },
        "toplines": {"valid": {"unit_ctc": {"wer": 91.0, "cer": 48.8}}},
        "runs": {
            "lst_asr": asr(50.0, 20.0, 40.0, 0.0),
            "baseline_asr": asr(140.0, 40.0, 160.0, 0.5),
            "lst_tts": tts(70.0, 25.0),
            "baseline_tts": tts(80.0, 100.0),
        },
    }


def test_report_writes_the_table_from_a_results_dict(tmp_path: Path) -> None:
    doc = tmp_path / "downstream.md"
    doc.write_text("# Downstream\n\nkept text\n")
    run.write_report(_results(), doc)
    text = doc.read_text()
    assert "kept text" in text and text.count(run.START) == 1
    assert "| LST static | ASR | 150 | 50.0 / 25.0 | 20.0 (0.50x) | 40.0 (0.25x) | 0% |" in text
    assert (
        "| Base SpeechLLM | ASR | 150 | 140.0 / 70.0 | 40.0 (1.00x) | 160.0 (1.00x) | 50% |" in text
    )
    assert "| topline (ground-truth units) | TTS | - | 48.8 / 91.0 | n/a |" in text
    assert "| LST static | TTS | 150 | 70.0 / 90.0 | n/a | 25.0 (0.25x) |" in text
    assert "LST curriculum" not in text  # no run, no row
    assert "- Whisper judge skipped: absent" in text
    run.write_report(_results(), doc)  # rewriting replaces the section
    assert doc.read_text() == text


def test_without_the_judge_the_tts_scores_skip_whisper_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mls_utterances, capsys
) -> None:
    from lst_lightning.downstream import judge as judge_module
    from lst_lightning.downstream.unit_ctc import UnitCTCConfig, train_unit_ctc

    recognizer = train_unit_ctc(
        [(u.units, u.transcript) for u in mls_utterances[:2]], UnitCTCConfig(dim=16), epochs=1
    )
    recognizer.save(tmp_path / "ctc.pt")

    def absent(*args, **kwargs):
        raise JudgeUnavailable("the TTS judge is unavailable: faster-whisper is not installed")

    monkeypatch.setattr(judge_module, "load_judge", absent)
    judges = run.load_judges(tmp_path, tmp_path / "ctc.pt", 1, tmp_path / "d.md", quick=True)
    assert judges.whisper is None and judges.vocoder is None
    assert "faster-whisper is not installed" in judges.whisper_note
    assert "Whisper judge skipped" in capsys.readouterr().out
    items = [SpeechText.from_aligned(u) for u in mls_utterances[:2]]
    top = run.toplines({"valid": items}, judges)
    assert set(top["valid"]) == {"unit_ctc"}
