"""Analytic FLOPs of LST and the Base SpeechLLM, from a config and the layout of a packed batch.

Convention (what is counted):
- A multiply-accumulate is 2 FLOPs. Counted: every linear projection (attention, SwiGLU, the patch
  projections, the output head) and the two products of every attention (scores ``q.k`` and the
  weighted sum of values: ``4 * d_model`` FLOPs per query-key pair per layer). Not counted: norms,
  softmax, RoPE, activations, max-pooling, embedding lookups and the loss (elementwise, a few
  percent at most on small models and far less at 1B).
- Training FLOPs are 3x forward FLOPs (the backward pass costs two matmuls per forward matmul: the
  gradient of the input and of the weight).
- Attention pairs, two ways (``attention=``):
  ``"causal"`` counts only the pairs the mask allows: same packed document, key not after the
  query, inside the sliding window (a query at position ``i`` of its document sees
  ``min(i + 1, window)`` keys). That is the work flash-attn's varlen kernel does (up to its tile
  granularity) and the usual "model FLOPs" of MFU; the kit logs and budgets with it.
  ``"dense"`` counts ``T x T`` pairs per row, what SDPA with a boolean mask computes and what
  ``torch.utils.flop_counter.FlopCounterMode`` reports.
  The windowed patch cross-attentions follow the same two conventions: ``"causal"`` counts the
  pairs inside the windows (:func:`encoder_cross_pairs`, :func:`decoder_cross_pairs`; what the CUDA
  flex_attention kernel computes, up to its 128 x 128 block granularity), ``"dense"`` every query
  against every key of the row (what the CPU's masked SDPA computes).
- Padding is counted: the kernels compute on the padded tensors. A run of padding is one
  "document", as in :func:`lst_lightning.model.attention.document_cu_seqlens`.

Everything counts the modules as implemented in this package (for instance the decoder
cross-attention projects keys and values once per patch, ``(P + 1) * k`` vectors per row with the
learned start context).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from .attention import document_cu_seqlens
from .config import BaselineConfig, LSTConfig, TransformerConfig
from .patching import PAD_DOC, patch_doc_ids

AttentionCount = Literal["causal", "dense"]
TRAINING_MULTIPLIER = 3
"""Forward + backward = 3x the forward matmul FLOPs."""


@dataclass(frozen=True)
class Layout:
    """The shape statistics a batch's FLOPs depend on.

    ``token_runs`` are the lengths of the maximal runs of equal document ids along each row of the
    token stream (padding runs included), so they sum to ``rows * token_columns``; ``patch_runs``
    are the same for the global positions. For the baselines the patch stream is the token stream.
    ``doc_patches`` holds the patch lengths of every real (non-padding) document, which the
    windowed cross-attention pairs depend on (all 1 for token-level layouts).
    """

    rows: int
    token_columns: int
    patch_columns: int
    token_runs: tuple[int, ...]
    patch_runs: tuple[int, ...]
    doc_patches: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if sum(self.token_runs) != self.rows * self.token_columns:
            raise ValueError(
                f"token_runs sum to {sum(self.token_runs)}, want rows x token_columns = "
                f"{self.rows * self.token_columns}"
            )
        if sum(self.patch_runs) != self.rows * self.patch_columns:
            raise ValueError(
                f"patch_runs sum to {sum(self.patch_runs)}, want rows x patch_columns = "
                f"{self.rows * self.patch_columns}"
            )

    @property
    def tokens(self) -> int:
        """Token positions computed on (``B x T``, padding included)."""
        return self.rows * self.token_columns

    @property
    def patches(self) -> int:
        """Global positions computed on (``B x P``, padding included)."""
        return self.rows * self.patch_columns

    @classmethod
    def from_batch(cls, doc_ids: torch.Tensor, patch_lengths: torch.Tensor | None) -> Layout:
        """The layout of a packed batch; ``patch_lengths=None`` for token-level models."""
        rows, t = doc_ids.shape
        token_runs = _run_lengths(doc_ids)
        if patch_lengths is None:  # one patch per real token (padding trails every row)
            ones = (doc_ids != PAD_DOC).long()
            return cls(rows, t, t, token_runs, token_runs, _document_patches(ones, doc_ids))
        patch_docs = patch_doc_ids(patch_lengths, doc_ids)
        patch_runs = _run_lengths(patch_docs)
        return cls(
            rows,
            t,
            patch_lengths.shape[1],
            token_runs,
            patch_runs,
            _document_patches(patch_lengths, patch_docs),
        )

    @property
    def real_tokens(self) -> int:
        """Tokens inside real documents (the patches' lengths summed)."""
        return sum(sum(doc) for doc in self.doc_patches)


def _document_patches(
    patch_lengths: torch.Tensor, patch_docs: torch.Tensor
) -> tuple[tuple[int, ...], ...]:
    docs: list[tuple[int, ...]] = []
    for lengths, ids in zip(patch_lengths.tolist(), patch_docs.tolist(), strict=True):
        run: list[int] = []
        for i, (n, doc) in enumerate(zip(lengths, ids, strict=True)):
            if doc != PAD_DOC:
                run.append(n)
            if run and (i + 1 == len(ids) or ids[i + 1] != doc):
                docs.append(tuple(run))
                run = []
    return tuple(docs)


def _run_lengths(doc_ids: torch.Tensor) -> tuple[int, ...]:
    cu, _ = document_cu_seqlens(doc_ids)
    return tuple((cu[1:] - cu[:-1]).tolist())


def causal_pairs(run_lengths: Iterable[int], window: int | None) -> int:
    """Query-key pairs of causal attention inside each run, keys limited to ``window``."""
    total = 0
    for n in run_lengths:
        w = n if window is None else min(window, n)
        # Positions 0..w-1 see 1..w keys; the remaining n - w positions see w keys each.
        total += w * (w + 1) // 2 + (n - w) * w
    return total


def attention_pairs(
    runs: tuple[int, ...], rows: int, columns: int, window: int | None, attention: AttentionCount
) -> int:
    """Pairs one attention layer computes over a stream, under the chosen convention."""
    if attention == "causal":
        return causal_pairs(runs, window)
    if attention == "dense":
        return rows * columns * columns
    raise ValueError(f"attention must be 'causal' or 'dense', got {attention!r}")


def encoder_cross_pairs(layout: Layout, window: int, k: int) -> int:
    """Query-key pairs of one encoder cross-attention layer inside the windows: the ``k`` queries
    of patch ``q`` meet the tokens of patches ``q - window + 1 .. q`` of its document, so patch
    ``i`` of an ``n``-patch document is seen by ``min(window, n - i)`` patches."""
    return k * sum(
        n * min(window, len(doc) - i) for doc in layout.doc_patches for i, n in enumerate(doc)
    )


def decoder_cross_pairs(layout: Layout, window: int, k: int) -> int:
    """Query-key pairs of one decoder cross-attention layer inside the windows: a token meets the
    ``k`` vectors of each of the ``min(c, window)`` newest global outputs of its document, where
    ``c`` is the number of its document's patches closed by the token, or the ``k`` start vectors
    when ``c = 0`` (inside the first patch, and every padding token). In a document with patch
    lengths ``L_0 .. L_{n-1}``, ``c`` is 0 for ``L_0 - 1`` tokens, ``j + 1`` for the ``L_{j+1}``
    tokens from the end of patch ``j`` on, and ``n`` for the last token."""
    pairs = layout.tokens - layout.real_tokens  # padding: the start context
    for doc in layout.doc_patches:
        pairs += doc[0] - 1 + min(len(doc), window)
        pairs += sum(n * min(j + 1, window) for j, n in enumerate(doc[1:]))
    return k * pairs


@dataclass(frozen=True)
class FlopsCount:
    """Forward FLOPs of one batch, split by component into linear layers and attention products."""

    linear: dict[str, int]
    """Linear projections, independent of the attention convention."""
    attention: dict[str, int]
    """Attention scores and weighted values (``4 * d_model`` per query-key pair per layer)."""

    @property
    def forward(self) -> int:
        return sum(self.linear.values()) + sum(self.attention.values())

    @property
    def training(self) -> int:
        return TRAINING_MULTIPLIER * self.forward

    def component(self, name: str) -> int:
        """Forward FLOPs of one component (linear + attention)."""
        if name not in self.linear and name not in self.attention:
            raise KeyError(f"unknown component {name!r}; known: {sorted(self.linear)}")
        return self.linear.get(name, 0) + self.attention.get(name, 0)


def block_linear_flops(config: TransformerConfig, positions: int) -> int:
    """One Llama block's projections: q, k, v, o (``4 d^2``) and SwiGLU (``3 d h``) per position."""
    d = config.d_model
    return 2 * positions * (4 * d * d + 3 * d * config.hidden)


def stack_flops(
    config: TransformerConfig,
    positions: int,
    runs: tuple[int, ...],
    rows: int,
    columns: int,
    attention: AttentionCount,
) -> tuple[int, int]:
    """``(linear, attention)`` forward FLOPs of ``config.n_layers`` blocks over one stream."""
    pairs = attention_pairs(runs, rows, columns, config.window, attention)
    layers = config.n_layers
    return layers * block_linear_flops(config, positions), layers * 4 * config.d_model * pairs


def lst_forward_flops(
    config: LSTConfig, layout: Layout, attention: AttentionCount = "causal"
) -> FlopsCount:
    """Forward FLOPs of :class:`lst_lightning.model.LST` on a batch with this layout."""
    enc, glob, dec, k = (
        config.encoder,
        config.global_model,
        config.decoder,
        config.queries_per_patch,
    )
    n, m, d, big_d = layout.tokens, layout.patches, enc.d_model, glob.d_model
    rows, t, p = layout.rows, layout.token_columns, layout.patch_columns
    linear: dict[str, int] = {}
    attn: dict[str, int] = {}

    linear["encoder.blocks"], attn["encoder.blocks"] = stack_flops(
        enc, n, layout.token_runs, rows, t, attention
    )
    if layout.patches and not layout.doc_patches:
        raise ValueError("the layout has no per-document patch lengths: build it with from_batch")
    contexts = (m + rows) * k  # the decoder's keys: k per patch, k start vectors per row
    if attention == "dense":
        enc_pairs, dec_pairs = m * k * t, n * (p + 1) * k
    else:
        enc_pairs = encoder_cross_pairs(layout, config.cross_window_encoder, k)
        dec_pairs = decoder_cross_pairs(layout, config.cross_window_decoder, k)
    # Patch cross-attention per layer: q and out projections on m*k query vectors, k/v on the
    # tokens, and the query-key pairs inside the windows.
    linear["encoder.cross_attention"] = enc.n_layers * 2 * (2 * m * k * d * d + n * d * 2 * d)
    attn["encoder.cross_attention"] = enc.n_layers * 4 * d * enc_pairs
    # Max-pool -> k queries per patch, and the k concatenated query vectors -> the global width.
    linear["encoder.patch_projections"] = 2 * m * d * k * d + 2 * m * k * d * big_d

    linear["global.blocks"], attn["global.blocks"] = stack_flops(
        glob, m, layout.patch_runs, rows, p, attention
    )

    # Global output -> k key/value vectors of width d, per patch.
    linear["decoder.context"] = 2 * m * big_d * k * d
    # Token cross-attention per layer: q and out projections per token, k/v once per context
    # (P patches + the start context per row, k vectors each), and the pairs inside the windows.
    linear["decoder.cross_attention"] = dec.n_layers * 2 * (2 * n * d * d + contexts * d * 2 * d)
    attn["decoder.cross_attention"] = dec.n_layers * 4 * d * dec_pairs
    linear["decoder.blocks"], attn["decoder.blocks"] = stack_flops(
        dec, n, layout.token_runs, rows, t, attention
    )
    linear["decoder.head"] = 2 * n * d * config.vocab_size
    return FlopsCount(linear, attn)


def baseline_forward_flops(
    config: BaselineConfig, layout: Layout, attention: AttentionCount = "causal"
) -> FlopsCount:
    """Forward FLOPs of :class:`lst_lightning.model.SpeechLLM` (patch lengths play no part)."""
    tc = config.transformer
    lin, att = stack_flops(
        tc, layout.tokens, layout.token_runs, layout.rows, layout.token_columns, attention
    )
    head = 2 * layout.tokens * tc.d_model * config.vocab_size
    return FlopsCount({"blocks": lin, "head": head}, {"blocks": att})


def forward_flops(
    config: LSTConfig | BaselineConfig, layout: Layout, attention: AttentionCount = "causal"
) -> FlopsCount:
    """Forward FLOPs of whichever model ``config`` describes."""
    if isinstance(config, LSTConfig):
        return lst_forward_flops(config, layout, attention)
    if isinstance(config, BaselineConfig):
        return baseline_forward_flops(config, layout, attention)
    raise TypeError(f"no FLOPs formula for {type(config).__name__}")


def batch_training_flops(
    config: LSTConfig | BaselineConfig,
    doc_ids: torch.Tensor,
    patch_lengths: torch.Tensor | None,
    attention: AttentionCount = "causal",
) -> int:
    """Training FLOPs (forward + backward) of one packed batch."""
    if isinstance(config, BaselineConfig):
        patch_lengths = None
    return forward_flops(config, Layout.from_batch(doc_ids, patch_lengths), attention).training
