"""Choosing the next token from logits: greedy or sampled, restricted to the allowed ids.

One function for every decoder of the kit (:mod:`.generate`, :mod:`.batch_generate`), so greedy,
temperature, top-k, top-p and the modality restriction behave the same at batch 1 and batch n.
The restriction masks logits to ``-inf`` outside the allowed ids *before* anything else, so a
greedy ASR decode cannot emit a unit id and a TTS decode no text id, and top-k / top-p count only
allowed ids.
"""

from __future__ import annotations

from collections.abc import Collection

import torch

AllowedIds = Collection[int] | torch.Tensor
"""Ids the output may contain: a collection of ints (every row), or a boolean mask ``[V]`` (every
row) or ``[n, V]`` (one row each)."""


def allowed_mask(
    allowed_ids: AllowedIds | None,
    vocab_size: int,
    rows: int,
    eos_id: int | None,
    device: torch.device,
) -> torch.Tensor | None:
    """Boolean ``[rows, V]`` mask of the ids a row may emit (``None``: any). ``eos_id`` is always
    allowed, so a restricted decode can still stop."""
    if allowed_ids is None:
        return None
    if isinstance(allowed_ids, torch.Tensor):
        mask = allowed_ids.to(device=device, dtype=torch.bool)
        if mask.dim() == 1:
            mask = mask[None].expand(rows, -1)
        if mask.shape != (rows, vocab_size):
            raise ValueError(
                f"allowed_ids mask has shape {tuple(allowed_ids.shape)}; "
                f"need [{vocab_size}] or [{rows}, {vocab_size}] (rows, vocabulary)"
            )
        mask = mask.clone()
    else:
        ids = sorted({int(i) for i in allowed_ids})
        if ids and not (0 <= ids[0] and ids[-1] < vocab_size):
            raise ValueError(f"allowed_ids must lie in [0, {vocab_size}), got {ids[0]}..{ids[-1]}")
        mask = torch.zeros(rows, vocab_size, dtype=torch.bool, device=device)
        mask[:, ids] = True
    if eos_id is not None:
        mask[:, eos_id] = True
    if not bool(mask.any(dim=1).all()):
        raise ValueError("allowed_ids leaves a row with no token it may emit")
    return mask


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Clear errors for options out of range (named as the caller names them)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] or be None, got {top_p}")


def choose_tokens(
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next tokens ``[n]`` (long) from ``logits [n, V]``.

    ``temperature == 0``: argmax over the allowed ids (``top_k``/``top_p`` do not change it).
    ``> 0``: sample ``softmax(logits / temperature)`` restricted to the allowed ids, then to the
    ``top_k`` most likely, then to the smallest set whose probability reaches ``top_p`` (the most
    likely token always stays). ``generator`` seeds the draw (on its own device)."""
    logits = logits.float()
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the more likely ones already reach top_p
        drop = probs.cumsum(dim=-1) - probs >= top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    probs = logits.softmax(dim=-1)
    device = generator.device if generator is not None else probs.device
    out = torch.multinomial(probs.to(device), 1, generator=generator)[:, 0]
    return out.to(logits.device)
