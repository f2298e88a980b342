"""Mask semantics of the attention entry point, and agreement of its two kernels."""

from __future__ import annotations

import pytest
import torch

from lst_lightning.model import attention
from lst_lightning.model.attention import attend, attention_mask, document_cu_seqlens


def test_mask_is_causal_windowed_and_per_document() -> None:
    doc_ids = torch.tensor([[0, 0, 0, 0, 1, 1, -1, -1]])
    mask = attention_mask(doc_ids, window=3)[0, 0]
    for i in range(8):
        for j in range(8):
            want = doc_ids[0, i] == doc_ids[0, j] and j <= i and i - j < 3
            assert bool(mask[i, j]) == bool(want), (i, j)
    assert mask.any(dim=1).all(), "every row, padding included, must see at least itself"


def test_cu_seqlens_split_rows_and_documents() -> None:
    doc_ids = torch.tensor([[0, 0, 1, -1], [0, 1, 1, 1]])
    cu, max_len = document_cu_seqlens(doc_ids)
    assert cu.tolist() == [0, 2, 3, 4, 5, 8]
    assert max_len == 3


def test_sdpa_path_matches_a_naive_softmax() -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8) for _ in range(3))
    doc_ids = torch.tensor([[0] * 6 + [1] * 4, [0] * 3 + [1] * 5 + [-1] * 2])
    out = attend(q, k, v, doc_ids, window=4)
    scores = (q @ k.transpose(-1, -2)) / 8**0.5
    scores = scores.masked_fill(~attention_mask(doc_ids, 4), float("-inf"))
    torch.testing.assert_close(out, scores.softmax(-1) @ v)


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available() or attention.flash_attn_varlen_func is None,
    reason="needs CUDA and flash-attn (the `gpu` extra)",
)
@pytest.mark.parametrize("window", [None, 5])
def test_flash_and_sdpa_paths_agree(window: int | None) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 64, 32, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    doc_ids = torch.tensor([[0] * 20 + [1] * 44, [0] * 50 + [-1] * 14], device="cuda")
    flash = attend(q, k, v, doc_ids, window)
    dense = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), attn_mask=attention_mask(doc_ids, window)
    )
    torch.testing.assert_close(flash.float(), dense, atol=2e-2, rtol=2e-2)
