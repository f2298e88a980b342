"""An iterable dataset of packed rows over a speech-text corpus, re-mixed every epoch.

Each epoch draws the document mixture (interleaved / speech-only / text-only), a new interleaving
pattern per utterance and a new order, all from ``(seed, epoch)``; then it builds, patches and packs
the documents of this process's shard. Sharding is by document across DataLoader workers (and
across distributed ranks when ``torch.distributed`` is initialised), so no document is seen twice.

**Mixture by token share.** ``interleaved_fraction`` / ``speech_only_fraction`` are shares of the
epoch's *tokens* counted in baseline units (one per text token or special, one per unit frame:
what the Base SpeechLLM sees, before any unit BPE or patching), not of documents; the rest is
text-only (paper 4.3, Tab. 13: 1.00 of every 3.00 baseline units interleaved). :func:`select_mixture`
walks the utterances in a random order, giving each to the kind furthest below its share, then
takes text documents (in a random order) until the text share is met; the scarcer source is used
completely and the other is subsampled, a different subset every epoch. The same options give the
same documents whatever the packing, patching or speech tokenizer.

**Patching as a pure function.** For ``mixed`` and ``curriculum`` each document draws ``u ~ U[0, 1)``
from ``(seed, epoch, position)`` and is patched aligned when ``u`` is below the scheduled probability
at the optimizer step of the batch that receives its first piece. A process knows that step without
asking the trainer: its rows go into batches of ``rows_per_batch``; DataLoader workers hand out
their batches round-robin, so worker ``w`` of ``W`` contributes pass batch ``j * W + w`` as its
``j``-th; the pass's first batch has the global index :attr:`PackedDocumentDataset.first_batch`
(set by the loader); and step = global batch index // ``accumulate`` (gradient accumulation).
DDP ranks each consume one batch per step, so the rank does not enter. Nothing is read from the
trainer or shared memory while iterating, so a pass replayed after a resume reproduces its rows
bit for bit. (Once one worker's shard is exhausted at the very end of a pass, DataLoader gives the
remaining batches to the other workers sooner than the round-robin count assumes, so those last
batches' documents may be patched for a step a few batches later than the one that trains on
them; still deterministic.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    AlignedUtterance,
    iter_utf8_lines,
    read_aligned_jsonl,
)
from lst_lightning.data.stream.documents import (
    EncodedDocument,
    PlannedSpan,
    encode_plan,
    plan_interleaving,
    speech_document,
    text_document,
)
from lst_lightning.data.stream.packing import PackedRow, PackingMode, RowPacker
from lst_lightning.data.stream.patching import PatchingSchedule, token_patch_lengths
from lst_lightning.data.vocab import TokenSpace

INTERLEAVED, SPEECH, TEXT = 0, 1, 2
"""Document kinds in an epoch plan (the index into :data:`KIND_NAMES`)."""
KIND_NAMES = ("interleaved", "speech", "text")
"""The names the packer counts the kinds under (``PackedBatch.MIXTURE_KINDS``)."""

PATCHING_STREAM = 7
"""Seeds each document's static/aligned draw apart from its interleaving draw."""
INTERLEAVING_STREAM = 11
"""Seeds each utterance's interleaving pattern (per epoch) apart from the other draws."""
SHARE_TOLERANCE = 1e-9
"""Shares within this of 0 (or of summing to 1) count as exact."""


@dataclass(frozen=True)
class Corpus:
    """One split of a corpus: aligned utterances and text-only documents."""

    utterances: tuple[AlignedUtterance, ...]
    texts: tuple[str, ...]


def read_text_documents(path: str | Path) -> list[str]:
    """One document a line; an empty line is an error (it would be an empty document)."""
    path = Path(path)
    docs = []
    for lineno, line in iter_utf8_lines(path):  # undecodable bytes: an error naming file:line
        doc = line.rstrip("\r\n")
        if not doc.strip():
            raise ValueError(f"{path}:{lineno}: empty text document")
        docs.append(doc)
    return docs


