"""Evaluation sets and the topline report, with a stand-in judge (the real one is optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lst_lightning.data.records import AlignedUtterance, AlignedWord, write_aligned_jsonl
from lst_lightning.data.speech.audio import encode_wav
from lst_lightning.downstream.evalsets import (
    EvalSet,
    EvalUtterance,
    embedded_heldout_voice,
    load_eval_set,
    spread,
)
from lst_lightning.downstream.tasks import SpeechText
from lst_lightning.downstream.topline import END, START, format_section, measure_set, write_section


class EchoJudge:
    """Hears the reference when given the original audio, nothing when given vocoded audio."""

    def __init__(self, originals: dict[int, str]) -> None:
        self.originals = originals

    def transcribe_all(self, waveforms):
        return [self.originals.get(len(w), "") for w in waveforms]


def test_spread_is_even_and_deterministic() -> None:
    assert spread(10, None) == list(range(10)) and spread(3, 5) == [0, 1, 2]
    assert spread(100, 5) == [0, 25, 50, 74, 99]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        spread(5, 0)


def test_heldout_voice_set_reads_units_and_audio(tmp_path: Path) -> None:
    from datasets import Dataset

    utts = [
        AlignedUtterance("a/1", (AlignedWord("[SIL]", (1,)), AlignedWord("Hello,", (2, 3)))),
        AlignedUtterance("a/2", (AlignedWord("there", (4, 5, 6)),)),
    ]
    write_aligned_jsonl(tmp_path / "heldout_voice.jsonl", utts)
    rows = {"file_id": [], "audio": []}
    for u in utts:
        rows["file_id"].append(u.file_id)
        rows["audio"].append(
            {"bytes": encode_wav(np.zeros(640 * u.num_frames, np.float32)), "path": None}
        )
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "heldout_voice_audio"))
    eval_set = embedded_heldout_voice(tmp_path)
    assert [i.text for i in eval_set.items] == ["Hello,", "there"]
    assert eval_set.items[0].units == (1, 2, 3) and len(eval_set.utterances[1].waveform) == 3 * 640
    assert len(load_eval_set("heldout_voice", tmp_path, limit=1).utterances) == 1
    with pytest.raises(ValueError, match="evaluation set must be one of"):
        load_eval_set("nope", tmp_path)


def test_measure_and_report(tmp_path: Path) -> None:
    items = [SpeechText("x/1", "the cat sat", (1, 2, 3)), SpeechText("x/2", "a dog", (4, 5))]
    utterances = tuple(
        EvalUtterance(i, np.zeros(1000 + k, np.float32)) for k, i in enumerate(items)
    )
    judge = EchoJudge({1000: "The cat sat.", 1001: "a dog"})
    vocoders = {"codebook": lambda u: np.zeros(640 * len(u)), "fitted": lambda u: np.zeros(5)}
    result = measure_set(EvalSet("toy", utterances, "made up"), judge, vocoders)
    c = result["conditions"]
    assert c["original"]["wer"] == 0.0 and c["codebook"]["wer"] == 1.0 and c["fitted"]["cer"] == 1.0
    assert c["original"]["transcripts"][0] == {
        "file_id": "x/1",
        "reference": "the cat sat",
        "judge": "The cat sat.",
    }
    meta = dict(
        date="d",
        machine="m",
        load="1.0",
        wall_minutes=1.0,
        command="c",
        beam_size=5,
        fit_utterances=3,
        fitted_source="fitted on 9 STFT frames",
    )
    section = format_section([result], meta)
    assert "| toy | 2 |" in section and "| 0.0 | 0.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in section
    doc = tmp_path / "downstream.md"
    doc.write_text("# Title\n\nkept text\n")
    write_section(doc, section)
    write_section(doc, section.replace("toy", "toy2"))  # replaced, not appended twice
    text = doc.read_text()
    assert (
        "kept text" in text and text.count(START) == 1 and text.count(END) == 1 and "toy2" in text
    )
