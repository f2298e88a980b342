"""Greedy packing of documents into fixed-size rows that satisfy :class:`PackedBatch`.

``"patches"`` mode (LST) bounds both the global positions (``max_patches``) and the tokens
(``max_tokens``) of a row; ``"tokens"`` mode (the baselines) fills rows of ``max_tokens`` tokens with
one patch per token, so P == T. Whole documents go in while they fit; a document that does not fit
is cut at a patch boundary and the remainder starts the next row as a new document piece. Targets
never cross a piece: the last token of each piece, and padding, get ``IGNORE_INDEX``. A document
may come with a loss mask (fine-tuning on a task's answer span): a target whose token the mask
leaves out gets ``IGNORE_INDEX`` as well; without one (pre-training) every target counts.

Each row also counts, for the patching statistics, the speech-bearing documents that start in it,
how many of those were patched aligned, and the unit frames its speech tokens stand for; and, for
the mixture statistics, its tokens per document kind in baseline units (one per text token or
special, one per unit frame).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lst_lightning.data.stream.batch import IGNORE_INDEX, PAD_DOC, PackedBatch
from lst_lightning.data.stream.patching import patch_speech_mask

PackingMode = Literal["patches", "tokens"]


@dataclass(frozen=True)
class PackedRow:
    """One row of a :class:`PackedBatch`, as numpy arrays (cheap to build in DataLoader workers)."""

    tokens: np.ndarray
    targets: np.ndarray
    doc_ids: np.ndarray
    speech_targets: np.ndarray
    patch_lengths: np.ndarray
    speech_patches: np.ndarray
    speech_docs: int = 0
    """Documents with speech units whose first piece is in this row."""
    aligned_docs: int = 0
    """How many of ``speech_docs`` were patched aligned."""
    speech_frames: int = 0
    """Unit frames that this row's speech tokens stand for."""
    mixture_units: tuple[int, int, int] = (0, 0, 0)
    """Baseline units of the row from interleaved, speech-only and text-only documents (see
    :attr:`PackedBatch.mixture_units`); documents added without a kind are not counted."""

    @property
    def num_tokens(self) -> int:
        return int((self.doc_ids != PAD_DOC).sum())


