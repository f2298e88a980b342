"""The windowed cross-attentions: bounds against the rule, and the two kernels against each other."""

from __future__ import annotations

import warnings

import pytest
import torch

from lst_lightning.model import LST, LSTConfig, TransformerConfig
from lst_lightning.model.cross_attention import (
    PatchCrossAttention,
    TokenCrossAttention,
    block_mask_from_bounds,
    bounded_attention,
    bounds_mask,
)
from lst_lightning.model.patching import (
    decoder_cross_bounds,
    encoder_cross_bounds,
    patch_doc_ids,
    patch_ends,
    token_to_patch,
)

from .helpers import random_packed

WINDOWS = [1, 2, 3, 512]


def reference_encoder_mask(
    doc_ids: torch.Tensor, patch_lengths: torch.Tensor, window: int
) -> torch.Tensor:
    """``[B, P, T]`` from the rule: patch q sees token t iff t lies in one of the patches
    q - window + 1 .. q and in the same document (padding patches see nothing)."""
    b, t_len = doc_ids.shape
    p_len = patch_lengths.shape[1]
    owner = token_to_patch(patch_lengths, t_len)
    docs = patch_doc_ids(patch_lengths, doc_ids)
    out = torch.zeros(b, p_len, t_len, dtype=torch.bool)
    for row in range(b):
        for q in range(p_len):
            for t in range(t_len):
                out[row, q, t] = bool(
                    patch_lengths[row, q] > 0
                    and q - window < owner[row, t] <= q
                    and doc_ids[row, t] == docs[row, q]
                )
    return out


def reference_decoder_mask(
    doc_ids: torch.Tensor, patch_lengths: torch.Tensor, window: int
) -> torch.Tensor:
    """``[B, T, P]`` from the rule: token t reads the last ``window`` patches of its document that
    closed at or before it (end <= t + 1); padding tokens read none."""
    b, t_len = doc_ids.shape
    p_len = patch_lengths.shape[1]
    ends, docs = patch_ends(patch_lengths), patch_doc_ids(patch_lengths, doc_ids)
    out = torch.zeros(b, t_len, p_len, dtype=torch.bool)
    for row in range(b):
        for t in range(t_len):
            visible = [
                j
                for j in range(p_len)
                if patch_lengths[row, j] > 0
                and doc_ids[row, t] >= 0
                and docs[row, j] == doc_ids[row, t]
                and ends[row, j] <= t + 1
            ]
            for j in visible[-window:]:
                out[row, t, j] = True
    return out


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("seed", [0, 1])
def test_bounds_equal_the_rule(window: int, seed: int) -> None:
    _, doc_ids, patch_lengths = random_packed(
        batch=3, docs_per_row=(3, 1, 4), patches_per_doc=8, max_patch=5, seed=seed
    )
    docs = patch_doc_ids(patch_lengths, doc_ids)
    t_len, p_len = doc_ids.shape[1], patch_lengths.shape[1]
    enc = bounds_mask(*encoder_cross_bounds(patch_lengths, docs, window), t_len)
    assert torch.equal(enc, reference_encoder_mask(doc_ids, patch_lengths, window))
    dec = bounds_mask(*decoder_cross_bounds(patch_lengths, doc_ids, docs, window), p_len)
    assert torch.equal(dec, reference_decoder_mask(doc_ids, patch_lengths, window))