def load_corpus(data_dir: str | Path, split: str, num_units: int = DEFAULT_NUM_UNITS) -> Corpus:
    """Read ``{split}.jsonl`` and ``text_{split}.txt`` from a corpus folder."""
    data_dir = Path(data_dir)
    return Corpus(
        tuple(read_aligned_jsonl(data_dir / f"{split}.jsonl", num_units)),
        tuple(read_text_documents(data_dir / f"text_{split}.txt")),
    )


def check_shares(interleaved: float, speech_only: float) -> None:
    """Shares must be >= 0 and leave a non-negative text share."""
    if interleaved < 0 or speech_only < 0 or interleaved + speech_only > 1 + SHARE_TOLERANCE:
        raise ValueError(
            f"need shares >= 0 with interleaved + speech_only <= 1, got {interleaved}, {speech_only}"
        )


def select_mixture(
    utterance_order: Sequence[int],
    interleaved_length: Callable[[int], int],
    speech_length: Callable[[int], int],
    text_order: Sequence[int],
    text_length: Callable[[int], int],
    interleaved: float,
    speech_only: float,
) -> tuple[list[int], list[int], list[int]]:
    """Pick an epoch's interleaved utterances, speech-only utterances and text documents so that
    their tokens come in the shares ``interleaved : speech_only : 1 - both``.

    Lengths are in baseline units. Utterances are taken in ``utterance_order``, each becoming the
    kind whose tokens are furthest below its share (interleaved on ties); text documents in
    ``text_order`` until the text tokens are closest to what the speech tokens call for. When the
    text runs out first, utterances are cut back instead (to the prefix of the walk closest to the
    share), so the scarcer source is used completely. Each utterance gives at most one document.
    """
    check_shares(interleaved, speech_only)
    speech = interleaved + speech_only
    text = max(0.0, 1.0 - speech)
    if speech > 0 and not len(utterance_order):
        raise ValueError("the mixture asks for speech documents but the corpus has no utterances")
    if text > SHARE_TOLERANCE and not len(text_order):
        raise ValueError("the mixture asks for text-only documents but the corpus has none")
    if speech == 0:
        return [], [], list(text_order)
    walk: list[tuple[int, bool]] = []  # (utterance, interleaved?) in order
    totals = [0, 0]
    cumulative = []
    for u in utterance_order:
        as_interleaved = speech_only == 0 or (
            interleaved > 0 and totals[0] * speech_only <= totals[1] * interleaved
        )
        totals[0 if as_interleaved else 1] += (
            interleaved_length(u) if as_interleaved else speech_length(u)
        )
        walk.append((int(u), as_interleaved))
        cumulative.append(totals[0] + totals[1])
    texts: list[int] = []
    if text > SHARE_TOLERANCE:
        wanted = cumulative[-1] * text / speech
        have = 0
        for i in text_order:
            n = text_length(i)
            if have + n / 2 > wanted:  # adding it would move away from the share
                break
            texts.append(int(i))
            have += n
        if len(texts) == len(text_order) and have < wanted:  # text is the scarcer source
            target = have * speech / text
            keep = int(np.searchsorted(cumulative, target))
            if keep < len(walk) and (
                keep == 0 or cumulative[keep] - target < target - cumulative[keep - 1]
            ):
                keep += 1
            walk = walk[:keep]
    return [u for u, i in walk if i], [u for u, i in walk if not i], texts


