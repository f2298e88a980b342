"""Warm start from a tiny random transformers Llama saved by the test (TWIST/SpiritLM style), and
from a kit checkpoint or exported folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lst_lightning.hub.llama import llama_to_stack
from lst_lightning.hub.warm_start import warm_start
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.model import LSTConfig, build_model

from .conftest import tiny_baseline, tiny_lst


def save_llama(folder: Path, stack, vocab_size: int, tokenizer: Path | None) -> Path:
    """A random LlamaForCausalLM with the stack's sizes (and the kit's text tokenizer, if given)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=stack.d_model,
        intermediate_size=stack.hidden,
        num_hidden_layers=stack.n_layers,
        num_attention_heads=stack.n_heads,
        num_key_value_heads=stack.n_heads,
        rms_norm_eps=stack.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": stack.rope_theta},
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms are ones at init: make them tell apart too
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(folder)
    if tokenizer is not None:
        shutil.copy(tokenizer, folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="module")
def space(hub_corpus: Path):
    return SpeechTextDataModule(corpus={"data_dir": str(hub_corpus)}).token_space


@pytest.mark.parametrize("kind", ["lst", "baseline"])
def test_llama_initialises_the_global_stack_and_text_rows(
    kind: str, space, hub_corpus: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    network = (tiny_lst if kind == "lst" else tiny_baseline)()
    network = type(network)(**{**network.__dict__, "vocab_size": space.vocab_size})
    stack = network.global_model if kind == "lst" else network.transformer
    folder = save_llama(
        tmp_path / "llama", stack, space.text_vocab_size, hub_corpus / "tokenizer.model"
    )
    weights = load_file(folder / "model.safetensors")
    net = build_model(network)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    report = warm_start(net, network, folder, space)
    own = net.state_dict()
    prefix = "global_model." if kind == "lst" else ""
    expected = llama_to_stack(weights, stack.n_layers, "llama")
    for name, value in expected.items():
        assert torch.equal(own[f"{prefix}stack.{name}"], value), name
    assert torch.equal(own[f"{prefix}norm.weight"], weights["model.norm.weight"])
    if kind == "baseline":  # the same tokenizer: every text row comes from the Llama
        text = space.text_vocab_size
        assert torch.equal(own["embed.weight"][:text], weights["model.embed_tokens.weight"][:text])
        assert torch.equal(own["head.weight"][:text], weights["lm_head.weight"][:text])
        # specials and units keep their fresh initialisation
        assert torch.equal(own["embed.weight"][text:], fresh["embed.weight"][text:])
        assert report.text_rows["embed.weight"] == (text, text)
    else:  # the encoder is narrower than the Llama: LST's local models stay fresh
        assert torch.equal(own["encoder.embed.weight"], fresh["encoder.embed.weight"])
        assert torch.equal(own["decoder.head.weight"], fresh["decoder.head.weight"])
    assert "tensors copied" in report.summary()


def test_a_llama_of_another_size_is_refused_naming_the_options(space, tmp_path: Path) -> None:
    network = tiny_baseline()
    network = type(network)(**{**network.__dict__, "vocab_size": space.vocab_size})
    wrong = type(network.transformer)(n_layers=3, d_model=64, n_heads=2)
    folder = save_llama(tmp_path / "llama", wrong, 300, None)
    with pytest.raises(
        ValueError, match=r"network.transformer.n_layers=2 but the Llama has num_hidden_layers=3"
    ):
        warm_start(build_model(network), network, folder, space)


def test_init_from_through_the_cli(hub_corpus: Path, tmp_path: Path) -> None:
    """`--model.init_from` sets the initial global weights to the Llama's (a vanishing learning
    rate keeps the one training step from moving them)."""
    from safetensors.torch import load_file

    from lst_lightning.cli import main
    from lst_lightning.hub.checkpoint import KitCheckpoint
    from lst_lightning.model import TransformerConfig

    root = Path(__file__).resolve().parents[2]
    stack = TransformerConfig(n_layers=1, d_model=64, n_heads=2)
    folder = save_llama(tmp_path / "llama", stack, 400, hub_corpus / "tokenizer.model")
    main(
        [
            "fit",
            "--config",
            str(root / "experiments" / "tiny_lst.yaml"),
            f"--data.corpus.data_dir={hub_corpus}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            "--model.network.global_model.n_layers=1",
            "--model.network.global_model.d_model=64",
            "--model.network.global_model.n_heads=2",
            "--model.optim.warmup_steps=0",
            "--model.optim.lr=1e-12",
            "--data.loader.batch_size=2",
            "--data.packing.max_tokens=128",
            "--data.packing.max_patches=64",
            f"--model.init_from={folder}",
        ]
    )
    ckpt = KitCheckpoint.load(tmp_path / "tiny_lst" / "run" / "checkpoints" / "last.ckpt")
    assert isinstance(ckpt.network, LSTConfig)
    expected = llama_to_stack(load_file(folder / "model.safetensors"), 1, "llama")
    for name, value in expected.items():
        assert torch.allclose(ckpt.weights[f"global_model.stack.{name}"], value, atol=1e-6), name


def test_warm_start_from_a_kit_checkpoint_and_its_export(
    hub_corpus: Path, space, tmp_path: Path, make_checkpoint
) -> None:
    """An ASR/TTS fine-tune can start from a pretrained kit model: every weight is copied."""
    from lst_lightning.hub.checkpoint import KitCheckpoint
    from lst_lightning.hub.pretrained import export_checkpoint

    ckpt = make_checkpoint(tmp_path / "pre.ckpt", hub_corpus, tiny_lst())
    source = KitCheckpoint.load(ckpt)
    for init in (ckpt, export_checkpoint(ckpt, tmp_path / "hf")):
        net = build_model(source.network)
        warm_start(net, source.network, init, space)
        for name, value in net.state_dict().items():
            assert torch.equal(value, source.weights[name]), f"{init}: {name}"
