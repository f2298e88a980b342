"""The LightningDataModule: packed speech-text batches from a corpus folder.

Everything Lightning-specific about the data lives here; the pipeline itself is in
:mod:`lst_lightning.data` and knows nothing of Lightning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import lightning as L
from torch.utils.data import DataLoader

from ..data.batch import PackedBatch
from ..data.build import build_generated_corpus, corpus_is_complete
from ..data.dataset import PackedDocumentDataset, load_corpus
from ..data.packing import collate
from ..data.records import DEFAULT_NUM_UNITS
from ..data.vocab import TokenSpace

VALID_SEED_OFFSET = 1_000_003
"""Validation draws its fixed mixture and interleavings from ``seed + VALID_SEED_OFFSET``."""


class EpochDataLoader(DataLoader):
    """A DataLoader that tells its dataset the current epoch every time it is iterated.

    Lightning calls ``set_epoch`` only on samplers, and an IterableDataset has none; without this
    every epoch would replay epoch 0's interleavings and order. Workers are not persistent, so each
    epoch's workers receive the dataset with the new epoch set.
    """

    def __init__(
        self, dataset: PackedDocumentDataset, epoch_fn: Callable[[], int], **kwargs
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.epoch_fn = epoch_fn

    def __iter__(self) -> Iterator[PackedBatch]:
        self.dataset.set_epoch(self.epoch_fn())
        return super().__iter__()


class SpeechTextDataModule(L.LightningDataModule):
    """Packed batches of interleaved, speech-only and text-only documents.

    The corpus folder holds ``train.jsonl`` / ``valid.jsonl`` (aligned units), ``text_train.txt`` /
    ``text_valid.txt`` and ``tokenizer.model``. When it is missing, the generated corpus is built
    there on construction (a few seconds), so that :attr:`vocab_size` is known before ``setup``.
    """

    def __init__(
        self,
        data_dir: str = "data/generated",
        packing: Literal["patches", "tokens"] = "patches",
        max_patches: int = 256,
        max_tokens: int = 512,
        patch_size: int = 4,
        batch_size: int = 8,
        num_workers: int = 0,
        interleaved_fraction: float = 1 / 3,
        speech_only_fraction: float = 0.0,
        num_units: int = DEFAULT_NUM_UNITS,
        seed: int = 0,
    ) -> None:
        """
        Args:
            data_dir: corpus folder; the generated corpus is built there if it is missing.
            packing: ``"patches"`` (LST: rows bounded by global positions and tokens) or
                ``"tokens"`` (the baselines: rows of ``max_tokens`` tokens, one patch per token).
            max_patches: global positions per row in ``"patches"`` mode (paper: 4096).
            max_tokens: tokens per row (paper: 12288 for LST; the baselines' sequence length).
            patch_size: static speech patch size ``p`` in units, ``<s>`` included (paper: 4).
            batch_size: rows per batch.
            num_workers: DataLoader worker processes; documents are sharded across them.
            interleaved_fraction: share of interleaved speech-text documents (paper: 1/3).
            speech_only_fraction: share of speech-only documents (paper's best: 0); the rest is
                text-only.
            num_units: speech unit codebook size (paper: 501 HuBERT k-means units).
            seed: seeds the mixture, interleavings and order (epoch by epoch) and validation.
        """
        super().__init__()
        self.save_hyperparameters()
        for name, value in (("max_patches", max_patches), ("patch_size", patch_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_tokens < 2 or batch_size < 1 or num_workers < 0 or seed < 0:
            raise ValueError("need max_tokens >= 2, batch_size >= 1, num_workers >= 0, seed >= 0")
        if packing not in ("patches", "tokens"):
            raise ValueError(f"packing must be 'patches' or 'tokens', got {packing!r}")
        self.data_dir = Path(data_dir)
        self.packing = packing
        self.max_patches = max_patches
        self.max_tokens = max_tokens
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.interleaved_fraction = interleaved_fraction
        self.speech_only_fraction = speech_only_fraction
        self.num_units = num_units
        self.seed = seed
        self._space: TokenSpace | None = None
        self._train: PackedDocumentDataset | None = None
        self._valid: PackedDocumentDataset | None = None
        self.prepare_data()

    def prepare_data(self) -> None:
        """Build the generated corpus if the folder is missing (atomic, safe to race)."""
        if not corpus_is_complete(self.data_dir):
            build_generated_corpus(self.data_dir, num_units=self.num_units)

    @property
    def token_space(self) -> TokenSpace:
        if self._space is None:
            self._space = TokenSpace(self.data_dir / "tokenizer.model", self.num_units)
        return self._space

    @property
    def vocab_size(self) -> int:
        """Text BPE + 8 specials + ``num_units``: the model's embedding and softmax size."""
        return self.token_space.vocab_size

    def _dataset(self, split: str, seed: int) -> PackedDocumentDataset:
        return PackedDocumentDataset(
            load_corpus(self.data_dir, split, self.num_units),
            self.token_space,
            interleaved_fraction=self.interleaved_fraction,
            speech_only_fraction=self.speech_only_fraction,
            patch_size=self.patch_size,
            packing=self.packing,
            max_tokens=self.max_tokens,
            max_patches=self.max_patches,
            seed=seed,
        )

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self._train is None:
            self._train = self._dataset("train", self.seed)
        if stage in ("fit", "validate", None) and self._valid is None:
            self._valid = self._dataset("valid", self.seed + VALID_SEED_OFFSET)

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        if self._train is None:
            self.setup("fit")
        return EpochDataLoader(
            self._train,
            self._current_epoch,
            batch_size=self.batch_size,
            collate_fn=collate,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        if self._valid is None:
            self.setup("validate")
        return DataLoader(
            self._valid,
            batch_size=self.batch_size,
            collate_fn=collate,
            num_workers=self.num_workers,
        )