def random_bounds(b: int, q: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ranges, some empty, some covering everything."""
    g = torch.Generator().manual_seed(seed)
    a, c = torch.randint(0, k + 1, (2, b, q), generator=g)
    lo, hi = torch.minimum(a, c), torch.maximum(a, c)
    lo[:, ::7], hi[:, ::7] = 0, k
    hi[:, 3::11] = lo[:, 3::11]
    return lo, hi


def test_block_mask_lists_every_allowed_block_and_only_full_ones_as_full() -> None:
    # Bands like the windows' (row 0) with empty rows, and random ranges (row 1).
    i = torch.arange(70)
    band = ((i * 0.6 - 20).clamp(min=0).long(), (i * 0.6 + 12).clamp(max=53).long())
    rand = random_bounds(1, 70, 53, seed=0)
    lo, hi = torch.stack([band[0], rand[0][0]]), torch.stack([band[1], rand[1][0]])
    hi[0, 40:44] = lo[0, 40:44]
    mask = block_mask_from_bounds(lo, hi, 53, block=16)
    allowed = bounds_mask(lo, hi, 53)
    padded = torch.nn.functional.pad(allowed, (0, 64 - 53, 0, 80 - 70))
    blocks = padded.view(2, 5, 16, 4, 16)
    touched, full = blocks.any(dim=(2, 4)), blocks.all(dim=(2, 4))
    listed = mask.to_dense()[:, 0].bool()
    assert (listed | ~touched).all(), "an allowed block is missing"
    full_dense = torch.zeros_like(listed)
    for row in range(2):
        for qb in range(5):
            n = int(mask.full_kv_num_blocks[row, 0, qb])
            full_dense[row, qb, mask.full_kv_indices[row, 0, qb, :n].long()] = True
    assert (~full_dense | full).all(), "a block marked full has masked elements"
    assert full_dense.any() and (listed & ~full_dense).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_flex_and_sdpa_kernels_agree_on_cpu(seed: int) -> None:
    """flex_attention's unfused reference (CPU) with the block mask equals SDPA with the dense
    mask, empty rows included (both zero)."""
    torch.manual_seed(seed)
    q, k, v = torch.randn(2, 3, 70, 8), torch.randn(2, 3, 53, 8), torch.randn(2, 3, 53, 8)
    lo, hi = random_bounds(2, 70, 53, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile()"
        flex = bounded_attention(q, k, v, lo, hi, kernel="flex")
    sdpa = bounded_attention(q, k, v, lo, hi, kernel="sdpa")
    torch.testing.assert_close(flex, sdpa, atol=1e-5, rtol=1e-5)
    assert (sdpa[:, :, 3::11] == 0).all()
    scores = (q @ k.transpose(-1, -2) / 8**0.5).masked_fill(
        ~bounds_mask(lo, hi, 53)[:, None], float("-inf")
    )
    ref = torch.nan_to_num(scores.softmax(-1)) @ v
    torch.testing.assert_close(sdpa, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        bounded_attention(q, k, v, lo, hi, kernel="dense")  # type: ignore[arg-type]


def tiny_lst(w_enc: int, w_dec: int) -> LST:
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=2, window=4)
    return LST(
        LSTConfig(
            vocab_size=97,
            encoder=TransformerConfig(n_layers=2, **small),
            global_model=TransformerConfig(n_layers=1, d_model=64, n_heads=2),
            decoder=TransformerConfig(n_layers=2, **small),
            cross_window_encoder=w_enc,
            cross_window_decoder=w_dec,
            init_std=0.1,
        )
    )


def set_kernel(model: LST, kernel: str) -> None:
    for module in model.modules():
        if isinstance(module, PatchCrossAttention | TokenCrossAttention):
            module.kernel = kernel


def forward_and_grads(model: LST, *inputs: torch.Tensor) -> tuple[torch.Tensor, list]:
    model.zero_grad(set_to_none=True)
    logits = model(*inputs)
    logits.float().square().mean().backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize(("w_enc", "w_dec"), [(2, 3), (512, 512)])
def test_lst_with_flex_kernel_equals_sdpa_kernel_on_cpu(w_enc: int, w_dec: int) -> None:
    """The whole forward with the flex kernel's masks (forward only: flex has no CPU backward)."""
    model = tiny_lst(w_enc, w_dec).eval()
    inputs = random_packed(vocab=97, patches_per_doc=8, seed=4)
    with torch.no_grad():
        base = model(*inputs)
        set_kernel(model, "flex")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(*inputs)
    torch.testing.assert_close(out, base, atol=1e-5, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("w_enc", "w_dec"), [(2, 3), (512, 512)])
def test_cuda_flex_path_matches_the_cpu_path(w_enc: int, w_dec: int) -> None:
    """The CUDA branch (compiled flex_attention with block masks from the bounds) computes the same
    logits and gradients as the CPU branch (SDPA with dense masks), in float32."""
    model = tiny_lst(w_enc, w_dec)
    inputs = random_packed(vocab=97, patches_per_doc=40, max_patch=6, seed=4)
    base, base_grads = forward_and_grads(model, *inputs)
    model.cuda()
    out, grads = forward_and_grads(model, *(x.cuda() for x in inputs))
    torch.testing.assert_close(out.cpu(), base, atol=1e-4, rtol=1e-3)
    for a, b in zip(grads, base_grads, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-3)
