"""The kit's Llama-style stacks in Hugging Face ``transformers`` Llama naming, both ways.

The kit's blocks are Llama blocks (pre-RMSNorm, RoPE self-attention, SwiGLU, no biases), so a stack
maps one to one onto ``LlamaModel`` layers:

============================  ============================================
kit (``TransformerStack``)    transformers ``LlamaForCausalLM``
============================  ============================================
``layers.i.attn_norm``        ``model.layers.i.input_layernorm``
``layers.i.attn.qkv`` (3 d)   ``model.layers.i.self_attn.{q,k,v}_proj``
``layers.i.attn.proj``        ``model.layers.i.self_attn.o_proj``
``layers.i.ffn_norm``         ``model.layers.i.post_attention_layernorm``
``layers.i.ffn.w1 / w3 / w2`` ``model.layers.i.mlp.{gate,up,down}_proj``
============================  ============================================

Heads are laid out the same way (``[head, head_dim]`` rows, no interleaving), and the kit's RoPE
rotates the two halves of each head like ``transformers``' ``rotate_half``, so no permutation is
needed; RoPE theta, the norm epsilon and the SwiGLU width carry over as config fields. Grouped-query
attention (fewer key/value heads) and attention biases have no kit equivalent and are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..model import BaselineConfig
from ..model.config import TransformerConfig

LAYER_MAP = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn.proj.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn.w1.weight": "mlp.gate_proj.weight",
    "ffn.w3.weight": "mlp.up_proj.weight",
    "ffn.w2.weight": "mlp.down_proj.weight",
}
QKV = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight")


@dataclass(frozen=True)
class LlamaShape:
    """The fields of a Llama ``config.json`` that decide whether its weights fit a kit stack."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    attention_bias: bool

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str) -> LlamaShape:
        try:
            heads = int(config["num_attention_heads"])
            rope = config.get("rope_parameters") or {}
            theta = rope.get("rope_theta", config.get("rope_theta", 10_000.0))
            return cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=int(config["hidden_size"]),
                num_layers=int(config["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(config.get("num_key_value_heads") or heads),
                intermediate_size=int(config["intermediate_size"]),
                rope_theta=float(theta),
                rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
                tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                attention_bias=bool(config.get("attention_bias", False)),
            )
        except KeyError as e:
            raise ValueError(f"{where}: not a Llama-style config (no {e.args[0]!r})") from None

    def check_fits(self, stack: TransformerConfig, option: str, where: str) -> None:
        """Raise, naming each option to change, unless the Llama's layers fit ``stack``."""
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"{where}: grouped-query attention ({self.num_kv_heads} key/value heads for "
                f"{self.num_heads} query heads) has no equivalent in the kit's blocks"
            )
        if self.attention_bias:
            raise ValueError(f"{where}: attention biases have no equivalent in the kit's blocks")
        wanted = {
            "n_layers": (stack.n_layers, self.num_layers, "num_hidden_layers"),
            "d_model": (stack.d_model, self.hidden_size, "hidden_size"),
            "n_heads": (stack.n_heads, self.num_heads, "num_attention_heads"),
            "ffn_hidden": (stack.hidden, self.intermediate_size, "intermediate_size"),
            "rope_theta": (stack.rope_theta, self.rope_theta, "rope_theta"),
            "norm_eps": (stack.norm_eps, self.rms_norm_eps, "rms_norm_eps"),
        }
        bad = [
            f"{option}.{name}={ours} but the Llama has {theirs_name}={theirs}"
            for name, (ours, theirs, theirs_name) in wanted.items()
            if ours != theirs
        ]
        if stack.window is not None:
            bad.append(f"{option}.window={stack.window} but a Llama attends without a window")
        if bad:
            raise ValueError(f"{where} does not fit the network: " + "; ".join(bad))


def read_llama_folder(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``config.json`` and the weights (``model.safetensors``, sharded or not) of a local
    Hugging Face folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not a Hugging Face model folder)")
    config = json.loads(config_path.read_text())
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return config, load_file(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weights: dict[str, torch.Tensor] = {}
        for shard in shards:
            weights.update(load_file(folder / shard))
        return config, weights
    raise FileNotFoundError(
        f"{folder}: no model.safetensors or model.safetensors.index.json (only safetensors "
        "weights are read: pickled .bin files are not loaded)"
    )


def stack_to_llama(stack: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """A kit stack's ``layers.*`` weights as ``model.layers.*`` weights."""
    out = {}
    for i in range(n_layers):
        src, dst = f"layers.{i}.", f"model.layers.{i}."
        for kit, hf in LAYER_MAP.items():
            out[dst + hf] = stack[src + kit]
        for name, part in zip(QKV, stack[src + "attn.qkv.weight"].chunk(3, dim=0), strict=True):
            out[dst + name] = part
    return {k: v.contiguous() for k, v in out.items()}


def llama_to_stack(weights: dict[str, torch.Tensor], n_layers: int, where: str) -> dict:
    """Invert :func:`stack_to_llama`: ``layers.*`` weights of a kit stack."""
    out = {}
    for i in range(n_layers):
        src, dst = f"model.layers.{i}.", f"layers.{i}."
        try:
            for kit, hf in LAYER_MAP.items():
                out[dst + kit] = weights[src + hf]
            out[dst + "attn.qkv.weight"] = torch.cat([weights[src + n] for n in QKV], dim=0)
        except KeyError as e:
            raise ValueError(f"{where}: missing weight {e.args[0]}") from None
    return out


def baseline_to_llama(net_weights: dict[str, torch.Tensor], n_layers: int) -> dict:
    """The Base SpeechLLM's weights in ``LlamaForCausalLM`` naming."""
    stack = {k[len("stack.") :]: v for k, v in net_weights.items() if k.startswith("stack.")}
    out = stack_to_llama(stack, n_layers)
    out["model.embed_tokens.weight"] = net_weights["embed.weight"]
    out["model.norm.weight"] = net_weights["norm.weight"]
    out["lm_head.weight"] = net_weights["head.weight"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def llama_to_baseline(weights: dict[str, torch.Tensor], n_layers: int, where: str) -> dict:
    """Invert :func:`baseline_to_llama` (a tied head is read from the embedding)."""
    out = {f"stack.{k}": v for k, v in llama_to_stack(weights, n_layers, where).items()}
    out["embed.weight"] = weights["model.embed_tokens.weight"]
    out["norm.weight"] = weights["model.norm.weight"]
    out["head.weight"] = weights.get("lm_head.weight", weights["model.embed_tokens.weight"])
    return out


def llama_config(
    config: BaselineConfig, layout: dict[str, Any] | None, max_positions: int
) -> dict[str, Any]:
    """A ``transformers`` ``LlamaConfig`` (as its ``to_dict``) for a Base SpeechLLM config."""
    from transformers import LlamaConfig

    tc = config.transformer
    if tc.window is not None:
        raise ValueError(
            f"network.transformer.window={tc.window}: a transformers Llama has no sliding window"
        )
    layout = layout or {}
    hf = LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=tc.d_model,
        intermediate_size=tc.hidden,
        num_hidden_layers=tc.n_layers,
        num_attention_heads=tc.n_heads,
        num_key_value_heads=tc.n_heads,
        head_dim=tc.head_dim,
        hidden_act="silu",
        max_position_embeddings=max_positions,
        initializer_range=config.init_std,
        rms_norm_eps=tc.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": tc.rope_theta},
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=layout.get("bos_id"),
        eos_token_id=layout.get("eos_id"),
        pad_token_id=layout.get("pad_id"),
        architectures=["LlamaForCausalLM"],
        dtype="float32",
    )
    return hf.to_dict()
