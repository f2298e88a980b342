"""The one batch type that flows from the data pipeline into every model.

A row packs several documents. The model derives everything else (token -> patch index, positions
within a document, patch-level document ids) from these fields, so the data side never has to keep
redundant copies in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch

IGNORE_INDEX = -100
"""Target value that the loss skips (padding, the last token of each document)."""

PAD_DOC = -1
"""Document id of padding tokens and padding patches."""


@dataclass
class PackedBatch:
    """A batch of packed rows.

    Invariants (checked by :meth:`validate`):
    - ``tokens``, ``targets``, ``doc_ids``, ``speech_targets``: ``[B, T]``.
    - ``patch_lengths``: ``[B, P]``, one entry per global position, ``>= 0``. Real tokens come first
      in a row and are covered by the leading patches; ``patch_lengths[b].sum()`` is the number of real
      tokens of row ``b``; zero-length patches are padding and come last.
    - Documents are contiguous; ``doc_ids`` counts 0, 1, 2... along a row and is ``PAD_DOC`` on padding.
      A patch never crosses a document boundary.
    - ``targets[b, t]`` is the token that follows ``tokens[b, t]`` in the same document, or
      ``IGNORE_INDEX``.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    doc_ids: torch.Tensor
    patch_lengths: torch.Tensor
    speech_targets: torch.Tensor
    """True where the target is a speech unit (for the speech/text loss split)."""
    speech_patches: torch.Tensor
    """``[B, P]`` True where the patch holds speech units (for patch-length statistics)."""
    speech_docs: torch.Tensor | None = None
    """``[B]`` documents holding speech units whose first piece is in the row (a document split
    across rows counts once); ``None`` when the producer does not count (patching statistics)."""
    aligned_docs: torch.Tensor | None = None
    """``[B]`` how many of ``speech_docs`` were patched aligned rather than static."""
    speech_frames: torch.Tensor | None = None
    """``[B]`` unit frames (25 Hz) that the row's speech tokens stand for: one per unit token, a
    piece's unit count with a unit BPE. Speech seconds = frames / 25."""
    mixture_units: torch.Tensor | None = None
    """``[B, 3]`` the row's tokens from interleaved, speech-only and text-only documents (order of
    :data:`MIXTURE_KINDS`), counted in baseline units: one per text token or special and one per
    unit frame (a unit-BPE piece counts its units), i.e. what ``data.mixture`` shares are of;
    ``None`` when the producer does not count."""

    MIXTURE_KINDS: ClassVar[tuple[str, ...]] = ("interleaved", "speech", "text")
    """The document kinds of ``mixture_units``' columns."""
    COUNTS: ClassVar[tuple[str, ...]] = ("speech_docs", "aligned_docs", "speech_frames")
    """The optional per-row counters: all present or all ``None``."""

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                for f in fields(self)
            }
        )

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int((self.doc_ids != PAD_DOC).sum())

    @property
    def num_patches(self) -> int:
        """Real (non-empty) global positions in the batch."""
        return int((self.patch_lengths > 0).sum())

    def validate(self) -> None:
        """Raise ``ValueError`` naming the broken invariant; used by tests and by the data pipeline."""
        b, t = self.tokens.shape
        for name in ("targets", "doc_ids", "speech_targets"):
            if getattr(self, name).shape != (b, t):
                raise ValueError(
                    f"{name} has shape {tuple(getattr(self, name).shape)}, want {(b, t)}"
                )
        if self.patch_lengths.dim() != 2 or self.patch_lengths.shape[0] != b:
            raise ValueError(
                f"patch_lengths has shape {tuple(self.patch_lengths.shape)}, want [B, P]"
            )
        if self.speech_patches.shape != self.patch_lengths.shape:
            raise ValueError("speech_patches must have the shape of patch_lengths")
        if (self.patch_lengths < 0).any():
            raise ValueError("patch_lengths must be >= 0")
        real = (self.doc_ids != PAD_DOC).sum(dim=1)
        if not torch.equal(self.patch_lengths.sum(dim=1), real):
            raise ValueError("patch lengths must sum to the number of real tokens in each row")
        if self.mixture_units is not None:
            if self.mixture_units.shape != (b, len(self.MIXTURE_KINDS)):
                raise ValueError(
                    f"mixture_units has shape {tuple(self.mixture_units.shape)}, want ({b}, 3)"
                )
            if (self.mixture_units < 0).any():
                raise ValueError("mixture_units must be >= 0")
        counts = [getattr(self, name) for name in self.COUNTS]
        if all(c is None for c in counts):
            return
        for name, value in zip(self.COUNTS, counts, strict=True):
            if value is None or value.shape != (b,):
                shape = None if value is None else tuple(value.shape)
                raise ValueError(f"{name} has shape {shape}, want ({b},) like the other counters")
            if (value < 0).any():
                raise ValueError(f"{name} must be >= 0")
        if (self.aligned_docs > self.speech_docs).any():
            raise ValueError("aligned_docs cannot exceed speech_docs")
