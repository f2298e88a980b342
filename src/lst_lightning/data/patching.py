"""Patch lengths on the data side: how many tokens each global position of a document covers.

Every text token and special token is a length-1 patch; only speech runs (an ``<s>`` and the units
after it) are grouped (DESIGN sections 2-3). The model receives these lengths and never re-derives
them, so patching strategies can change here without touching the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lst_lightning.data.documents import EncodedDocument


def static_patch_lengths(doc: EncodedDocument, p: int) -> list[int]:
    """static(p): each ``<s>``+units run is cut into chunks of ``p`` tokens from its start.

    The ``<s>`` belongs to the run, so the first chunk holds ``<s>`` and ``p - 1`` units and the last
    chunk may be shorter. Lengths sum to ``len(doc)``; a patch never leaves its document.
    """
    if p < 1:
        raise ValueError(f"patch size must be >= 1, got {p}")
    lengths: list[int] = []
    pos = 0
    for run in doc.speech_runs:
        if run.start < pos or run.start + run.length > len(doc):
            raise ValueError(f"speech run at {run.start} overlaps another or leaves the document")
        lengths += [1] * (run.start - pos)
        full, rest = divmod(run.length, p)
        lengths += [p] * full + ([rest] if rest else [])
        pos = run.start + run.length
    lengths += [1] * (len(doc) - pos)
    return lengths


def token_patch_lengths(doc: EncodedDocument) -> list[int]:
    """One patch per token: the layout of the unpatched baselines (P == T)."""
    return [1] * len(doc)


def patch_speech_mask(
    tokens: np.ndarray, lengths: np.ndarray | list[int], is_unit: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """True for each patch that holds at least one speech unit (an ``<s>`` alone does not count)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return np.zeros(0, dtype=bool)
    if (lengths <= 0).any() or lengths.sum() != len(tokens):
        raise ValueError("patch lengths must be positive and sum to the number of tokens")
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return np.maximum.reduceat(np.asarray(is_unit(tokens), dtype=np.int8), starts) > 0
