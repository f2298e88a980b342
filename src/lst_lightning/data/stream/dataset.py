"""An iterable dataset of packed rows over a speech-text corpus, re-mixed every epoch.

Each epoch draws the document mixture (interleaved / speech-only / text-only), a new interleaving
pattern per utterance and a new order, all from ``(seed, epoch)``; then it builds, patches and packs
the documents of this process's shard. Sharding is by document across DataLoader workers (and
across distributed ranks when ``torch.distributed`` is initialised), so no document is seen twice.

Patching follows a :class:`~lst_lightning.data.stream.patching.PatchingSchedule`. For ``mixed`` and
``curriculum`` each document draws static or aligned from ``(seed, epoch, position)`` against the
probability at the *current training step*. That step lives in a one-element shared-memory tensor
created with the dataset, so DataLoader worker processes (forked or spawned) read the value the
main process last wrote (:meth:`PackedDocumentDataset.set_step`, called by the datamodule and by
:class:`~lst_lightning.callbacks.curriculum.CurriculumCallback`), not a copy from when they started.
Documents are built ahead of the step that consumes them (DataLoader prefetch and the row being
filled), so the schedule a batch shows lags the trainer by a few batches.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    interleaved_document,
    speech_document,
    text_document,
)
from lst_lightning.data.stream.packing import PackedRow, PackingMode, RowPacker
from lst_lightning.data.stream.patching import PatchingSchedule, token_patch_lengths
from lst_lightning.data.vocab import TokenSpace

INTERLEAVED, SPEECH, TEXT = 0, 1, 2
"""Document kinds in an epoch plan."""

PATCHING_STREAM = 7
"""Seeds each document's static/aligned draw apart from its interleaving draw."""


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


def mixture_counts(
    num_utterances: int, num_texts: int, interleaved: float, speech_only: float
) -> tuple[int, int, int]:
    """How many interleaved, speech-only and text-only documents one epoch holds.

    The fractions fix the composition; the scarcer source is used completely and the other one
    is subsampled (a different subset every epoch). Each utterance gives at most one document.
    """
    if interleaved < 0 or speech_only < 0 or interleaved + speech_only > 1 + 1e-9:
        raise ValueError(
            f"need fractions >= 0 with interleaved + speech_only <= 1, got {interleaved}, {speech_only}"
        )
    speech = interleaved + speech_only
    text = max(0.0, 1.0 - speech)
    if speech > 0 and num_utterances == 0:
        raise ValueError("the mixture asks for speech documents but the corpus has no utterances")
    if text > 1e-9 and num_texts == 0:
        raise ValueError("the mixture asks for text-only documents but the corpus has none")
    if text <= 1e-9:
        n_utt, n_text = num_utterances, 0
    elif speech == 0:
        n_utt, n_text = 0, num_texts
    elif num_utterances * text / speech <= num_texts:
        n_utt, n_text = num_utterances, round(num_utterances * text / speech)
    else:
        n_utt, n_text = min(num_utterances, round(num_texts * speech / text)), num_texts
    n_interleaved = round(n_utt * interleaved / speech) if speech > 0 else 0
    return n_interleaved, n_utt - n_interleaved, n_text


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
    ) -> None:
        """``patching``: the schedule of ``"patches"`` packing (default static(4)); ``"tokens"``
        packing gives one patch per token whatever it says."""
        patching = patching if patching is not None else PatchingSchedule()
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
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
        self.corpus = corpus
        self.space = space
        self.interleaved_fraction = interleaved_fraction
        self.speech_only_fraction = speech_only_fraction
        self.patching = patching
        self.packing = packing
        self.max_tokens = max_tokens
        self.max_patches = max_patches
        self.seed = seed
        self.epoch = 0
        self._step = torch.zeros(1, dtype=torch.int64).share_memory_()
        # Fail here, not later in a worker, when the mixture or the row sizes are impossible.
        mixture_counts(
            len(corpus.utterances), len(corpus.texts), interleaved_fraction, speech_only_fraction
        )
        RowPacker(packing, max_tokens, max_patches, space.pad_id, space.is_unit)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose mixture, interleavings and order :meth:`__iter__` produces."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def set_step(self, step: int) -> None:
        """Publish the training step that documents built from now on are patched for; seen by
        every worker process of this dataset."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        self._step[0] = step

    @property
    def step(self) -> int:
        """The last published training step."""
        return int(self._step[0])

    def aligned_probability(self) -> float:
        """Probability that a document built now is patched aligned."""
        return 0.0 if self.packing == "tokens" else self.patching.aligned_probability(self.step)

    def epoch_plan(self) -> list[tuple[int, int]]:
        """The epoch's documents in order, as ``(kind, index into utterances or texts)``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        n_inter, n_speech, n_text = mixture_counts(
            len(self.corpus.utterances),
            len(self.corpus.texts),
            self.interleaved_fraction,
            self.speech_only_fraction,
        )
        utts = rng.permutation(len(self.corpus.utterances))[: n_inter + n_speech].tolist()
        texts = rng.permutation(len(self.corpus.texts))[:n_text].tolist()
        plan = [(INTERLEAVED, i) for i in utts[:n_inter]]
        plan += [(SPEECH, i) for i in utts[n_inter:]]
        plan += [(TEXT, i) for i in texts]
        return [plan[i] for i in rng.permutation(len(plan)).tolist()]

    def documents(self) -> list[EncodedDocument]:
        """Every document of the current epoch, in order, unsharded and unpacked (for statistics)."""
        return [self.build_document(i, *entry) for i, entry in enumerate(self.epoch_plan())]

    def build_document(self, position: int, kind: int, index: int) -> EncodedDocument:
        """The document at ``position`` of the epoch plan; its randomness depends on nothing else."""
        if kind == TEXT:
            return text_document(self.corpus.texts[index], self.space)
        utterance = self.corpus.utterances[index]
        if kind == SPEECH:
            return speech_document(utterance, self.space)
        rng = np.random.default_rng([self.seed, self.epoch, position])
        return interleaved_document(utterance, self.space, rng)

    def patch_document(self, position: int, doc: EncodedDocument) -> tuple[list[int], bool]:
        """The patch lengths of the document at ``position`` and whether they are aligned.

        ``mixed`` / ``curriculum`` draw ``u ~ U[0, 1)`` from ``(seed, epoch, position)`` and patch
        aligned when ``u`` is below the probability at the published step: the same document gets
        the same draw at any step, so a falling probability only ever turns aligned into static.
        """
        if self.packing == "tokens":
            return token_patch_lengths(doc), False
        schedule = self.patching
        if schedule.draws:
            rng = np.random.default_rng([self.seed, self.epoch, position, PATCHING_STREAM])
            aligned = bool(rng.random() < self.aligned_probability())
        else:
            aligned = schedule.strategy != "static"
        lengths = schedule.patch_lengths(
            doc, aligned, piece_sizes=self.space.text_piece_sizes, max_len=self.max_tokens
        )
        return lengths, aligned

    def __iter__(self) -> Iterator[PackedRow]:
        shard, num_shards = _shard()
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
            doc = self.build_document(position, *plan[position])
            lengths, aligned = self.patch_document(position, doc)
            yield from packer.add(doc.tokens, lengths, aligned)
        yield from packer.flush()


def _shard() -> tuple[int, int]:
    """(this process's shard, number of shards) over distributed ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * workers + worker, world * workers
