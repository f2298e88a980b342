"""Patch arithmetic and the windowed cross-attention, checked against direct loops."""

from __future__ import annotations

import torch

from lst_lightning.model.cross_attention import PatchCrossAttention
from lst_lightning.model.patching import (
    closed_patch_before_target,
    decoder_cross_bounds,
    encoder_cross_bounds,
    max_pool_patches,
    patch_doc_ids,
    positions_in_document,
    token_to_patch,
)

LENGTHS = torch.tensor([[1, 3, 2, 1, 0, 0]])
DOCS = torch.tensor([[0, 0, 0, 0, 1, 1, 1, -1, -1]])


def test_positions_restart_per_document() -> None:
    assert positions_in_document(DOCS).tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1]]


def test_token_to_patch_and_padding_bucket() -> None:
    assert token_to_patch(LENGTHS, 9).tolist() == [[0, 1, 1, 1, 2, 2, 3, 6, 6]]


def test_closed_patch_is_the_last_patch_ending_at_or_before_each_token() -> None:
    assert closed_patch_before_target(LENGTHS, 9).tolist() == [[0, 0, 0, 1, 1, 2, 3, 3, 3]]


def test_patch_documents() -> None:
    assert patch_doc_ids(LENGTHS, DOCS).tolist() == [[0, 0, 1, 1, -1, -1]]


def test_max_pool() -> None:
    states = torch.arange(9.0).view(1, 9, 1)
    pooled = max_pool_patches(states, token_to_patch(LENGTHS, 9), 6)
    assert pooled.view(-1).tolist() == [0.0, 3.0, 5.0, 6.0, 0.0, 0.0]


def test_cross_bounds_on_the_small_example() -> None:
    patch_docs = patch_doc_ids(LENGTHS, DOCS)
    # Patches [0 | 1 2 3 | 4 5 | 6 | - | -]; documents 0 (patches 0-1) and 1 (patches 2-3).
    lo, hi = encoder_cross_bounds(LENGTHS, patch_docs, window=2)
    assert lo.tolist() == [[0, 0, 4, 4, 7, 7]] and hi.tolist() == [[1, 4, 6, 7, 7, 7]]
    lo, hi = encoder_cross_bounds(LENGTHS, patch_docs, window=1)
    assert lo.tolist() == [[0, 1, 4, 6, 7, 7]]
    lo, hi = decoder_cross_bounds(LENGTHS, DOCS, patch_docs, window=2)
    assert hi.tolist() == [[1, 1, 1, 2, 0, 3, 4, 0, 0]]
    assert lo.tolist() == [[0, 0, 0, 0, 0, 2, 2, 0, 0]]


def test_patch_cross_attention_matches_per_patch_softmax() -> None:
    """Window 2: each patch's queries see the tokens of itself and of the previous patch of its
    document (a direct loop over patches and tokens)."""
    torch.manual_seed(0)
    attn = PatchCrossAttention(d_model=8, n_heads=2, norm_eps=1e-5)
    queries, tokens = torch.randn(1, 6, 2, 8), torch.randn(1, 9, 8)
    index = token_to_patch(LENGTHS, 9)
    patch_docs = patch_doc_ids(LENGTHS, DOCS)
    out = attn(queries, tokens, *encoder_cross_bounds(LENGTHS, patch_docs, window=2))
    q = attn.q(attn.query_norm(queries)).view(1, 6, 2, 2, 4)
    keys, values = attn.kv(attn.token_norm(tokens)).view(1, 9, 2, 2, 4).unbind(2)
    for p in range(6):
        members = [
            t for t in range(9) if p - 1 <= index[0, t] <= p and DOCS[0, t] == patch_docs[0, p]
        ]
        if LENGTHS[0, p] == 0:
            torch.testing.assert_close(out[0, p], attn.proj(torch.zeros(2, 8)))
            continue
        for k in range(2):
            heads = []
            for h in range(2):
                w = (keys[0, members, h] @ q[0, p, k, h] / 2.0).softmax(0)
                heads.append(w @ values[0, members, h])
            torch.testing.assert_close(out[0, p, k], attn.proj(torch.cat(heads)))
