"""Fine-tuning rows: ASR or TTS task documents, packed, with the loss on the answer span only.

``data.task.name: asr`` (or ``tts``) turns :class:`~lst_lightning.lit.datamodule.SpeechTextDataModule`
into a fine-tuning datamodule: its training and validation datasets become
:class:`TaskDocumentDataset` s over the split's utterances, one task document each
(:mod:`lst_lightning.downstream.tasks`). Everything else is the pre-training pipeline: the same
token space, patching schedule (so a curriculum can be fine-tuned too; static by default), row
packer and :class:`~lst_lightning.lit.datamodule.EpochDataLoader` (shuffled every epoch from
``(seed, epoch)``, resumable exactly). The loss mask travels through the packer
(:meth:`~lst_lightning.data.stream.packing.RowPacker.add`'s ``loss_mask``): every target outside an
answer span is ``IGNORE_INDEX``, so the module's ordinary loss is the answer's loss.

Documents are never cut across rows (an answer without its prompt teaches nothing): a row is
closed before a document that does not fit it, and a document longer than a whole row is dropped
(counted in :attr:`TaskDocumentDataset.dropped`; the fine-tune YAMLs size rows so that none is).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..data.records import read_aligned_jsonl
from ..data.stream.dataset import (
    INTERLEAVED,
    Corpus,
    PackedDocumentDataset,
    _shard,
    _worker,
)
from ..data.stream.documents import EncodedDocument
from ..data.stream.packing import PackedRow, PackingMode, RowPacker
from ..data.stream.patching import PatchingSchedule
from ..data.vocab import TokenSpace
from ..downstream.evalsets import spread
from ..downstream.tasks import SpeechText, Task, TaskDocument, task_documents

if TYPE_CHECKING:
    from .datamodule import SpeechTextDataModule


class TaskDocumentDataset(PackedDocumentDataset):
    """Packed rows of task documents; targets are ``IGNORE_INDEX`` outside the answer spans.

    Inherits the stream position, step-of-row and patching draws of
    :class:`PackedDocumentDataset`; only the epoch plan (every document once, shuffled) and the
    documents differ.
    """

    def __init__(
        self,
        documents: list[TaskDocument],
        space: TokenSpace,
        patching: PatchingSchedule | None = None,
        packing: PackingMode = "patches",
        max_tokens: int = 768,
        max_patches: int = 384,
        seed: int = 0,
        rows_per_batch: int = 1,
        shuffle: bool = True,
    ) -> None:
        """``shuffle``: a new order every epoch (training); ``False`` keeps the given order."""
        if not documents:
            raise ValueError("no task documents to train or validate on")
        # the parent checks the row sizes and patching; its corpus is unused here
        placeholder = Corpus(utterances=(), texts=("-",))
        super().__init__(
            placeholder,
            space,
            interleaved_fraction=0.0,
            patching=patching,
            packing=packing,
            max_tokens=max_tokens,
            max_patches=max_patches,
            seed=seed,
            rows_per_batch=rows_per_batch,
        )
        self.shuffle = shuffle
        kept = [d for d in documents if self._fits(d.document)]
        self.dropped = len(documents) - len(kept)
        """Documents longer than a row (tokens or static global positions), left out."""
        if not kept:
            raise ValueError(
                f"every one of the {len(documents)} task documents is longer than a row "
                f"(max_tokens={max_tokens}, max_patches={max_patches}): raise data.packing sizes"
            )
        self.task_documents = kept

    def _fits(self, doc: EncodedDocument) -> bool:
        if len(doc.tokens) > self.max_tokens:
            return False
        if self.packing == "tokens":
            return True
        lengths = PatchingSchedule("static", self.patching.patch_size).patch_lengths(
            doc, False, piece_sizes=self.space.text_piece_sizes, max_len=self.max_tokens
        )
        return len(lengths) <= self.max_patches

    def epoch_plan(self) -> list[tuple[int, int]]:
        n = len(self.task_documents)
        if not self.shuffle:
            return [(INTERLEAVED, i) for i in range(n)]
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        return [(INTERLEAVED, int(i)) for i in order]

    def build_document(self, position: int, kind: int, index: int) -> EncodedDocument:
        return self.task_documents[index].document

    def __iter__(self) -> Iterator[PackedRow]:
        shard, num_shards = _shard()
        worker, num_workers = _worker()
        packer = RowPacker(
            self.packing,
            self.max_tokens,
            self.max_patches,
            self.space.pad_id,
            self.space.is_unit,
            min_piece_tokens=self.max_tokens,  # close the row rather than cut a document
            speech_frames=self.space.speech_frames,
        )
        plan = self.epoch_plan()
        for position in range(shard, len(plan), num_shards):
            kind, index = plan[position]
            task_doc = self.task_documents[index]
            yield from self.place_document(
                packer, position, task_doc.document, kind, worker, num_workers, task_doc.loss_mask
            )
        yield from packer.flush()


def split_items(data_dir, split: str, limit: int | None, num_units: int) -> list[SpeechText]:
    """The utterances of ``<data_dir>/<split>.jsonl`` (``limit`` of them, evenly spaced) that
    have a transcript and units."""
    utterances = read_aligned_jsonl(data_dir / f"{split}.jsonl", num_units)
    items = [
        SpeechText.from_aligned(u) for u in utterances if u.transcript.strip() and u.num_frames
    ]
    if not items:
        raise ValueError(f"{data_dir / f'{split}.jsonl'} has no utterance with text and units")
    return [items[i] for i in spread(len(items), limit)]


def task_dataset(
    datamodule: SpeechTextDataModule, split: str, seed: int, schedule: PatchingSchedule
) -> TaskDocumentDataset:
    """The datamodule's fine-tuning dataset of ``split`` (``train`` or ``valid``)."""
    options = datamodule.task
    task: Task = options.name  # type: ignore[assignment]
    training = split == "train"
    source = options.train_split if training else "valid"
    limit = options.train_limit if training else options.valid_limit
    items = split_items(datamodule.data_dir, source, limit, datamodule.num_units)
    docs = task_documents(task, items, datamodule.token_space)
    dataset = TaskDocumentDataset(
        docs,
        datamodule.token_space,
        patching=schedule,
        packing=datamodule.packing.mode,
        max_tokens=datamodule.packing.max_tokens,
        max_patches=datamodule.packing.max_patches,
        seed=seed,
        rows_per_batch=datamodule.loader.batch_size,
        shuffle=training,
    )
    if dataset.dropped:
        print(
            f"task {task} ({split}): left out {dataset.dropped} of {len(docs)} documents longer "
            f"than a row (data.packing.max_tokens={datamodule.packing.max_tokens}, "
            f"max_patches={datamodule.packing.max_patches})"
        )
    return dataset
