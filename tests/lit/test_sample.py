"""``python -m lst_lightning.sample``: prompts, readable spans, and a run on a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.vocab import TokenSpace
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.model import LSTConfig, TransformerConfig
from lst_lightning.sample import build_prompt, describe, final_mode, main, write_audio


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


def test_sample_writes_audio_of_the_generated_units(
    tiny_corpus: Path, tmp_path: Path, capsys, make_checkpoint
) -> None:
    import soundfile
    import torch

    from lst_lightning.downstream.vocoder import N_FFT, GriffinLimVocoder

    small = dict(d_model=32, n_heads=2)
    network = LSTConfig(
        encoder=TransformerConfig(n_layers=1, window=16, **small),
        global_model=TransformerConfig(n_layers=1, d_model=48, n_heads=2),
        decoder=TransformerConfig(n_layers=1, window=16, **small),
    )
    ckpt = make_checkpoint(tmp_path / "last.ckpt", tiny_corpus, network)
    space = SpeechTextDataModule(corpus={"data_dir": str(tiny_corpus)}).token_space
    table = torch.randn(space.num_units, N_FFT // 2 + 1, generator=torch.Generator().manual_seed(0))
    GriffinLimVocoder(table).save(tmp_path / "vocoder.pt")
    args = ["--ckpt", str(ckpt), "--text", "the old man", "--then", "speech"]
    args += ["--max-new-tokens", "12", "--temperature", "1.0", "--seed", "3"]
    wav = tmp_path / "x.wav"
    code = main([*args, "--out", str(wav), "--vocoder", str(tmp_path / "vocoder.pt")])
    out = capsys.readouterr()
    assert code == 0, out.err
    units = int(out.out.split("wrote ")[1].split(" units")[0])
    data, rate = soundfile.read(wav)
    assert rate == 16000 and units > 0 and len(data) == units * 640  # frames / 25 s
    # the units written are the continuation's speech tokens, in order
    ids = [space.text_id, space.unit_offset + 4, space.unit_offset + 9, space.eos_id]
    vocoder = str(tmp_path / "vocoder.pt")
    assert write_audio(space, ids, str(tmp_path / "y.wav"), vocoder, tiny_corpus) == 0
    assert len(soundfile.read(tmp_path / "y.wav")[0]) == 2 * 640
    assert write_audio(space, ids[:1], str(tmp_path / "z.wav"), vocoder, tiny_corpus) == 1
    assert "no speech units" in capsys.readouterr().err


def test_sample_draws_restricted_continuations_in_one_batch(
    tiny_corpus: Path, tmp_path: Path, capsys, make_checkpoint
) -> None:
    small = dict(d_model=32, n_heads=2)
    network = LSTConfig(
        encoder=TransformerConfig(n_layers=1, window=16, **small),
        global_model=TransformerConfig(n_layers=1, d_model=48, n_heads=2),
        decoder=TransformerConfig(n_layers=1, window=16, **small),
    )
    ckpt = make_checkpoint(tmp_path / "last.ckpt", tiny_corpus, network)
    args = ["--ckpt", str(ckpt), "--text", "the old man", "--then", "speech", "--restrict"]
    args += ["--max-new-tokens", "10", "--temperature", "2.0", "--top-k", "50", "--top-p", "0.95"]
    assert main([*args, "--num-samples", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "continuation 3/3:" in out and out.count("new tokens (") == 3
    answers = out.split("continuation 1/3:")[1]
    assert "[text]" not in answers and "[speech]" in answers
    assert main([*args, "--num-samples", "3", "--seed", "1"]) == 0
    assert capsys.readouterr().out == out  # seeded: the same three samples
    assert main([*args[:-2], "--num-samples", "2", "--temperature", "0"]) == 2
    assert "needs --temperature > 0" in capsys.readouterr().err
