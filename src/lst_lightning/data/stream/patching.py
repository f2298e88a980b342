"""Patch lengths on the data side: how many tokens each global position of a document covers.

Every text token and special token is a length-1 patch; only speech runs (an ``<s>`` and the units
after it) are grouped (DESIGN sections 2-3). The model receives these lengths and never re-derives
them, so patching strategies change here without touching the model.

Strategies (:data:`PatchingStrategy`, chosen per experiment by ``data.patching``):

- ``static``: :func:`static_patch_lengths`, chunks of ``p`` tokens (paper: p=4; ablations 6, 9).
- ``aligned``: :func:`aligned_patch_lengths`, one patch per word and one per silence gap.
- ``aligned_merged``: the same with each silence merged into a neighbouring word.
- ``aligned_bpe``: :func:`aligned_bpe_patch_lengths`, one patch per BPE piece of each word.
- ``mixed``: aligned (silence separate) with probability ``aligned_prob`` per document, else static.
- ``curriculum``: like mixed, with the probability :func:`curriculum_probability` of the step.

Validation, test and generation always use static patches (no aligner is needed at test time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from lst_lightning.data.stream.documents import EncodedDocument, SpeechRun

PatchingStrategy = Literal[
    "static", "aligned", "aligned_merged", "aligned_bpe", "mixed", "curriculum"
]
STRATEGIES: tuple[str, ...] = get_args(PatchingStrategy)


def _patch_runs(
    doc: EncodedDocument, run_patches: Callable[[SpeechRun], list[int]], max_len: int | None
) -> list[int]:
    """Length-1 patches outside speech runs and ``run_patches(run)`` inside each run.

    ``max_len`` cuts any longer patch into pieces of ``max_len`` tokens (and a remainder), so a
    long silence or word can never exceed a row's token budget.
    """
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    lengths: list[int] = []
    pos = 0
    for run in doc.speech_runs:
        if run.start < pos or run.start + run.length > len(doc):
            raise ValueError(f"speech run at {run.start} overlaps another or leaves the document")
        lengths += [1] * (run.start - pos)
        patches = run_patches(run)
        if sum(patches) != run.length or min(patches, default=1) < 1:
            raise ValueError(f"the patches of the speech run at {run.start} do not tile it")
        for n in patches:
            if max_len is not None and n > max_len:
                full, rest = divmod(n, max_len)
                lengths += [max_len] * full + ([rest] if rest else [])
            else:
                lengths.append(n)
        pos = run.start + run.length
    lengths += [1] * (len(doc) - pos)
    return lengths


def static_patch_lengths(doc: EncodedDocument, p: int) -> list[int]:
    """static(p): each ``<s>``+units run is cut into chunks of ``p`` tokens from its start.

    The ``<s>`` belongs to the run, so the first chunk holds ``<s>`` and ``p - 1`` units and the last
    chunk may be shorter. Lengths sum to ``len(doc)``; a patch never leaves its document.
    """
    if p < 1:
        raise ValueError(f"patch size must be >= 1, got {p}")

    def chunks(run: SpeechRun) -> list[int]:
        full, rest = divmod(run.length, p)
        return [p] * full + ([rest] if rest else [])

    return _patch_runs(doc, chunks, None)


def _check_unit_tokens(run: SpeechRun) -> None:
    if not run.one_token_per_unit:
        raise ValueError(
            f"aligned patching needs one token per unit frame, but the speech run at {run.start} "
            f"has {run.length - 1} tokens for {run.num_units} frames (unit BPE?): use static"
        )


def _with_speech_token(groups: list[int]) -> list[int]:
    """The ``<s>`` joins the run's first patch; a run without frames is the lone ``<s>``."""
    return [1 + groups[0], *groups[1:]] if groups else [1]


def aligned_patch_lengths(
    doc: EncodedDocument,
    silence: Literal["separate", "merged"] = "separate",
    max_len: int | None = None,
) -> list[int]:
    """Aligned patches: one per spoken word of each speech run.

    Rules (the paper does not state them; ours):
    - the ``<s>`` that opens a run joins the run's first patch, as in static patching, so a run
      of ``n`` word and silence segments is exactly ``n`` global positions;
    - ``silence="separate"`` (paper default): each silence gap is its own patch;
    - ``silence="merged"``: a silence joins the word before it (a word's patch lasts until the next
      word starts, i.e. patch boundaries are word onsets); silence before the run's first word joins
      that word; a run with no word at all is one patch;
    - a zero-frame word has no patch (records keep it, documents drop it);
    - ``max_len`` cuts a longer patch into ``max_len``-token pieces.
    """
    if silence not in ("separate", "merged"):
        raise ValueError(f"silence must be 'separate' or 'merged', got {silence!r}")

    def run_patches(run: SpeechRun) -> list[int]:
        _check_unit_tokens(run)
        if silence == "separate" or all(run.silence):
            groups = list(run.segments) if silence == "separate" else [run.num_units]
            return _with_speech_token([g for g in groups if g])
        first_word = run.silence.index(False)
        groups = [sum(run.segments[: first_word + 1])]
        for n, is_silence in zip(
            run.segments[first_word + 1 :], run.silence[first_word + 1 :], strict=True
        ):
            if is_silence:
                groups[-1] += n
            else:
                groups.append(n)
        return _with_speech_token(groups)

    return _patch_runs(doc, run_patches, max_len)