class PackedDocumentDataset(IterableDataset):
    """Yields :class:`PackedRow` s; batch them with :func:`lst_lightning.data.stream.packing.collate`."""

    def __init__(
        self,
        corpus: Corpus,
        space: TokenSpace,
        interleaved_fraction: float = 1 / 3,
        speech_only_fraction: float = 0.0,
        patching: PatchingSchedule | None = None,
        packing: PackingMode = "patches",
        max_tokens: int = 512,
        max_patches: int = 256,
        seed: int = 0,
        rows_per_batch: int = 1,
    ) -> None:
        """``interleaved_fraction`` / ``speech_only_fraction``: token shares (module docstring).
        ``patching``: the schedule of ``"patches"`` packing (default static(4)); ``"tokens"``
        packing gives one patch per token whatever it says. ``rows_per_batch``: the DataLoader's
        batch size, which maps this process's rows to training steps."""
        patching = patching if patching is not None else PatchingSchedule()
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if rows_per_batch < 1:
            raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
        if packing == "patches" and patching.patch_size > max_tokens:
            raise ValueError(
                f"patch_size={patching.patch_size} does not fit in max_tokens={max_tokens}"
            )
        if (
            packing == "patches"
            and patching.strategy != "static"
            and space.speech_tokenizer != "units"
        ):
            raise ValueError(
                f"patching={patching.strategy!r} needs one token per unit frame, but the token "
                "space re-tokenises units with a unit BPE; use static patching or token packing"
            )
        check_shares(interleaved_fraction, speech_only_fraction)
        speech = interleaved_fraction + speech_only_fraction
        if speech > 0 and not corpus.utterances:
            raise ValueError(
                "the mixture asks for speech documents but the corpus has no utterances"
            )
        if speech < 1 - SHARE_TOLERANCE and not corpus.texts:
            raise ValueError("the mixture asks for text-only documents but the corpus has none")
        self.corpus = corpus
        self.space = space
        self.interleaved_fraction = interleaved_fraction
        self.speech_only_fraction = speech_only_fraction
        self.patching = patching
        self.packing = packing
        self.max_tokens = max_tokens
        self.max_patches = max_patches
        self.seed = seed
        self.rows_per_batch = rows_per_batch
        self.epoch = 0
        self.first_batch = 0
        """Global index (from 0, over the whole run) of the current pass's first batch."""
        self.accumulate = 1
        """Batches per optimizer step (``trainer.accumulate_grad_batches``)."""
        self._text_lengths = np.full(len(corpus.texts), -1, dtype=np.int64)
        self._plan: tuple[int, list[tuple[int, int]]] | None = None
        # Fail here, not later in a worker, when the row sizes are impossible.
        RowPacker(packing, max_tokens, max_patches, space.pad_id, space.is_unit)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose mixture, interleavings and order :meth:`__iter__` produces."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def set_stream_position(self, first_batch: int, accumulate: int = 1) -> None:
        """The global index of this pass's first batch and the batches per optimizer step, which
        turn a row into the training step its documents are patched for."""
        if first_batch < 0 or accumulate < 1:
            raise ValueError(
                f"need first_batch >= 0 and accumulate >= 1, got {first_batch}, {accumulate}"
            )
        self.first_batch, self.accumulate = first_batch, accumulate

    def step_of_row(self, row: int, worker: int = 0, num_workers: int = 1) -> int:
        """The optimizer step that trains on row ``row`` (from 0) of worker ``worker``'s stream in
        the current pass (module docstring)."""
        batch = self.first_batch + (row // self.rows_per_batch) * num_workers + worker
        return batch // self.accumulate

    # -- the mixture ---------------------------------------------------------------------------
    def _interleaving_rng(self, utterance: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, INTERLEAVING_STREAM, utterance])

    def interleaving(self, utterance: int) -> list[PlannedSpan]:
        """The utterance's interleaving pattern in the current epoch."""
        return plan_interleaving(
            self.corpus.utterances[utterance], self._interleaving_rng(utterance)
        )

    def interleaved_length(self, utterance: int) -> int:
        """Baseline units of the utterance's interleaved document this epoch."""
        n = 2  # BOS, EOS
        for span in self.interleaving(utterance):
            if span.modality == "text":
                words = " ".join(w.text for w in span.words if not w.is_silence)
                n += 1 + len(self.space.encode_text(words))
            else:
                n += 1 + sum(len(w.units) for w in span.words)
        return n

    def speech_length(self, utterance: int) -> int:
        """Baseline units of the utterance's speech-only document: BOS, ``<s>``, frames, EOS."""
        return 3 + self.corpus.utterances[utterance].num_frames

    def text_length(self, index: int) -> int:
        """Baseline units (tokens) of text document ``index``: BOS, ``<t>``, BPE, EOS (cached)."""
        if self._text_lengths[index] < 0:
            self._text_lengths[index] = 3 + len(self.space.encode_text(self.corpus.texts[index]))
        return int(self._text_lengths[index])

    def epoch_plan(self) -> list[tuple[int, int]]:
        """The epoch's documents in order, as ``(kind, index into utterances or texts)``; computed
        once per epoch and process (the loader computes it before starting workers, which then
        inherit it)."""
        if self._plan is not None and self._plan[0] == self.epoch:
            return self._plan[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        utterance_order = rng.permutation(len(self.corpus.utterances))
        text_order = rng.permutation(len(self.corpus.texts))
        inter, speech, texts = select_mixture(
            utterance_order,
            self.interleaved_length,
            self.speech_length,
            text_order,
            self.text_length,
            self.interleaved_fraction,
            self.speech_only_fraction,
        )
        plan = [(INTERLEAVED, i) for i in inter] + [(SPEECH, i) for i in speech]
        plan += [(TEXT, i) for i in texts]
        plan = [plan[i] for i in rng.permutation(len(plan)).tolist()]
        self._plan = (self.epoch, plan)
        return plan

    def documents(self) -> list[EncodedDocument]:
        """Every document of the current epoch, in order, unsharded and unpacked (for statistics)."""
        return [self.build_document(i, *entry) for i, entry in enumerate(self.epoch_plan())]

    def build_document(self, position: int, kind: int, index: int) -> EncodedDocument:
        """The document at ``position`` of the epoch plan; its randomness depends only on
        ``(seed, epoch)`` and the utterance."""
        if kind == TEXT:
            return text_document(self.corpus.texts[index], self.space)
        utterance = self.corpus.utterances[index]
        if kind == SPEECH:
            return speech_document(utterance, self.space)
        return encode_plan(self.interleaving(index), self.space, "interleaved")

    # -- patching ------------------------------------------------------------------------------
    def aligned_probability(self, step: int) -> float:
        """Probability that a document trained on at optimizer step ``step`` is patched aligned."""
        return 0.0 if self.packing == "tokens" else self.patching.aligned_probability(step)

    def patch_document(
        self, position: int, doc: EncodedDocument, step: int = 0
    ) -> tuple[list[int], bool]:
        """The patch lengths of the document at ``position`` when it is trained on at ``step``,
        and whether they are aligned.

        ``mixed`` / ``curriculum`` draw ``u ~ U[0, 1)`` from ``(seed, epoch, position)`` and patch
        aligned when ``u`` is below the probability at ``step``: the same document gets the same
        draw at any step, so a falling probability only ever turns aligned into static.
        """
        if self.packing == "tokens":
            return token_patch_lengths(doc), False
        schedule = self.patching
        if schedule.draws:
            rng = np.random.default_rng([self.seed, self.epoch, position, PATCHING_STREAM])
            aligned = bool(rng.random() < self.aligned_probability(step))
        else:
            aligned = schedule.strategy != "static"
        lengths = schedule.patch_lengths(
            doc, aligned, piece_sizes=self.space.text_piece_sizes, max_len=self.max_tokens
        )
        return lengths, aligned

    def __iter__(self) -> Iterator[PackedRow]:
        shard, num_shards = _shard()
        worker, num_workers = _worker()
        packer = RowPacker(
            self.packing,
            self.max_tokens,
            self.max_patches,
            self.space.pad_id,
            self.space.is_unit,
            speech_frames=self.space.speech_frames,
        )
        plan = self.epoch_plan()
        for position in range(shard, len(plan), num_shards):
            kind, index = plan[position]
            doc = self.build_document(position, kind, index)
            row = packer.rows_emitted
            step = self.step_of_row(row, worker, num_workers)
            lengths, aligned = self.patch_document(position, doc, step)
            if not packer.starts_in_current_row(len(doc), lengths):
                # The document begins in the next row, which may belong to the next step.
                yield from packer.close_row()
                later = self.step_of_row(row + 1, worker, num_workers)
                if later != step:
                    lengths, aligned = self.patch_document(position, doc, later)
            yield from packer.add(doc.tokens, lengths, aligned, KIND_NAMES[kind])
        yield from packer.flush()


def _worker() -> tuple[int, int]:
    """(this DataLoader worker, number of workers); (0, 1) in the main process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _shard() -> tuple[int, int]:
    """(this process's shard, number of shards) over distributed ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker, workers = _worker()
    return rank * workers + worker, world * workers
