"""The LightningDataModule: packed speech-text batches from a corpus folder.

Everything Lightning-specific about the data lives here; the pipeline itself is in
:mod:`lst_lightning.data` and knows nothing of Lightning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import lightning as L
from torch.utils.data import DataLoader

from ..data.batch import PackedBatch
from ..data.build import build_generated_corpus, corpus_is_complete
from ..data.dataset import PackedDocumentDataset, load_corpus
from ..data.packing import collate
from ..data.patching import STRATEGIES, PatchingSchedule, PatchingStrategy
from ..data.records import DEFAULT_NUM_UNITS, read_aligned_jsonl
from ..data.synthetic import CORPUS_FILES
from ..data.vocab import DEFAULT_UNIT_BPE_SIZE, TokenSpace, train_unit_bpe

VALID_SEED_OFFSET = 1_000_003
"""Validation draws its fixed mixture and interleavings from ``seed + VALID_SEED_OFFSET``."""


class EpochDataLoader(DataLoader):
    """The training stream: epoch after epoch of packed batches, resumable mid-epoch.

    - Each pass sets the dataset's epoch (a new mixture, order and interleaving) and the current
      training step (for the patching schedule; Lightning starts workers before
      ``on_train_start``, so after a resume the first documents are already patched for the
      restored step). Lightning calls ``set_epoch`` only on samplers, which an IterableDataset has
      none of; workers are not persistent, so each pass's workers get the updated dataset.
    - ``endless=True`` chains the passes into one stream that never ends, so Lightning's epoch
      never ends either and the run length is ``trainer.max_steps``. This keeps DDP ranks in step:
      each rank packs its own shard of documents into a slightly different number of rows, and an
      epoch that ended on one rank before another would leave a collective waiting forever.
    - ``state_dict`` / ``load_state_dict`` (called by Lightning's fit loop when it saves and
      restores a checkpoint) hold the position of the last batch the training loop *consumed*:
      Lightning fetches batches ahead, so the datamodule reports consumption through
      :meth:`mark_consumed`. A resumed run skips that many batches of that pass and continues with
      exactly the batches the uninterrupted run would have seen (for static, aligned and mixed
      patching; under the curriculum the skipped documents are re-patched for the restored step,
      which can move later row boundaries).
    """

    def __init__(
        self,
        dataset: PackedDocumentDataset,
        step_fn: Callable[[], int] | None = None,
        endless: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.step_fn = step_fn
        self.endless = endless
        self._epoch = 0
        self._skip = 0
        self._in_flight: deque[tuple[int, int]] = deque()
        self._consumed = (0, 0)

    def __iter__(self) -> Iterator[PackedBatch]:
        self._in_flight.clear()
        while True:
            self.dataset.set_epoch(self._epoch)
            if self.step_fn is not None:
                self.dataset.set_step(self.step_fn())
            skip, self._skip = self._skip, 0
            for index, batch in enumerate(super().__iter__(), start=1):
                if index > skip:
                    self._in_flight.append((self._epoch, index))
                    yield batch
            self._epoch += 1
            if not self.endless:
                return

    def mark_consumed(self) -> None:
        """The training loop used the oldest batch handed out."""
        if self._in_flight:
            self._consumed = self._in_flight.popleft()

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self._consumed
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch, self._skip = int(state["epoch"]), int(state["batches"])
        self._consumed = (self._epoch, self._skip)


class SpeechTextDataModule(L.LightningDataModule):
    """Packed batches of interleaved, speech-only and text-only documents.

    The corpus folder holds ``train.jsonl`` / ``valid.jsonl`` (aligned units), ``text_train.txt`` /
    ``text_valid.txt`` and ``tokenizer.model``. When it is missing, the generated corpus is built
    there on construction (a few seconds), so that :attr:`vocab_size` is known before ``setup``.

    The six systems of the paper's main table are data-side choices: Base SpeechLLM
    (``packing=tokens``), BPE SpeechLLM (``packing=tokens, speech_tokenizer=bpe``) and LST with
    ``patching`` static / aligned / mixed / curriculum. The training step reaches the dataset (and
    its worker processes) through :meth:`publish_step`, called by
    :class:`~lst_lightning.callbacks.curriculum.CurriculumCallback` every step.
    """

    def __init__(
        self,
        data_dir: str = "data/embedded",
        build: Literal["embedded", "generated", "none"] = "embedded",
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
        endless: bool = True,
        patching: PatchingStrategy = "static",
        aligned_prob: float = 0.5,
        curriculum_start: int | float = 1 / 3,
        curriculum_end: int | float = 2 / 3,
        speech_tokenizer: Literal["units", "bpe"] = "units",
        unit_bpe_size: int = DEFAULT_UNIT_BPE_SIZE,
    ) -> None:
        """
        Args:
            data_dir: corpus folder (``train.jsonl``, ``valid.jsonl``, ``text_*.txt``,
                ``tokenizer.model``; any corpus in that layout works).
            build: what to build into ``data_dir`` when it holds no complete corpus: the
                ``embedded`` corpus (Austen read by espeak-ng; needs ``make setup-system``), the
                small ``generated`` corpus (no system packages), or ``none`` (an error naming the
                folder).
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
            endless: chain the training epochs into one stream that never ends (the run length is
                ``trainer.max_steps``; keeps DDP ranks in step). ``False`` ends Lightning's epoch
                with each pass over the corpus.
            patching: training patches in ``"patches"`` mode: ``static`` (chunks of
                ``patch_size``), ``aligned`` (a patch per word and per silence gap),
                ``aligned_merged`` (silence joins the word before it), ``aligned_bpe`` (a patch
                per BPE piece of each word), ``mixed`` (aligned with probability
                ``aligned_prob`` per document) or ``curriculum`` (the paper's best). Validation
                always uses static patches.
            aligned_prob: ``mixed`` only: probability of aligned patching per document.
            curriculum_start: ``curriculum`` only: the aligned probability is 1 before this step
                (paper: T/3); an int is a step, a float in [0, 1] a fraction of
                ``trainer.max_steps``.
            curriculum_end: ``curriculum`` only: the probability falls linearly to 0 at this step
                and stays 0 (paper: 2T/3); int step or float fraction as above.
            speech_tokenizer: ``"units"`` (one token per unit, paper's LST and Base SpeechLLM) or
                ``"bpe"`` (units re-tokenised by a unit BPE trained on the training split's unit
                sequences and cached as ``unit_bpe_<size>.model`` in ``data_dir``: the paper's
                BPE SpeechLLM baseline).
            unit_bpe_size: pieces of that unit BPE (paper: 1k).
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
        if patching not in STRATEGIES:
            raise ValueError(
                f"data.patching must be one of {', '.join(STRATEGIES)}, got {patching!r}"
            )
        if packing == "tokens" and patching != "static":
            raise ValueError(
                f"data.patching={patching!r} has no effect with data.packing='tokens' (one patch "
                "per token): use packing 'patches' or leave patching 'static'"
            )
        if speech_tokenizer not in ("units", "bpe"):
            raise ValueError(
                f"data.speech_tokenizer must be 'units' or 'bpe', got {speech_tokenizer!r}"
            )
        for name, value in (
            ("curriculum_start", curriculum_start),
            ("curriculum_end", curriculum_end),
        ):
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(f"data.{name}={value} is a fraction of max_steps: want [0, 1]")
            if value < 0:
                raise ValueError(f"data.{name} must be >= 0, got {value}")
        self.patching = patching
        self.aligned_prob = aligned_prob
        self.curriculum_start = curriculum_start
        self.curriculum_end = curriculum_end
        self.speech_tokenizer = speech_tokenizer
        self.unit_bpe_size = unit_bpe_size
        self.data_dir = Path(data_dir)
        self.build = build
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
        self.endless = endless
        self._train_loader: EpochDataLoader | None = None
        self._space: TokenSpace | None = None
        self._train: PackedDocumentDataset | None = None
        self._valid: PackedDocumentDataset | None = None
        fractions = any(isinstance(v, float) for v in (curriculum_start, curriculum_end))
        self._schedule: PatchingSchedule | None = None
        if patching != "curriculum" or not fractions:
            self._schedule = self.resolve_schedule(None)  # checks the options now
        self.prepare_data()

    def prepare_data(self) -> None:
        """Build the corpus ``data.build`` names if ``data_dir`` holds none (atomic, safe to race)."""
        if corpus_is_complete(self.data_dir):
            return
        if self.build == "embedded":
            from ..data.embedded import EmbeddedConfig, build_embedded_corpus

            build_embedded_corpus(self.data_dir, EmbeddedConfig(num_units=self.num_units))
        elif self.build == "generated":
            build_generated_corpus(self.data_dir, num_units=self.num_units)
        else:
            raise FileNotFoundError(
                f"data.data_dir={self.data_dir} holds no complete corpus (it needs "
                f"{', '.join(CORPUS_FILES)}) and data.build is 'none'"
            )

    @property
    def token_space(self) -> TokenSpace:
        if self._space is None:
            unit_bpe = self.unit_bpe_path() if self.speech_tokenizer == "bpe" else None
            self._space = TokenSpace(self.data_dir / "tokenizer.model", self.num_units, unit_bpe)
        return self._space

    def unit_bpe_path(self) -> Path:
        """The corpus's unit BPE, trained on ``train.jsonl`` on first use (atomic write; racing
        processes train the same deterministic model)."""
        path = self.data_dir / f"unit_bpe_{self.unit_bpe_size}.model"
        if not path.is_file():
            units = [
                u.units for u in read_aligned_jsonl(self.data_dir / "train.jsonl", self.num_units)
            ]
            train_unit_bpe(units, path, self.unit_bpe_size, self.num_units)
        return path

    def resolve_schedule(self, max_steps: int | None) -> PatchingSchedule:
        """The training :class:`PatchingSchedule`; fractional curriculum bounds become steps of
        ``max_steps`` (an error when it is unknown)."""
        bounds = []
        for name in ("curriculum_start", "curriculum_end"):
            value = getattr(self, name)
            if isinstance(value, float) and self.patching != "curriculum":
                value = 0  # unused by the other strategies
            elif isinstance(value, float):
                if max_steps is None or max_steps <= 0:
                    raise ValueError(
                        f"data.{name}={value} is a fraction of trainer.max_steps, which is "
                        f"{max_steps}: set trainer.max_steps or give the step as an integer"
                    )
                value = round(value * max_steps)
            bounds.append(int(value))
        if bounds[0] > bounds[1]:
            raise ValueError(
                f"data.curriculum_start ({bounds[0]}) must not come after data.curriculum_end "
                f"({bounds[1]})"
            )
        return PatchingSchedule(
            self.patching, self.patch_size, self.aligned_prob, bounds[0], bounds[1]
        )

    @property
    def schedule(self) -> PatchingSchedule:
        """The training patching schedule; fractional curriculum bounds are resolved with the
        attached trainer's ``max_steps`` on first use."""
        if self._schedule is None:
            max_steps = self.trainer.max_steps if self.trainer is not None else None
            self._schedule = self.resolve_schedule(max_steps)
        return self._schedule

    def aligned_probability(self, step: int) -> float:
        """Probability that a training document built at ``step`` is patched aligned."""
        return 0.0 if self.packing == "tokens" else self.schedule.aligned_probability(step)

    def publish_step(self, step: int) -> None:
        """Make ``step`` the step that the next training documents are patched for (in this
        process and in every DataLoader worker)."""
        if self._train is not None:
            self._train.set_step(step)

    @property
    def vocab_size(self) -> int:
        """Text BPE + 8 specials + ``num_units``: the model's embedding and softmax size."""
        return self.token_space.vocab_size

    def _dataset(self, split: str, seed: int) -> PackedDocumentDataset:
        training = split == "train"
        return PackedDocumentDataset(
            load_corpus(self.data_dir, split, self.num_units),
            self.token_space,
            interleaved_fraction=self.interleaved_fraction,
            speech_only_fraction=self.speech_only_fraction,
            patching=self.schedule if training else PatchingSchedule("static", self.patch_size),
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

    def _current_step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        if self._train is None:
            self.setup("fit")
        self._train_loader = EpochDataLoader(
            self._train,
            self._current_step,
            endless=self.endless,
            batch_size=self.batch_size,
            collate_fn=collate,
            num_workers=self.num_workers,
        )
        return self._train_loader

    def val_dataloader(self) -> DataLoader:
        if self._valid is None:
            self.setup("validate")
        return DataLoader(
            self._valid,
            batch_size=self.batch_size,
            collate_fn=collate,
            num_workers=self.num_workers,
        )

    def test_dataloader(self) -> DataLoader:
        """The held-out split again (static patches): ``lst-lightning test`` reports its loss,
        and the benchmark callback adds the zero-shot evaluation."""
        return self.val_dataloader()

    def on_after_batch_transfer(self, batch: PackedBatch, dataloader_idx: int) -> PackedBatch:
        """Tell the training stream which batch the loop is about to use (see
        :class:`EpochDataLoader`: its checkpointed position counts consumed batches only)."""
        trainer = self.trainer
        if trainer is not None and trainer.training and self._train_loader is not None:
            self._train_loader.mark_consumed()
        return batch
