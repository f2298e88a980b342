"""Analytic estimate of where LST's patching pays for itself in FLOPs (no training).

LST saves global-model positions on speech (one per patch of ``p`` tokens) and pays for its local
encoder and decoder on every token, text included. From the analytic FLOPs
(:mod:`lst_lightning.model.flops`) this computes, for a model pair sharing one global
transformer, the training FLOPs LST spends per second of speech and per text token relative to the
Base SpeechLLM, on synthetic single-document rows (speech: static patches of ``p`` tokens, 25
units per second; text: one patch per piece, as LST patches text). The ratio on the mixture is the
token-weighted mean. A ratio below 1 is a **necessary** condition for LST to win at equal FLOPs
under the assumption that, per global position, it models the data no worse than the baseline
does per token; it is not sufficient (the measured tables say how LST learns per position).
"""

from __future__ import annotations

import dataclasses

from lst_lightning.model.config import BaselineConfig, LSTConfig
from lst_lightning.model.flops import Layout, forward_flops


def _lst_layout(tokens: int, patch: int) -> Layout:
    patches = -(-tokens // patch)
    lengths = [patch] * (tokens // patch) + ([tokens % patch] if tokens % patch else [])
    return Layout(1, tokens, patches, (tokens,), (patches,), (tuple(lengths),))


def _base_layout(tokens: int) -> Layout:
    return Layout(1, tokens, tokens, (tokens,), (tokens,), ((1,) * tokens,))


def cost_ratios(lst: LSTConfig, patch: int = 4, tokens: int = 1024) -> dict[str, float]:
    """LST / baseline training FLOPs per speech token and per text token, same global model."""
    base = BaselineConfig(transformer=lst.global_model, vocab_size=lst.vocab_size)
    b = forward_flops(base, _base_layout(tokens)).forward
    speech = forward_flops(lst, _lst_layout(tokens, patch)).forward
    text = forward_flops(lst, _lst_layout(tokens, 1)).forward
    return {"speech": speech / b, "text": text / b}


def mixture_ratio(ratios: dict[str, float], speech_share: float) -> float:
    """Token-weighted LST / baseline FLOPs on a mixture with ``speech_share`` of speech tokens."""
    return speech_share * ratios["speech"] + (1 - speech_share) * ratios["text"]


def sweep(
    lst: LSTConfig, globals_: list[tuple[int, int]]
) -> list[tuple[int, int, dict[str, float]]]:
    """``cost_ratios`` with the local models of ``lst`` and global models ``(layers, width)``."""
    out = []
    for layers, width in globals_:
        heads = max(1, width // 64)
        g = dataclasses.replace(
            lst.global_model, n_layers=layers, d_model=width, n_heads=heads, ffn_hidden=None
        )
        out.append((layers, width, cost_ratios(dataclasses.replace(lst, global_model=g))))
    return out
