"""Patch arithmetic: everything the model derives from ``patch_lengths`` and ``doc_ids``.

Pure tensor functions, no parameters. Conventions (see ``lst_lightning.data.stream.batch.PackedBatch``):
patches are contiguous runs of tokens, real patches first, zero-length patches are padding, and
tokens after the last real patch are padding (document id ``-1``).
"""

from __future__ import annotations

import torch

PAD_DOC = -1


def positions_in_document(doc_ids: torch.Tensor) -> torch.Tensor:
    """Position of each element inside its run of equal ``doc_ids`` (restarts at 0 per document)."""
    b, t = doc_ids.shape
    idx = torch.arange(t, device=doc_ids.device).expand(b, t)
    is_start = torch.ones_like(doc_ids, dtype=torch.bool)
    is_start[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    start = torch.where(is_start, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - start


def patch_ends(patch_lengths: torch.Tensor) -> torch.Tensor:
    """Exclusive end offset of every patch ``[B, P]`` (equal to its start for empty patches)."""
    return patch_lengths.cumsum(dim=1)


def token_to_patch(patch_lengths: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Index of the patch holding each token, ``[B, T]``; tokens past the last patch get ``P``."""
    ends = patch_ends(patch_lengths).contiguous()
    idx = torch.arange(num_tokens, device=patch_lengths.device).expand(ends.shape[0], -1)
    return torch.searchsorted(ends, idx.contiguous(), right=True)


def closed_patch_before_target(patch_lengths: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """For each token ``t``, the last patch that ends at or before ``t`` (``-1`` if none), ``[B, T]``.

    The logits at ``t`` predict token ``t + 1``. If ``t`` closes patch ``j``, token ``t + 1`` opens
    patch ``j + 1`` and may use the global output of patch ``j``; inside a patch, tokens only see the
    global output of the previous patch. That is next-patch prediction: patch ``j + 1`` is
    predicted from global outputs ``<= j``.
    """
    ends = patch_ends(patch_lengths)
    # Trailing empty (padding) patches close nothing: push their ends past every token.
    ends = torch.where(patch_lengths > 0, ends, torch.full_like(ends, num_tokens + 1)).contiguous()
    idx = torch.arange(num_tokens, device=patch_lengths.device).expand(ends.shape[0], -1)
    return torch.searchsorted(ends, (idx + 1).contiguous(), right=True) - 1


def patch_doc_ids(patch_lengths: torch.Tensor, doc_ids: torch.Tensor) -> torch.Tensor:
    """Document id of each patch (that of its first token), ``PAD_DOC`` for empty patches."""
    starts = (patch_ends(patch_lengths) - patch_lengths).clamp(max=doc_ids.shape[1] - 1)
    docs = doc_ids.gather(1, starts)
    return torch.where(patch_lengths > 0, docs, torch.full_like(docs, PAD_DOC))


def max_pool_patches(
    states: torch.Tensor, patch_index: torch.Tensor, num_patches: int
) -> torch.Tensor:
    """Max over the tokens of each patch: ``states [B, T, D]`` -> ``[B, P, D]`` (0 for empty)."""
    b, _, d = states.shape
    out = states.new_full((b, num_patches + 1, d), float("-inf"))
    index = patch_index[:, :, None].expand(-1, -1, d)
    out = out.scatter_reduce(1, index, states, reduce="amax", include_self=True)[:, :num_patches]
    return torch.where(torch.isinf(out), torch.zeros_like(out), out)


def patch_starts(patch_lengths: torch.Tensor) -> torch.Tensor:
    """Offset of the first token of every patch ``[B, P]`` (empty patches start where they end)."""
    return patch_ends(patch_lengths) - patch_lengths


def encoder_cross_bounds(
    patch_lengths: torch.Tensor, patch_docs: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token range ``[lo, hi)`` each patch's queries attend to, ``[B, P]`` each.

    Patch ``q`` sees the tokens of patches ``q - window + 1 .. q`` of its own document. Patches
    are contiguous token spans, so those tokens form one contiguous range: from the start of the
    oldest patch in the window (never before the document's first patch) to the end of ``q``.
    Empty (padding) patches get an empty range.
    """
    b, p = patch_lengths.shape
    idx = torch.arange(p, device=patch_lengths.device).expand(b, p)
    oldest = idx - positions_in_document(patch_docs).clamp(max=window - 1)
    lo = patch_starts(patch_lengths).gather(1, oldest)
    hi = patch_ends(patch_lengths)
    return torch.where(patch_lengths > 0, lo, hi), hi


def decoder_cross_bounds(
    patch_lengths: torch.Tensor, doc_ids: torch.Tensor, patch_docs: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch range ``[lo, hi)`` of the global outputs each token reads, ``[B, T]`` each.

    The newest is the last patch closed at or before the token (:func:`closed_patch_before_target`,
    so never the token's own patch or a later one); the window reaches back ``window - 1`` more
    patches, never past the first patch of the token's document. Tokens with no closed patch in
    their document (inside its first patch, and padding tokens) get the empty range ``[0, 0)``:
    the decoder gives them its learned start context instead.
    """
    closed = closed_patch_before_target(patch_lengths, doc_ids.shape[1])
    safe = closed.clamp(min=0)
    own = (closed >= 0) & (patch_docs.gather(1, safe) == doc_ids)
    back = positions_in_document(patch_docs).gather(1, safe).clamp(max=window - 1)
    zero = torch.zeros_like(closed)
    return torch.where(own, safe - back, zero), torch.where(own, safe + 1, zero)