class RowPacker:
    """Accumulates documents and emits full rows; call :meth:`flush` for the last, partial one."""

    def __init__(
        self,
        mode: PackingMode,
        max_tokens: int,
        max_patches: int,
        pad_id: int,
        is_unit: Callable[[np.ndarray], np.ndarray],
        min_piece_tokens: int = 2,
        speech_frames: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``min_piece_tokens``: a row is closed rather than given a shorter head of a document
        (a 1-token piece has no target at all, so it would only waste a position).
        ``speech_frames``: unit frames per token id (e.g. ``TokenSpace.speech_frames``); by
        default one frame per ``is_unit`` token."""
        if mode not in ("patches", "tokens"):
            raise ValueError(f"packing mode must be 'patches' or 'tokens', got {mode!r}")
        if max_tokens < 2 or max_patches < 1:
            raise ValueError(
                f"need max_tokens >= 2 and max_patches >= 1, got {max_tokens}, {max_patches}"
            )
        self.mode = mode
        self.max_tokens = max_tokens
        self.max_patches = max_tokens if mode == "tokens" else max_patches
        self.pad_id = pad_id
        self.is_unit = is_unit
        self.min_piece_tokens = min_piece_tokens
        self.speech_frames = speech_frames
        self._pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._tokens = 0
        self._patches = 0
        self._speech_docs = 0
        self._aligned_docs = 0
        self._pending: tuple[int, int] | None = None
        self._kind: int | None = None
        self._mixture = [0, 0, 0]
        self.rows_emitted = 0
        """Rows emitted so far: the index (from 0) of the row being filled."""

    def _frames(self, tokens: np.ndarray) -> np.ndarray:
        if self.speech_frames is not None:
            return np.asarray(self.speech_frames(tokens), dtype=np.int64)
        return np.asarray(self.is_unit(tokens), dtype=np.int64)

    def _lengths(self, num_tokens: int, patch_lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        if self.mode == "tokens":
            return np.ones(num_tokens, dtype=np.int64)
        lengths = np.asarray(patch_lengths, dtype=np.int64)
        if (lengths <= 0).any() or lengths.sum() != num_tokens:
            raise ValueError("patch lengths must be positive and sum to the document length")
        if lengths.max(initial=0) > self.max_tokens:
            raise ValueError(
                f"a patch of {lengths.max()} tokens exceeds max_tokens={self.max_tokens}"
            )
        return lengths

    def _head(self, num_tokens: int, lengths: np.ndarray) -> int:
        """Patches of a document that go into the row being filled: all of them, some (it is cut
        there), or 0 when the row is closed first (no patch fits, or only a head shorter than
        ``min_piece_tokens`` tokens would)."""
        free_tokens = self.max_tokens - self._tokens
        free_patches = self.max_patches - self._patches
        if num_tokens <= free_tokens and len(lengths) <= free_patches:
            return len(lengths)
        ends = np.cumsum(lengths)
        k = min(free_patches, int(np.searchsorted(ends, free_tokens, side="right")))
        if k == 0 or (ends[k - 1] < self.min_piece_tokens and self._pieces):
            return 0
        return k

    def starts_in_current_row(
        self, num_tokens: int, patch_lengths: Sequence[int] | np.ndarray
    ) -> bool:
        """Whether a document with these patches would begin in the row being filled (row
        :attr:`rows_emitted`) rather than in the next one."""
        return self._head(num_tokens, self._lengths(num_tokens, patch_lengths)) > 0

    def close_row(self) -> list[PackedRow]:
        """Emit the row being filled now (if it holds anything), so the next document starts a
        new row."""
        return [self._emit()] if self._pieces else []

    def add(
        self,
        tokens: np.ndarray,
        patch_lengths: Sequence[int] | np.ndarray,
        aligned: bool = False,
        kind: str | None = None,
        loss_mask: np.ndarray | None = None,
    ) -> list[PackedRow]:
        """Add one document; return the rows it completed (often none). ``aligned`` says how the
        document was patched (counted in the row that receives its first piece); ``kind``
        (``"interleaved"``, ``"speech"``, ``"text"``) is the mixture column its tokens count in.
        ``loss_mask``: one bool per token, ``True`` where predicting that token counts (e.g.
        :attr:`lst_lightning.downstream.tasks.TaskDocument.loss_mask`); ``None``: all of them."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if loss_mask is not None:
            loss_mask = np.asarray(loss_mask, dtype=bool)
            if loss_mask.shape != tokens.shape:
                raise ValueError(
                    f"loss_mask has shape {loss_mask.shape}, want one entry per token "
                    f"{tokens.shape}"
                )
        has_speech = bool(np.asarray(self.is_unit(tokens)).any())
        self._pending = (int(has_speech), int(has_speech and aligned))
        if kind is not None and kind not in PackedBatch.MIXTURE_KINDS:
            raise ValueError(
                f"document kind must be one of {', '.join(PackedBatch.MIXTURE_KINDS)}, got {kind!r}"
            )
        self._kind = None if kind is None else PackedBatch.MIXTURE_KINDS.index(kind)
        lengths = self._lengths(len(tokens), patch_lengths)
        rows: list[PackedRow] = []
        while len(lengths):
            k = self._head(len(tokens), lengths)
            if k == len(lengths):
                self._append(tokens, lengths, loss_mask)
                break
            if k == 0:
                rows.append(self._emit())
                continue
            ends = np.cumsum(lengths)
            cut = int(ends[k - 1])
            self._append(tokens[:cut], lengths[:k], None if loss_mask is None else loss_mask[:cut])
            tokens, lengths = tokens[cut:], lengths[k:]
            loss_mask = None if loss_mask is None else loss_mask[cut:]
            rows.append(self._emit())
        if self._tokens == self.max_tokens or self._patches == self.max_patches:
            rows.append(self._emit())
        return rows

    def flush(self) -> list[PackedRow]:
        """The last, partially filled row, if any."""
        return [self._emit()] if self._pieces else []

    def _append(
        self, tokens: np.ndarray, lengths: np.ndarray, loss_mask: np.ndarray | None = None
    ) -> None:
        self._pieces.append((tokens, lengths, loss_mask))
        self._tokens += len(tokens)
        self._patches += len(lengths)
        if self._kind is not None:
            speech = np.asarray(self.is_unit(tokens), dtype=bool)
            units = int((~speech).sum()) + int(self._frames(tokens).sum())
            self._mixture[self._kind] += units
        if self._pending is not None:  # the document's first piece
            self._speech_docs += self._pending[0]
            self._aligned_docs += self._pending[1]
            self._pending = None

    def _emit(self) -> PackedRow:
        t, p = self.max_tokens, self.max_patches
        tokens = np.full(t, self.pad_id, dtype=np.int64)
        targets = np.full(t, IGNORE_INDEX, dtype=np.int64)
        doc_ids = np.full(t, PAD_DOC, dtype=np.int64)
        patch_lengths = np.zeros(p, dtype=np.int64)
        pos = patch = 0
        for doc, (piece, lengths, mask) in enumerate(self._pieces):
            n = len(piece)
            tokens[pos : pos + n] = piece
            next_tokens = piece[1:] if mask is None else np.where(mask[1:], piece[1:], IGNORE_INDEX)
            targets[pos : pos + n - 1] = next_tokens
            doc_ids[pos : pos + n] = doc
            patch_lengths[patch : patch + len(lengths)] = lengths
            pos += n
            patch += len(lengths)
        speech_patches = np.zeros(p, dtype=bool)
        speech_patches[:patch] = patch_speech_mask(
            tokens[:pos], patch_lengths[:patch], self.is_unit
        )
        speech_targets = (targets != IGNORE_INDEX) & np.asarray(self.is_unit(targets), dtype=bool)
        row = PackedRow(
            tokens,
            targets,
            doc_ids,
            speech_targets,
            patch_lengths,
            speech_patches,
            speech_docs=self._speech_docs,
            aligned_docs=self._aligned_docs,
            speech_frames=int(self._frames(tokens[:pos]).sum()),
            mixture_units=(self._mixture[0], self._mixture[1], self._mixture[2]),
        )
        self._pieces, self._tokens, self._patches = [], 0, 0
        self._speech_docs = self._aligned_docs = 0
        self._mixture = [0, 0, 0]
        self.rows_emitted += 1
        return row


def pack_documents(
    documents: Iterable[tuple[np.ndarray, Sequence[int] | np.ndarray]],
    mode: PackingMode,
    max_tokens: int,
    max_patches: int,
    pad_id: int,
    is_unit: Callable[[np.ndarray], np.ndarray],
) -> Iterator[PackedRow]:
    """Pack ``(tokens, patch_lengths)`` documents, in order, into rows (the last one padded);
    documents count as static-patched in the row statistics."""
    packer = RowPacker(mode, max_tokens, max_patches, pad_id, is_unit)
    for tokens, lengths in documents:
        yield from packer.add(tokens, lengths)
    yield from packer.flush()


def collate(rows: Sequence[PackedRow], pad_multiple: int | None = 64) -> PackedBatch:
    """Stack rows into a :class:`PackedBatch` and check its invariants.

    Rows are padded to fixed sizes by the packer; columns that are padding in every row of the
    batch are cut off (keeping a multiple of ``pad_multiple``), so a batch of short, text-heavy rows
    does not pay for the token cap. ``pad_multiple=None`` keeps the packer's fixed shapes.
    """
    if not rows:
        raise ValueError("cannot collate an empty list of rows")

    def stack(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(r, name) for r in rows])).to(dtype)

    batch = PackedBatch(
        tokens=stack("tokens", torch.long),
        targets=stack("targets", torch.long),
        doc_ids=stack("doc_ids", torch.long),
        patch_lengths=stack("patch_lengths", torch.long),
        speech_targets=stack("speech_targets", torch.bool),
        speech_patches=stack("speech_patches", torch.bool),
        speech_docs=stack("speech_docs", torch.long),
        aligned_docs=stack("aligned_docs", torch.long),
        speech_frames=stack("speech_frames", torch.long),
        mixture_units=stack("mixture_units", torch.long),
    )
    if pad_multiple is not None:
        batch = trim_padding(batch, pad_multiple)
    batch.validate()
    return batch


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def trim_padding(batch: PackedBatch, multiple: int) -> PackedBatch:
    """Drop trailing token and patch columns that are padding in every row."""
    t_real = int((batch.doc_ids != PAD_DOC).sum(dim=1).max())
    p_real = int((batch.patch_lengths > 0).sum(dim=1).max())
    t = min(batch.tokens.shape[1], _round_up(t_real, multiple))
    p = min(batch.patch_lengths.shape[1], _round_up(p_real, multiple))
    return PackedBatch(
        tokens=batch.tokens[:, :t],
        targets=batch.targets[:, :t],
        doc_ids=batch.doc_ids[:, :t],
        patch_lengths=batch.patch_lengths[:, :p],
        speech_targets=batch.speech_targets[:, :t],
        speech_patches=batch.speech_patches[:, :p],
        speech_docs=batch.speech_docs,
        aligned_docs=batch.aligned_docs,
        speech_frames=batch.speech_frames,
        mixture_units=batch.mixture_units,
    )
