"""``python -m lst_lightning.sample``: prompts, readable spans, and a run on a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.vocab import TokenSpace
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.model import LSTConfig, TransformerConfig
from lst_lightning.sample import build_prompt, describe, final_mode, main


@pytest.fixture(scope="module")
def space(tiny_corpus: Path) -> TokenSpace:
    return SpeechTextDataModule(corpus={"data_dir": str(tiny_corpus)}).token_space


def test_prompts_end_open_in_the_asked_modality(space: TokenSpace) -> None:
    ids = build_prompt(space, "the cat", [3, 4, 5], "text")
    assert ids[0] == space.bos_id and space.eos_id not in ids
    assert ids[-1] == space.text_id and final_mode(space, ids) == space.text_id
    assert describe(space, ids) == ["<bos>", "[text] the cat", "[speech] 3 units: 3 4 5"]
    free = build_prompt(space, "the cat", [], None)
    assert final_mode(space, free) == space.text_id and free[-1] != space.text_id
    assert build_prompt(space, None, [7], "speech")[-2:] == [space.unit_offset + 7, space.speech_id]


def test_describe_reads_a_continuation_inside_its_span(space: TokenSpace) -> None:
    units = [space.unit_offset + 9, space.unit_offset + 2]
    assert describe(space, units, space.speech_id) == ["[speech] 2 units: 9 2"]
    assert describe(space, [*units, space.eos_id]) == [
        f"<id {units[0]}>",
        f"<id {units[1]}>",
        "<eos>",
    ]


def test_sample_on_a_checkpoint(tiny_corpus: Path, tmp_path: Path, capsys, make_checkpoint) -> None:
    small = dict(d_model=32, n_heads=2)
    network = LSTConfig(
        encoder=TransformerConfig(n_layers=1, window=16, **small),
        global_model=TransformerConfig(n_layers=1, d_model=48, n_heads=2),
        decoder=TransformerConfig(n_layers=1, window=16, **small),
    )
    ckpt = make_checkpoint(tmp_path / "last.ckpt", tiny_corpus, network)
    args = [
        "--ckpt",
        str(ckpt),
        "--text",
        "the old man",
        "--then",
        "speech",
        "--max-new-tokens",
        "12",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[text] the old man" in out and "continuation:" in out
    assert "global steps for" in out
    assert main(["--ckpt", str(ckpt)]) == 2
    assert "give a prompt" in capsys.readouterr().err
