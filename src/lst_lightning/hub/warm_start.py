"""Warm start: initialise a kit network from a pretrained model (``--model.init_from PATH``).

Three sources, told apart by what ``PATH`` holds:

- a local Hugging Face **Llama-style folder** (``config.json`` + ``model.safetensors``, for example
  a Llama, TinyLlama or SmolLM checkpoint), as TWIST and SpiritLM start speech LMs from text LMs:
  its layers initialise the **global transformer** of LST (whose inputs are patch vectors, not
  token embeddings) or the whole decoder of a baseline. The stack's sizes, RoPE theta and norm
  epsilon must equal the Llama's (the error names each option to change).
- a **kit checkpoint** (``.ckpt``) or a folder written by ``lst-lightning export``: every weight
  with the same name and shape is copied (an ASR/TTS fine-tune starting from a pretrained kit
  model); a baseline's decoder also initialises an LST's global transformer.

Embedding and output rows: the text-vocabulary rows are copied piece by piece, for every text
piece of the kit's tokenizer that the source's tokenizer also has (``tokenizer.model`` or
``tokenizer.json`` of a Llama folder; the token space of a kit source). With the same tokenizer
every text row is mapped; with another one only the shared pieces are, so train the corpus's
text tokenizer to match the pretrained LM's if the text embedding matters. Specials and speech
units have no pretrained rows: they keep their fresh initialisation (for a kit source of the
same layout they are copied too). LST's token embedding (encoder) and output head (decoder) are
mapped only when their width equals the source's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.vocab import TokenSpace
from ..model import BaselineConfig, LSTConfig
from .checkpoint import KitCheckpoint
from .llama import LlamaShape, llama_to_stack, read_llama_folder


@dataclass
class WarmStartReport:
    """What a warm start initialised."""

    source: str
    kind: str
    """``llama`` or ``kit``."""
    copied: list[str] = field(default_factory=list)
    """Parameters copied whole."""
    text_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Embedding/head parameter -> (text rows mapped, text rows in the kit's vocabulary)."""

    def summary(self) -> str:
        rows = ", ".join(f"{k}: {a}/{b} text rows" for k, (a, b) in self.text_rows.items())
        return (
            f"init_from {self.source} ({self.kind}): {len(self.copied)} tensors copied"
            + (f"; {rows}" if rows else "; no embedding rows mapped")
            + "; everything else keeps its fresh initialisation"
        )


