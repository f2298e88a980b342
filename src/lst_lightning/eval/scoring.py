"""Log-likelihood scoring of multiple-choice candidates with any model of the kit.

Each candidate is one document: ``BOS <prompt span> <ending span> EOS`` in the token space the model
was trained on. The prompt is spoken (``<s>`` + units) or written (``<t>`` + BPE) and so is the
ending:

- T->T: ``BOS <t> prompt␣ending EOS`` (one text span, as text-only training documents);
- S->S: ``BOS <s> prompt-units ending-units EOS`` (one speech run: the separately rendered prompt
  and ending joined);
- S->T: ``BOS <s> prompt-units <t> ending EOS`` and T->S: ``BOS <t> prompt <s> ending-units EOS``.

Only the ending's own tokens (its BPE pieces or units) are scored: not the prompt, not the ``<t>``
/ ``<s>`` that opens a cross-modal ending (it is the same for every candidate, so it carries no
information about the choice), not the EOS. LST sees static patches of the data's patch size
(patching strategies are for training; evaluation needs no aligner), the baselines one patch per
token. Candidates are packed several per row as separate documents, as in training, and scored
with the training loss' own cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lst_lightning.data.stream.batch import IGNORE_INDEX, PAD_DOC, PackedBatch
from lst_lightning.data.stream.documents import EncodedDocument, SpeechRun
from lst_lightning.data.stream.patching import patch_speech_mask, static_patch_lengths
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.tasks import Benchmark, BenchmarkItem, _split_direction

RULES = ("per_char", "per_token", "sum")
"""Scoring rules: log-likelihood of the ending per character of its text, per scored token, summed."""
HEADLINE_RULE = "per_char"
"""The headline of story sets: per character of the ending's text is the one normalisation that
means the same thing whether the ending is 8 BPE pieces or 80 speech units, so the four
directions compare."""
MINIMAL_PAIR_RULE = "sum"
"""The headline of minimal pairs (no prompt): the summed log-likelihood of the whole candidate,
as the Zero Resource protocol scores sWUGGY / sBLIMP. The pairs are built length-matched (same
characters; spoken: same unit count or balanced), so the sum compares like with like, whereas
dividing by a count that differs by a unit or two would reward the longer rendering."""


def headline_rule(benchmark: Benchmark) -> str:
    """``sum`` for minimal-pair sets, ``per_char`` for story sets."""
    return MINIMAL_PAIR_RULE if benchmark.is_minimal_pair else HEADLINE_RULE


Model = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``model(tokens [B, T], doc_ids [B, T], patch_lengths [B, P]) -> logits [B, T, V]``."""


@dataclass(frozen=True)
class Candidate:
    """One scored document: its tokens, the ``[start, end)`` range of ending tokens it scores,
    its patch lengths and the character count of the ending's text (0 when it has none)."""

    tokens: np.ndarray
    start: int
    end: int
    patch_lengths: np.ndarray
    chars: int

    @property
    def num_scored(self) -> int:
        return self.end - self.start


def build_candidate(
    item: BenchmarkItem, choice: int, direction: str, space: TokenSpace, patch_size: int | None
) -> Candidate:
    """The document of ending ``choice`` of ``item`` in ``direction`` (see the module docstring).

    ``patch_size``: static patch size for LST, ``None`` for one patch per token (baselines).
    Speech goes through ``space.encode_units`` (a unit BPE re-tokenises it for the BPE baseline;
    the prompt and the ending are then encoded separately so that the ending's tokens are exact).
    """
    if not item.supports(direction):
        raise ValueError(f"{item.id}: has no form for direction {direction}")
    src, dst = _split_direction(direction)
    tokens = [space.bos_id]
    runs: list[SpeechRun] = []

    def open_speech() -> None:
        runs.append(SpeechRun(start=len(tokens), length=1, segments=(), silence=(), words=()))
        tokens.append(space.speech_id)

    def add_units(units: tuple[int, ...], label: str) -> None:
        ids = space.encode_units(units)
        tokens.extend(ids)
        last = runs[-1]
        runs[-1] = SpeechRun(
            start=last.start,
            length=last.length + len(ids),
            segments=(*last.segments, len(units)),
            silence=(*last.silence, False),
            words=(*last.words, label),
        )

    if src == "S" and item.prompt_units:
        open_speech()
        add_units(item.prompt_units, item.prompt or "")
    elif src == "T" and item.prompt:
        tokens.append(space.text_id)
        tokens += space.encode_text(item.prompt)
    continues = len(tokens) > 1 and src == dst
    if dst == "S":
        if not continues:
            open_speech()
        start = len(tokens)
        label = item.endings[choice] if item.endings is not None else ""
        add_units(item.ending_units[choice], label)  # type: ignore[index]
    else:
        text = item.endings[choice]  # type: ignore[index]
        if not continues:
            tokens.append(space.text_id)
        start = len(tokens)
        tokens += space.encode_text(" " + text if continues else text)
    end = len(tokens)
    if end <= start:
        raise ValueError(f"{item.id}: ending {choice} encodes to no tokens in {direction}")
    tokens.append(space.eos_id)
    array = np.asarray(tokens, dtype=np.int64)
    if patch_size is None:
        lengths = np.ones(len(array), dtype=np.int64)
    else:
        doc = EncodedDocument(array, tuple(runs), "interleaved")
        lengths = np.asarray(static_patch_lengths(doc, patch_size), dtype=np.int64)
    chars = len(item.endings[choice]) if item.endings is not None else 0
    return Candidate(array, start, end, lengths, chars)