def split_frames(frames: int, weights: Sequence[int]) -> list[int]:
    """Share ``frames`` between parts in proportion to ``weights``, by rounding the cumulative
    boundaries (``round(frames * prefix_weight / total)``, halves up); parts may be 0 and always
    sum to ``frames``."""
    if frames < 0 or not weights or min(weights) < 1:
        raise ValueError(f"need frames >= 0 and positive weights, got {frames}, {list(weights)}")
    total = sum(weights)
    bounds = [(2 * frames * c + total) // (2 * total) for c in np.cumsum(weights).tolist()]
    return [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]


def aligned_bpe_patch_lengths(
    doc: EncodedDocument,
    piece_sizes: Callable[[str], list[int]],
    max_len: int | None = None,
) -> list[int]:
    """BPE-aligned patches: one per BPE piece of each spoken word (paper's variant, about 5.0
    units per patch), silence gaps separate.

    The aligner gives word timings only, so a word's frames are shared between its pieces in
    proportion to their character counts (``piece_sizes(word)``, e.g.
    :meth:`~lst_lightning.data.vocab.TokenSpace.text_piece_sizes`) by :func:`split_frames`; a
    piece that gets no frame has no patch. ``<s>`` and ``max_len`` as in
    :func:`aligned_patch_lengths`.
    """

    def run_patches(run: SpeechRun) -> list[int]:
        _check_unit_tokens(run)
        groups: list[int] = []
        for n, is_silence, word in zip(run.segments, run.silence, run.words, strict=True):
            sizes = [] if is_silence else piece_sizes(word)
            groups += [n] if not sizes else [k for k in split_frames(n, sizes) if k]
        return _with_speech_token(groups)

    return _patch_runs(doc, run_patches, max_len)


def token_patch_lengths(doc: EncodedDocument) -> list[int]:
    """One patch per token: the layout of the unpatched baselines (P == T)."""
    return [1] * len(doc)


def curriculum_probability(step: int, start: int, end: int) -> float:
    """Probability of aligned patching at optimizer step ``step``: 1 before ``start``, falling
    linearly to 0 at ``end``, 0 from ``end`` on (paper: start = T/3, end = 2T/3)."""
    if not 0 <= start <= end:
        raise ValueError(f"need 0 <= curriculum start <= end, got {start}, {end}")
    if step < start:
        return 1.0
    if step >= end:
        return 0.0
    return (end - step) / (end - start)


@dataclass(frozen=True)
class PatchingSchedule:
    """Which patches the training documents get, as a pure function of the optimizer step.

    ``curriculum_start`` / ``curriculum_end`` are steps here; the datamodule resolves fractions of
    ``max_steps`` before building one.
    """

    strategy: PatchingStrategy = "static"
    """The strategy (module docstring); the paper's best is ``curriculum``."""
    patch_size: int = 4
    """Static patch size ``p`` in tokens, ``<s>`` included (paper: 4)."""
    aligned_prob: float = 0.5
    """``mixed`` only: probability that a document is patched aligned."""
    curriculum_start: int = 0
    """``curriculum`` only: last step with probability 1 is ``curriculum_start - 1``."""
    curriculum_end: int = 0
    """``curriculum`` only: first step with probability 0."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"patching must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        if not 0.0 <= self.aligned_prob <= 1.0:
            raise ValueError(f"aligned_prob must be in [0, 1], got {self.aligned_prob}")
        curriculum_probability(0, self.curriculum_start, self.curriculum_end)

    @property
    def draws(self) -> bool:
        """True when each document draws static or aligned (``mixed``, ``curriculum``)."""
        return self.strategy in ("mixed", "curriculum")

    def aligned_probability(self, step: int) -> float:
        """Probability that a document built at ``step`` is patched aligned."""
        if self.strategy == "static":
            return 0.0
        if self.strategy == "mixed":
            return self.aligned_prob
        if self.strategy == "curriculum":
            return curriculum_probability(step, self.curriculum_start, self.curriculum_end)
        return 1.0

    def patch_lengths(
        self,
        doc: EncodedDocument,
        aligned: bool,
        piece_sizes: Callable[[str], list[int]] | None = None,
        max_len: int | None = None,
    ) -> list[int]:
        """The document's patches, aligned (in this strategy's flavour) or static."""
        if not aligned:
            return static_patch_lengths(doc, self.patch_size)
        if self.strategy == "aligned_merged":
            return aligned_patch_lengths(doc, "merged", max_len)
        if self.strategy == "aligned_bpe":
            if piece_sizes is None:
                raise ValueError("aligned_bpe patching needs the text tokenizer's piece sizes")
            return aligned_bpe_patch_lengths(doc, piece_sizes, max_len)
        return aligned_patch_lengths(doc, "separate", max_len)


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