def warm_start(
    net: nn.Module,
    network: LSTConfig | BaselineConfig,
    source: str | Path,
    space: TokenSpace | None,
) -> WarmStartReport:
    """Initialise ``net`` (in place) from ``source``; ``space`` is the kit's token space (needed to
    map text rows; ``None`` maps none)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"model.init_from={source}: no such file or folder")
    if path.is_file():
        ckpt = KitCheckpoint.load(path)
        return _from_kit(net, network, ckpt.weights, space, ckpt.space, str(path))
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"model.init_from={source}: the folder has no config.json")
    from .pretrained import CONFIG_KEY, PretrainedSpeechTextModel

    if CONFIG_KEY in json.loads(config_path.read_text()):
        kit = PretrainedSpeechTextModel.from_pretrained(path)
        return _from_kit(net, network, kit.net.state_dict(), space, kit.space, str(path))
    return _from_llama(net, network, path, space)


# -- a Hugging Face Llama folder ------------------------------------------------------------------


def _from_llama(
    net: nn.Module, network: LSTConfig | BaselineConfig, folder: Path, space: TokenSpace | None
) -> WarmStartReport:
    config, weights = read_llama_folder(folder)
    shape = LlamaShape.from_config(config, str(folder))
    report = WarmStartReport(str(folder), "llama")
    if isinstance(network, LSTConfig):
        stack_cfg, option, prefix = network.global_model, "network.global_model", "global_model."
    else:
        stack_cfg, option, prefix = network.transformer, "network.transformer", ""
    shape.check_fits(stack_cfg, option, str(folder))
    source = {
        f"stack.{k}": v for k, v in llama_to_stack(weights, shape.num_layers, str(folder)).items()
    }
    source["norm.weight"] = weights["model.norm.weight"]
    _copy(net, {prefix + k: v for k, v in source.items()}, report)
    embed = weights["model.embed_tokens.weight"]
    head = weights.get("lm_head.weight", embed) if not shape.tie_word_embeddings else embed
    pairs = _text_pairs(space, _llama_vocab(folder)) if space is not None else []
    targets = (
        {"embed.weight": embed, "head.weight": head}
        if isinstance(network, BaselineConfig)
        else {"encoder.embed.weight": embed, "decoder.head.weight": head}
    )
    for name, rows in targets.items():
        _map_rows(net, name, rows, pairs, space, report)
    return report


def _llama_vocab(folder: Path) -> dict[str, int]:
    """Piece -> id of a Llama folder's tokenizer (``tokenizer.model`` or ``tokenizer.json``)."""
    spm_path, json_path = folder / "tokenizer.model", folder / "tokenizer.json"
    if spm_path.is_file():
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(spm_path))
        return {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    if json_path.is_file():
        model = json.loads(json_path.read_text()).get("model", {})
        vocab = model.get("vocab", {})
        if isinstance(vocab, list):  # unigram: [[piece, score], ...]
            return {piece: i for i, (piece, _) in enumerate(vocab)}
        return dict(vocab)
    return {}


def _text_pairs(space: TokenSpace, vocab: dict[str, int]) -> list[tuple[int, int]]:
    """(kit text id, source id) for every kit text piece the source vocabulary has."""
    sp = space._sp
    pairs = []
    for i in range(space.text_vocab_size):
        j = vocab.get(sp.id_to_piece(i))
        if j is not None:
            pairs.append((i, j))
    return pairs


# -- a kit checkpoint or exported folder --------------------------------------------------------


def _from_kit(
    net: nn.Module,
    network: LSTConfig | BaselineConfig,
    weights: dict[str, torch.Tensor],
    space: TokenSpace | None,
    source_space: TokenSpace,
    where: str,
) -> WarmStartReport:
    report = WarmStartReport(where, "kit")
    own = net.state_dict()
    if isinstance(network, LSTConfig) and "stack.layers.0.attn.qkv.weight" in weights:
        # a baseline's decoder initialises LST's global transformer
        weights = {
            f"global_model.{k}": v for k, v in weights.items() if k.startswith(("stack.", "norm."))
        }
    same_tokens = space is None or space.model_bytes == source_space.model_bytes
    same = {
        k: v
        for k, v in weights.items()
        if k in own and own[k].shape == v.shape and (same_tokens or not _is_vocab(k))
    }
    rows = {k: v for k, v in weights.items() if k in own and k not in same and _is_vocab(k)}
    _copy(net, same, report)
    if space is not None and rows:
        vocab = {source_space._sp.id_to_piece(i): i for i in range(source_space.text_vocab_size)}
        pairs = _text_pairs(space, vocab)
        for name, value in rows.items():
            _map_rows(net, name, value, pairs, space, report)
    if not report.copied and not report.text_rows:
        raise ValueError(f"model.init_from={where}: no weight of it fits this network")
    return report


def _is_vocab(name: str) -> bool:
    return name.endswith(("embed.weight", "head.weight"))


# -- copying ----------------------------------------------------------------------------------


def _copy(net: nn.Module, weights: dict[str, torch.Tensor], report: WarmStartReport) -> None:
    own = net.state_dict()
    missing = [k for k in weights if k not in own]
    if missing:
        raise ValueError(
            f"warm start: the network has no {missing[0]} (and {len(missing) - 1} more)"
        )
    with torch.no_grad():
        for name, value in weights.items():
            if own[name].shape != value.shape:
                raise ValueError(
                    f"warm start: {name} is {tuple(own[name].shape)} here but "
                    f"{tuple(value.shape)} in the source"
                )
            own[name].copy_(value.to(own[name].dtype))
            report.copied.append(name)


def _map_rows(
    net: nn.Module,
    name: str,
    source: torch.Tensor,
    pairs: list[tuple[int, int]],
    space: TokenSpace | None,
    report: WarmStartReport,
) -> None:
    """Copy rows ``source[j] -> net.<name>[i]`` for the text pairs, when the widths match."""
    own = net.state_dict().get(name)
    if own is None or own.shape[1] != source.shape[1] or not pairs or space is None:
        return
    with torch.no_grad():
        dst = torch.tensor([i for i, _ in pairs])
        src = torch.tensor([j for _, j in pairs])
        keep = src < source.shape[0]
        own[dst[keep]] = source[src[keep]].to(own.dtype)
    report.text_rows[name] = (int(keep.sum()), space.text_vocab_size)