def pack_candidates(
    candidates: Sequence[Candidate], max_tokens: int, max_rows: int, space: TokenSpace
) -> list[tuple[PackedBatch, list[tuple[int, int, int]]]]:
    """Pack candidates into batches of rows, several documents per row, never split.

    Returns ``(batch, placement)`` pairs where ``placement`` lists ``(candidate, row, offset)``.
    Longest first, first fit; a row holds ``max(max_tokens, longest candidate)`` tokens.
    """
    if max_tokens < 2 or max_rows < 1:
        raise ValueError(f"need max_tokens >= 2 and max_rows >= 1, got {max_tokens}, {max_rows}")
    order = sorted(range(len(candidates)), key=lambda i: -len(candidates[i].tokens))
    rows: list[list[int]] = []
    used: list[int] = []
    capacity = max([max_tokens, *(len(c.tokens) for c in candidates)])
    for i in order:
        n = len(candidates[i].tokens)
        for r in range(len(rows)):
            if used[r] + n <= capacity:
                rows[r].append(i)
                used[r] += n
                break
        else:
            rows.append([i])
            used.append(n)
    out = []
    for lo in range(0, len(rows), max_rows):
        chunk = rows[lo : lo + max_rows]
        out.append(_collate_rows([[candidates[i] for i in row] for row in chunk], space))
        placement = []
        for r, row in enumerate(chunk):
            offset = 0
            for i in row:
                placement.append((i, r, offset))
                offset += len(candidates[i].tokens)
        out[-1] = (out[-1], placement)
    return out


def _collate_rows(rows: list[list[Candidate]], space: TokenSpace) -> PackedBatch:
    t = max(sum(len(c.tokens) for c in row) for row in rows)
    p = max(sum(len(c.patch_lengths) for c in row) for row in rows)
    b = len(rows)
    tokens = np.full((b, t), space.pad_id, dtype=np.int64)
    targets = np.full((b, t), IGNORE_INDEX, dtype=np.int64)
    doc_ids = np.full((b, t), PAD_DOC, dtype=np.int64)
    lengths = np.zeros((b, p), dtype=np.int64)
    speech_patches = np.zeros((b, p), dtype=bool)
    for r, row in enumerate(rows):
        pos = patch = 0
        for d, c in enumerate(row):
            n, k = len(c.tokens), len(c.patch_lengths)
            tokens[r, pos : pos + n] = c.tokens
            targets[r, pos : pos + n - 1] = c.tokens[1:]
            doc_ids[r, pos : pos + n] = d
            lengths[r, patch : patch + k] = c.patch_lengths
            pos, patch = pos + n, patch + k
        speech_patches[r, :patch] = patch_speech_mask(
            tokens[r, :pos], lengths[r, :patch], space.is_unit
        )
    speech_targets = (targets != IGNORE_INDEX) & np.asarray(space.is_unit(targets), dtype=bool)
    batch = PackedBatch(
        tokens=torch.from_numpy(tokens),
        targets=torch.from_numpy(targets),
        doc_ids=torch.from_numpy(doc_ids),
        patch_lengths=torch.from_numpy(lengths),
        speech_targets=torch.from_numpy(speech_targets),
        speech_patches=torch.from_numpy(speech_patches),
    )
    batch.validate()
    return batch


def token_nll(model: Model, batch: PackedBatch) -> torch.Tensor:
    """``[B, T]`` negative log-likelihood of each target: the training loss before its mean."""
    logits = model(batch.tokens, batch.doc_ids, batch.patch_lengths)
    return F.cross_entropy(
        logits.float().flatten(0, 1),
        batch.targets.flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view_as(batch.targets)


@torch.inference_mode()
def score_candidates(
    model: Model,
    candidates: Sequence[Candidate],
    space: TokenSpace,
    max_tokens: int = 1024,
    max_rows: int = 8,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Summed log-likelihood of each candidate's ending, ``float64 [len(candidates)]``.

    The token at document position ``j`` is predicted at position ``j - 1``, so an ending at
    ``[start, end)`` sums the negated loss of positions ``start - 1 .. end - 2``.
    """
    scores = np.zeros(len(candidates), dtype=np.float64)
    for batch, placement in pack_candidates(candidates, max_tokens, max_rows, space):
        nll = token_nll(model, batch.to(device)).double().cpu().numpy()
        for i, r, offset in placement:
            c = candidates[i]
            scores[i] = -nll[r, offset + c.start - 1 : offset + c.end - 1].sum()
    return scores


def rule_scores(summed: np.ndarray, candidates: Sequence[Candidate]) -> dict[str, np.ndarray]:
    """The same log-likelihoods under each rule; ``per_char`` is NaN where there is no text."""
    tokens = np.array([c.num_scored for c in candidates], dtype=np.float64)
    chars = np.array([c.chars for c in candidates], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_char = np.where(chars > 0, summed / np.maximum(chars, 1), np.nan)
    return {"sum": summed, "per_token": summed / tokens, "per_char": per_char}


def choice_credit(scores: np.ndarray, label: int) -> float:
    """1 if the label scores highest, ``1/k`` if it ties with ``k - 1`` others, else 0.

    Ties share the credit, so a model that cannot tell the endings apart scores chance exactly
    instead of favouring whichever ending comes first.
    """
    if np.isnan(scores).any():
        return float("nan")
    best = scores.max()
    winners = np.flatnonzero(scores == best)
    return 1.0 / len(winners) if label in winners else 0.0
