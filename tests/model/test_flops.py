"""The analytic FLOPs count against torch's FlopCounterMode and against the attention masks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from lst_lightning.model import LST, BaselineConfig, LSTConfig, SpeechLLM, TransformerConfig
from lst_lightning.model.attention import attention_mask
from lst_lightning.model.flops import (
    Layout,
    attention_pairs,
    baseline_forward_flops,
    batch_training_flops,
    causal_pairs,
    decoder_cross_pairs,
    encoder_cross_pairs,
    forward_flops,
    lst_forward_flops,
)
from lst_lightning.model.patching import (
    decoder_cross_bounds,
    encoder_cross_bounds,
    patch_doc_ids,
)

from .helpers import random_packed

VOCAB = 97


def tiny_lst(window: int | None = 5) -> LSTConfig:
    return LSTConfig(
        vocab_size=VOCAB,
        encoder=TransformerConfig(n_layers=2, d_model=32, n_heads=2, window=window),
        global_model=TransformerConfig(n_layers=2, d_model=64, n_heads=4),
        decoder=TransformerConfig(n_layers=2, d_model=32, n_heads=2, window=window),
        queries_per_patch=2,
    )


def counted_training_flops(model: torch.nn.Module, *inputs: torch.Tensor) -> FlopCounterMode:
    """FlopCounterMode over forward + backward, with SDPA's math kernel so that attention shows up
    as matmuls (the fused CPU kernel is invisible to the counter)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        logits = model(*inputs)
        F.cross_entropy(logits.flatten(0, 1), inputs[0].flatten()).backward()
    return counter


def module_flops(counter: FlopCounterMode, name: str) -> int:
    """FLOPs FlopCounterMode attributes to a module, or to the members of a ``ModuleList``."""
    counts = counter.get_flop_counts()
    if name in counts:
        return sum(counts[name].values())
    members = [k for k in counts if k.startswith(name + ".") and k[len(name) + 1 :].isdigit()]
    assert members, f"no module {name} in {sorted(counts)}"
    return sum(sum(counts[k].values()) for k in members)


def test_causal_pairs_equal_the_mask_the_attention_uses() -> None:
    _, doc_ids, patch_lengths = random_packed(seed=3)
    for window in (None, 1, 3, 7):
        layout = Layout.from_batch(doc_ids, patch_lengths)
        allowed = int(attention_mask(doc_ids, window).sum())
        assert causal_pairs(layout.token_runs, window) == allowed
        patch_docs = patch_doc_ids(patch_lengths, doc_ids)
        allowed_patches = int(attention_mask(patch_docs, window).sum())
        assert causal_pairs(layout.patch_runs, window) == allowed_patches
    assert attention_pairs(layout.token_runs, 2, 10, None, "dense") == 200
    with pytest.raises(ValueError, match="attention must be"):
        attention_pairs(layout.token_runs, 2, 10, None, "half")


def test_lst_count_matches_flop_counter_mode() -> None:
    torch.manual_seed(0)
    config = tiny_lst()
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, patches_per_doc=8, seed=1)
    layout = Layout.from_batch(doc_ids, patch_lengths)
    counter = counted_training_flops(LST(config), tokens, doc_ids, patch_lengths)
    dense = lst_forward_flops(config, layout, attention="dense")
    assert counter.get_total_flops() == dense.training
    # Component by component, with the module names FlopCounterMode reports (where its backward
    # attribution is clean: gradients that cross the encoder's boundaries are booked loosely).
    assert module_flops(counter, "LST.global_model") == 3 * dense.component("global.blocks")
    assert module_flops(counter, "LST.decoder.layers") == 3 * dense.component("decoder.blocks")
    assert module_flops(counter, "LST.decoder.head") == 3 * dense.component("decoder.head")
    # The logged convention (causal) counts fewer attention pairs, never more linear FLOPs.
    causal = lst_forward_flops(config, layout, attention="causal")
    assert causal.linear == dense.linear
    assert causal.forward < dense.forward
    # The windows bound the causal count's cross-attention pairs: W = 1 counts fewer.
    compact = lst_forward_flops(
        replace(config, cross_window_encoder=1, cross_window_decoder=1), layout
    )
    assert compact.linear == causal.linear
    assert (
        compact.attention["encoder.cross_attention"] < causal.attention["encoder.cross_attention"]
    )
    assert (
        compact.attention["decoder.cross_attention"] < causal.attention["decoder.cross_attention"]
    )


@pytest.mark.parametrize("window", [1, 2, 3, 512])
def test_cross_pairs_equal_the_windows_the_model_uses(window: int) -> None:
    _, doc_ids, patch_lengths = random_packed(seed=6, patches_per_doc=9, docs_per_row=(3, 4))
    layout = Layout.from_batch(doc_ids, patch_lengths)
    patch_docs = patch_doc_ids(patch_lengths, doc_ids)
    lo, hi = encoder_cross_bounds(patch_lengths, patch_docs, window)
    assert encoder_cross_pairs(layout, window, k=2) == 2 * int((hi - lo).sum())
    lo, hi = decoder_cross_bounds(patch_lengths, doc_ids, patch_docs, window)
    assert decoder_cross_pairs(layout, window, k=2) == 2 * int((hi - lo).clamp(min=1).sum())


def test_baseline_count_matches_flop_counter_mode() -> None:
    torch.manual_seed(0)
    config = BaselineConfig(
        vocab_size=VOCAB, transformer=TransformerConfig(n_layers=3, d_model=64, n_heads=4)
    )
    tokens, doc_ids, patch_lengths = random_packed(vocab=VOCAB, seed=2)
    counter = counted_training_flops(SpeechLLM(config), tokens, doc_ids)
    layout = Layout.from_batch(doc_ids, None)
    assert counter.get_total_flops() == baseline_forward_flops(config, layout, "dense").training
    # Patch lengths play no part in the baseline's count.
    assert batch_training_flops(config, doc_ids, patch_lengths, "dense") == (
        baseline_forward_flops(config, layout, "dense").training
    )


def test_window_and_patching_change_the_count_as_expected() -> None:
    _, doc_ids, patch_lengths = random_packed(seed=4, patches_per_doc=10)
    layout = Layout.from_batch(doc_ids, patch_lengths)
    narrow = lst_forward_flops(tiny_lst(window=2), layout)
    wide = lst_forward_flops(tiny_lst(window=None), layout)
    assert narrow.linear == wide.linear
    assert narrow.attention["encoder.blocks"] < wide.attention["encoder.blocks"]
    assert narrow.attention["global.blocks"] == wide.attention["global.blocks"]
    # One patch per token (no compression) costs the global model more than real patches.
    unpatched = Layout.from_batch(doc_ids, None)
    assert lst_forward_flops(tiny_lst(), unpatched).component("global.blocks") > (
        narrow.component("global.blocks")
    )


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="token_runs sum"):
        Layout(rows=2, token_columns=4, patch_columns=2, token_runs=(4,), patch_runs=(2, 2))
    with pytest.raises(TypeError, match="no FLOPs formula"):
        forward_flops(TransformerConfig(), Layout(1, 1, 1, (1,), (1,)))  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="unknown component"):
        lst_forward_flops(tiny_lst(), Layout(1, 2, 1, (2,), (1,), ((2,),))).component("nope")
    with pytest.raises(ValueError, match="per-document patch lengths"):
        lst_forward_flops(tiny_lst(), Layout(1, 2, 1, (2,), (1,)))
