"""The LightningDataModule: packed speech-text batches from a corpus folder.

Everything Lightning-specific about the data lives here; the pipeline itself is in
:mod:`lst_lightning.data` and knows nothing of Lightning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from ..data.corpora.build import build_generated_corpus
from ..data.corpora.synthetic import CORPUS_FILES
from ..data.options import (
    CorpusOptions,
    LoaderOptions,
    MixtureOptions,
    PackingOptions,
    PatchingOptions,
    TaskOptions,
    coerce,
    grouped_hparams,
)
from ..data.records import SILENCE, read_aligned_jsonl
from ..data.sources.arrow import SpeechRecords
from ..data.sources.cache import CACHE_DIR
from ..data.sources.corpus import folder_fallbacks, folder_files, open_split
from ..data.sources.mixing import sources_of
from ..data.sources.options import coerce_sources
from ..data.sources.streamed import StreamPosition
from ..data.stream.batch import PackedBatch
from ..data.stream.dataset import Corpus, PackedDocumentDataset
from ..data.stream.packing import collate
from ..data.stream.patching import PatchingSchedule
from ..data.vocab import TokenSpace, train_unit_bpe

VALID_SEED_OFFSET = 1_000_003
"""Validation draws its fixed mixture and interleavings from ``seed + VALID_SEED_OFFSET``."""


class EpochDataLoader(DataLoader):
    """The training stream: epoch after epoch of packed batches, resumable mid-epoch, exactly.

    - Each pass sets the dataset's epoch (a new mixture, order and interleaving) and its stream
      position: the global index of the pass's first batch and the batches per optimizer step.
      From these the dataset (in every worker) knows the step of each batch it builds and patches
      its documents for that step (see :mod:`lst_lightning.data.stream.dataset`), so nothing has to
      reach the workers while they run. Lightning calls ``set_epoch`` only on samplers, which an
      IterableDataset has none of; workers are not persistent, so each pass's workers get the
      updated dataset (and the epoch plan, computed here once before they start).
    - ``endless=True`` chains the passes into one stream that never ends, so Lightning's epoch
      never ends either and the run length is ``trainer.max_steps``. This keeps DDP ranks in step:
      each rank packs its own shard of documents into a slightly different number of rows, and an
      epoch that ended on one rank before another would leave a collective waiting forever.
    - ``state_dict`` / ``load_state_dict`` (called by Lightning's fit loop when it saves and
      restores a checkpoint) hold the position of the last batch the training loop *consumed*
      (pass, batches of that pass, global index of the pass's first batch): Lightning fetches
      batches ahead, so the datamodule reports consumption through :meth:`mark_consumed`. A
      resumed run replays that pass, drops the consumed batches and continues with exactly the
      batches the uninterrupted run would have seen, bit for bit, for every patching strategy:
      the replayed documents are patched for the same steps as the first time.
    - Streamed sources (:mod:`lst_lightning.data.sources.streamed`) cannot be replayed from the
      epoch alone: each worker's batches come with its stream positions (the dataset's
      ``collate_reporting``), the positions at a pass's end become the next pass's start, and
      the state holds the starts of the consumed pass for every shard of every rank (each with
      the stream's own resume state, so a resume does not read the used documents again).
    - The state records the loader's ``num_workers`` and ``batch_size``: shards are
      ``rank * workers + worker`` over the epoch plan and steps are counted in batches, so with
      other values the saved position names other batches. Loading it with other values is an
      error naming both, unless ``resume_reshard`` (``data.loader.resume_reshard``) accepts an
      inexact resume: a fresh pass (the next epoch) from the saved step, with a warning.
    """

    def __init__(
        self,
        dataset: PackedDocumentDataset,
        step_fn: Callable[[], int] | None = None,
        endless: bool = True,
        accumulate: int = 1,
        resume_reshard: bool = False,
        **kwargs,
    ) -> None:
        """``step_fn``: the trainer's ``global_step``, only used to place a checkpoint written
        before the stream position was saved. ``accumulate``: batches per optimizer step.
        ``resume_reshard``: resume a state saved with another ``num_workers`` / ``batch_size``
        inexactly (a fresh pass) instead of raising."""
        super().__init__(dataset, **kwargs)
        self.resume_reshard = resume_reshard
        self.step_fn = step_fn
        self.endless = endless
        self.accumulate = accumulate
        self._epoch = 0
        self._skip = 0
        self._first_batch: int | None = 0
        self._in_flight: deque[tuple[int, int, int, dict]] = deque()
        self._consumed: tuple[int, int, int, dict] = (0, 0, 0, {})
        self._stream_starts: dict[int, dict[str, StreamPosition]] = {}

    def __iter__(self) -> Iterator[PackedBatch]:
        self._in_flight.clear()
        while True:
            skip, self._skip = self._skip, 0
            if self._first_batch is None:  # an old checkpoint: place the pass by the step
                step = self.step_fn() if self.step_fn is not None else 0
                self._first_batch = max(0, step * self.accumulate - skip)
            first = self._first_batch
            self.dataset.set_epoch(self._epoch)
            self.dataset.set_stream_position(first, self.accumulate)
            starts = self._stream_starts
            self.dataset.set_stream_starts(starts)
            self.dataset.epoch_plan()
            latest: dict[int, dict[str, StreamPosition]] = {}
            count = 0
            for count, batch in enumerate(super().__iter__(), start=1):
                if isinstance(batch, tuple):  # streamed sources: (batch, shard, positions)
                    batch, shard, positions = batch
                    latest[shard] = positions
                if count > skip:
                    self._in_flight.append((self._epoch, count, first, starts))
                    yield batch
            self._first_batch = first + count
            self._stream_starts = {**starts, **latest}  # where each shard's next pass starts
            self._epoch += 1
            if not self.endless:
                return

    def mark_consumed(self) -> None:
        """The training loop used the oldest batch handed out."""
        if self._in_flight:
            self._consumed = self._in_flight.popleft()

    def state_dict(self) -> dict:
        """The consumed position of every rank (rank 0's at the top level) and, with streamed
        sources, every shard's stream positions at the start of its consumed pass.

        Each rank packs its own shard into its own number of batches per pass, so at one step the
        ranks stand at different places in their passes, and only rank 0's state is written:
        the positions are gathered from all ranks (a collective; Lightning builds the checkpoint
        on every rank)."""
        epoch, batches, first_batch, starts = self._consumed
        state: dict = {
            "epoch": epoch,
            "batches": batches,
            "first_batch": first_batch,
            "num_workers": self.num_workers,
            "batch_size": self.batch_size,
        }
        ranks = _gather_ranks([epoch, batches, first_batch])
        if len(ranks) > 1:
            state["ranks"] = ranks
        if getattr(self.dataset, "streams", False):
            local = {
                shard: {n: p.to_json() for n, p in pos.items()} for shard, pos in starts.items()
            }
            state["streams"] = {}
            for part in _gather_ranks(local):
                state["streams"].update(part)
        return state

    def load_state_dict(self, state: dict) -> None:
        import torch.distributed as dist

        ranks = state.get("ranks")
        if ranks and dist.is_available() and dist.is_initialized():
            if len(ranks) != dist.get_world_size():
                raise ValueError(
                    f"the checkpoint's training stream was saved by {len(ranks)} ranks, this run "
                    f"has {dist.get_world_size()}: resume with the same number of ranks"
                )
            epoch, batches, first = ranks[dist.get_rank()]
            state = {**state, "epoch": epoch, "batches": batches, "first_batch": first}
        self._epoch, self._skip = int(state["epoch"]), int(state["batches"])
        first = state.get("first_batch")
        self._first_batch = None if first is None else int(first)
        self._stream_starts = {
            int(shard): {
                n: StreamPosition.from_json(p, f"checkpoint's stream {n}, shard {shard}")
                for n, p in pos.items()
            }
            for shard, pos in state.get("streams", {}).items()
        }
        changed = self._changed_layout(state)
        if changed:
            self._reshard(changed)
        self._consumed = (
            self._epoch,
            self._skip,
            0 if first is None else int(first),
            self._stream_starts,
        )

    def _changed_layout(self, state: dict) -> list[str]:
        """What differs between the saved loader and this one (``[]``: none, or not recorded)."""
        changed = []
        for key in ("num_workers", "batch_size"):
            saved, now = state.get(key), getattr(self, key)
            if saved is not None and int(saved) != now:
                changed.append(f"data.loader.{key}: saved {int(saved)}, now {now}")
        return changed

    def _reshard(self, changed: list[str]) -> None:
        """Move the loaded position to a fresh pass at the saved step (or refuse)."""
        import warnings

        what = "; ".join(changed)
        if not self.resume_reshard:
            raise ValueError(
                f"the checkpoint's training stream was saved with another loader ({what}): "
                "shards and steps are counted in the loader's workers and batches, so this "
                "resume would not be exact. Resume with the saved values, or set "
                "data.loader.resume_reshard=true to start a fresh pass from the saved step"
            )
        first = self._first_batch
        self._first_batch = None if first is None else first + self._skip
        self._epoch, self._skip = self._epoch + 1, 0
        same_shards = not any(c.startswith("data.loader.num_workers") for c in changed)
        if not same_shards:
            self._stream_starts = {}
        warnings.warn(
            f"resuming with another loader ({what}) under data.loader.resume_reshard: a fresh "
            f"pass (epoch {self._epoch}) from the saved step; the rest of the interrupted pass is "
            "not seen"
            + (
                ", and streamed sources read their documents of the interrupted pass again"
                if same_shards
                else ", and streamed sources start their (new) shards from the beginning"
            ),
            stacklevel=2,
        )


def _gather_ranks(local: object) -> list:
    """``local`` from every rank, in rank order (a collective under ``torch.distributed``);
    ``[local]`` without one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [local]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return gathered


class SpeechTextDataModule(L.LightningDataModule):
    """Packed batches of interleaved, speech-only and text-only documents.

    The corpus folder holds ``train.jsonl`` / ``valid.jsonl`` (aligned units), ``text_train.txt`` /
    ``text_valid.txt`` and ``tokenizer.model``. When it does not exist, the corpus that
    ``corpus.build`` names is built there on construction (``auto``: only for the default
    folders), so that :attr:`vocab_size` is known before ``setup``. Each split is checked when it
    is read: an empty file the mixture needs, duplicate ``file_id`` s and a corpus without any
    speech are errors that name the file. ``corpus.reader="arrow"`` reads the same files as
    cached Arrow, by index; ``sources`` reads Hugging Face datasets instead
    (:mod:`lst_lightning.data.sources`), several per kind by token share, text optionally
    streamed, each sharded over ranks and workers (what each read goes to
    ``<log_dir>/data_reads/`` when the trainer has a logger) and resumed exactly (:class:`EpochDataLoader`).

    The six systems of the paper's main table are data-side choices: Base SpeechLLM
    (``packing.mode=tokens``), BPE SpeechLLM (``packing.mode=tokens``,
    ``corpus.speech_tokenizer=bpe``) and LST with ``patching.strategy`` static / aligned / mixed /
    curriculum. The options come in groups (:mod:`lst_lightning.data.options`). The
    training stream patches each document for the step of the batch it lands in, computed from the
    stream position (:class:`EpochDataLoader`), so no callback has to publish the step.
    """

    def __init__(
        self,
        corpus: CorpusOptions = CorpusOptions(),
        mixture: MixtureOptions = MixtureOptions(),
        patching: PatchingOptions = PatchingOptions(),
        packing: PackingOptions = PackingOptions(),
        loader: LoaderOptions = LoaderOptions(),
        seed: int = 0,
        sources: list[dict] | None = None,
        task: TaskOptions = TaskOptions(),
    ) -> None:
        """
        Args:
            corpus: where the corpus is, what to build when it is missing, speech tokenisation.
            mixture: token shares of interleaved / speech-only / text-only training data.
            patching: how training speech runs become patches (validation is always static).
            packing: rows of global positions and tokens (LST) or of tokens (the baselines).
            loader: batch size, worker processes, endless stream.
            seed: seeds the mixture, interleavings and order (epoch by epoch) and validation.
            sources: Hugging Face datasets to train on instead of the folder's JSONL / txt
                (:class:`~lst_lightning.data.sources.options.SourceOptions`: ``kind``, ``path``,
                ``share``, ``split``, ``valid``, ``columns``, ``streaming``, ``name``);
                ``corpus.data_dir`` then only gives ``tokenizer.model`` and the validation data
                of a kind that no source gives.
            task: fine-tune on ASR or TTS documents (answer-span loss) instead of pre-training
                (:mod:`lst_lightning.lit.task_datamodule`).

        Each group also takes a plain mapping (``patching={"strategy": "aligned"}``).
        """
        super().__init__()
        corpus = coerce(CorpusOptions, corpus, "corpus")
        mixture = coerce(MixtureOptions, mixture, "mixture")
        patching = coerce(PatchingOptions, patching, "patching")
        packing = coerce(PackingOptions, packing, "packing")
        loader = coerce(LoaderOptions, loader, "loader")
        source_options = coerce_sources(sources)
        if source_options and corpus.speech_tokenizer == "bpe":
            raise ValueError(
                "data.corpus.speech_tokenizer=bpe trains its unit BPE on data_dir/train.jsonl, "
                "which data.sources replaces: use speech_tokenizer units with data.sources"
            )
        task = coerce(TaskOptions, task, "task")
        if task.name is not None and source_options:
            raise ValueError(
                f"data.task.name={task.name!r} reads its task documents from "
                "data.corpus.data_dir's JSONL, which data.sources replaces: fine-tune without "
                "data.sources"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"data.seed must be an integer >= 0, got {seed!r}")
        if packing.mode == "tokens" and patching.strategy != "static":
            raise ValueError(
                f"data.patching.strategy={patching.strategy!r} has no effect with "
                "data.packing.mode='tokens' (one patch per token): use packing mode 'patches' or "
                "leave the strategy 'static'"
            )
        self.save_hyperparameters(
            {
                "corpus": asdict(corpus),
                "mixture": asdict(mixture),
                "patching": asdict(patching),
                "packing": asdict(packing),
                "loader": asdict(loader),
                "seed": seed,
                "sources": [asdict(s) for s in source_options] or None,
                "task": asdict(task),
            }
        )
        self.sources = source_options
        self.corpus, self.mixture, self.patching = corpus, mixture, patching
        self.packing, self.loader, self.seed = packing, loader, seed
        self.task = task
        self.data_dir = Path(corpus.data_dir)
        self.num_units = corpus.num_units
        self._train_loader: EpochDataLoader | None = None
        self._space: TokenSpace | None = None
        self._train: PackedDocumentDataset | None = None
        self._valid: PackedDocumentDataset | None = None
        self._schedule: PatchingSchedule | None = None
        if not patching.has_fractions:
            self._schedule = self.resolve_schedule(None)  # checks the options now
        self.prepare_data()

    @classmethod
    def from_hparams(cls, hparams: dict, **overrides) -> SpeechTextDataModule:
        """Rebuild a datamodule from a checkpoint's ``datamodule_hyper_parameters`` (grouped, or
        flat as saved before the groups existed); ``overrides`` replace single fields as
        ``group={"field": value}``."""
        grouped = grouped_hparams(hparams)
        for group, values in overrides.items():
            grouped.setdefault(group, {}).update(values)
        return cls(**grouped)

    @property
    def patch_size(self) -> int:
        """The static speech patch size (validation, evaluation and generation)."""
        return self.patching.size

    def eval_patch_size(self, is_lst: bool) -> int | None:
        """Static patches for scoring and generation with an LST network; ``None`` (one position
        per token) for the baselines or under token packing."""
        return self.patching.size if is_lst and self.packing.mode != "tokens" else None

    def prepare_data(self) -> None:
        """Build the corpus ``data.corpus.build`` names if ``data_dir`` does not exist (atomic;
        processes that race wait for the first one's build)."""
        missing = [name for name in self.needed_files() if not (self.data_dir / name).is_file()]
        if not missing:
            return
        if self.data_dir.is_dir() and any(self.data_dir.iterdir()):
            raise FileNotFoundError(
                f"data.corpus.data_dir={self.data_dir} is not a complete corpus: it lacks "
                f"{', '.join(missing)} (a corpus needs {', '.join(CORPUS_FILES)}; nothing else "
                "is required)"
            )
        build = self.corpus.resolved_build()
        if build == "embedded":
            from ..data.corpora.embedded import EmbeddedConfig, build_embedded_corpus

            print(f"building the embedded corpus in {self.data_dir} (data.corpus.build)")
            build_embedded_corpus(
                self.data_dir, EmbeddedConfig(num_units=self.num_units), wait_for_lock=True
            )
        elif build == "generated":
            print(f"building the generated corpus in {self.data_dir} (data.corpus.build)")
            build_generated_corpus(self.data_dir, num_units=self.num_units, wait_for_lock=True)
        else:
            why = (
                "data.corpus.build is 'none'"
                if self.corpus.build == "none"
                else "data.corpus.build 'auto' builds only data/embedded and data/generated"
            )
            raise FileNotFoundError(
                f"data.corpus.data_dir={self.data_dir} does not exist (or is empty) and {why}: "
                "check the path, or ask for a build there with --data.corpus.build embedded "
                "(or generated)"
            )

    def needed_files(self) -> tuple[str, ...]:
        """The corpus folder's files this datamodule reads: all of them without ``data.sources``;
        with sources the tokenizer and the validation files of kinds no source gives."""
        if not self.sources:
            return CORPUS_FILES
        fallback = folder_fallbacks(self.sources)
        valid = folder_files(self.data_dir, "valid")
        return ("tokenizer.model",) + tuple(
            valid[k].name for k in ("speech", "text") if k in fallback
        )

    @property
    def token_space(self) -> TokenSpace:
        if self._space is None:
            unit_bpe = self.unit_bpe_path() if self.corpus.speech_tokenizer == "bpe" else None
            self._space = TokenSpace(self.data_dir / "tokenizer.model", self.num_units, unit_bpe)
        return self._space

    def unit_bpe_path(self) -> Path:
        """The corpus's unit BPE, trained on ``train.jsonl`` on first use (atomic write; racing
        processes train the same deterministic model)."""
        path = self.data_dir / f"unit_bpe_{self.corpus.unit_bpe_size}.model"
        if not path.is_file():
            units = [
                u.units for u in read_aligned_jsonl(self.data_dir / "train.jsonl", self.num_units)
            ]
            train_unit_bpe(units, path, self.corpus.unit_bpe_size, self.num_units)
        return path

    def resolve_schedule(self, max_steps: int | None) -> PatchingSchedule:
        """The training :class:`PatchingSchedule`; fractional curriculum bounds become steps of
        ``max_steps`` (an error when it is unknown)."""
        options = self.patching
        bounds = []
        for name in ("start", "end"):
            value = getattr(options, name)
            if isinstance(value, float) and options.strategy != "curriculum":
                value = 0  # unused by the other strategies
            elif isinstance(value, float):
                if max_steps is None or max_steps <= 0:
                    raise ValueError(
                        f"data.patching.{name}={value} is a fraction of trainer.max_steps, which "
                        f"is {max_steps}: set trainer.max_steps or give the step as an integer"
                    )
                value = round(value * max_steps)
            bounds.append(int(value))
        if bounds[0] > bounds[1]:
            raise ValueError(
                f"data.patching.start ({bounds[0]}) must not come after data.patching.end "
                f"({bounds[1]})"
            )
        return PatchingSchedule(
            options.strategy, options.size, options.aligned_prob, bounds[0], bounds[1]
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
        return 0.0 if self.packing.mode == "tokens" else self.schedule.aligned_probability(step)

    @property
    def vocab_size(self) -> int:
        """Text BPE + 8 specials + ``num_units``: the model's embedding and softmax size."""
        return self.token_space.vocab_size

    def load_split(self, split: str) -> Corpus:
        """Read one split and check that it can give the documents the mixture asks for."""
        corpus = open_split(self.data_dir, split, self.sources, self.corpus.reader, self.num_units)
        jsonl, text = self.data_dir / f"{split}.jsonl", self.data_dir / f"text_{split}.txt"
        if self.sources and (split == "train" or "speech" not in folder_fallbacks(self.sources)):
            jsonl = "the speech sources (data.sources)"  # type: ignore[assignment]
        if self.sources and (split == "train" or "text" not in folder_fallbacks(self.sources)):
            text = "the text sources (data.sources)"  # type: ignore[assignment]
        speech = self.mixture.interleaved + self.mixture.speech_only
        if speech > 0 and not corpus.utterances:
            raise ValueError(
                f"{jsonl} holds no utterances, but data.mixture asks for speech documents "
                f"(interleaved={self.mixture.interleaved:g}, speech_only="
                f"{self.mixture.speech_only:g}): fill it, or train on text only with "
                "data.mixture.interleaved=0"
            )
        if speech < 1 - 1e-9 and not corpus.texts and not corpus.streams:
            raise ValueError(
                f"{text} holds no documents, but data.mixture asks for text-only documents "
                f"(1 - interleaved - speech_only = {1 - speech:g}): fill it, or set the mixture's "
                "fractions to sum to 1"
            )
        for where, (count, shown) in _duplicate_ids(corpus.utterances, jsonl):
            listed = ", ".join(f"{fid!r} x{n}" for fid, n in shown.items())
            raise ValueError(
                f"{where}: {count} file_ids occur more than once ({listed}"
                f"{', ...' if count > len(shown) else ''}): every utterance must be unique, or "
                "it is trained on more than once"
            )
        if speech > 0 and not any(w.units for u in corpus.utterances for w in u.spoken_words):
            empty = sum(1 for u in corpus.utterances if u.num_frames == 0)
            silent = sum(1 for u in corpus.utterances if u.num_frames and not u.spoken_words)
            problem = (
                f"{jsonl}: none of its {len(corpus.utterances)} utterances has a unit frame on "
                f"a spoken word ({empty} have no units at all, {silent} only {SILENCE}, the rest "
                "none on their words): training would see no speech"
            )
            if not self.corpus.allow_no_speech:
                raise ValueError(
                    f"{problem}; fix the corpus, or set data.corpus.allow_no_speech=true"
                )
            print(f"warning: {problem} (data.corpus.allow_no_speech is set)")
        return corpus

    def _dataset(self, split: str, seed: int) -> PackedDocumentDataset:
        training = split == "train"
        if self.task.name is not None:
            from .task_datamodule import task_dataset

            schedule = self.schedule if training else PatchingSchedule("static", self.patch_size)
            return task_dataset(self, split, seed, schedule)
        return PackedDocumentDataset(
            self.load_split(split),
            self.token_space,
            interleaved_fraction=self.mixture.interleaved,
            speech_only_fraction=self.mixture.speech_only,
            patching=self.schedule if training else PatchingSchedule("static", self.patch_size),
            packing=self.packing.mode,
            max_tokens=self.packing.max_tokens,
            max_patches=self.packing.max_patches,
            seed=seed,
            rows_per_batch=self.loader.batch_size,
            lengths_cache=self.data_dir / CACHE_DIR / "lengths",
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
        trainer = self.trainer
        if trainer is not None and trainer.loggers and trainer.log_dir is not None:
            # what each rank / worker reads, pass by pass, in the run folder (a trainer without a
            # logger has no run folder: then nothing is written, not even to the working dir)
            self._train.read_log_dir = Path(trainer.log_dir) / "data_reads"
        self._train_loader = EpochDataLoader(
            self._train,
            self._current_step,
            endless=self.loader.endless,
            accumulate=trainer.accumulate_grad_batches if trainer is not None else 1,
            resume_reshard=self.loader.resume_reshard,
            batch_size=self.loader.batch_size,
            collate_fn=self._train.collate_reporting if self._train.streams else collate,
            num_workers=self.loader.num_workers,
        )
        return self._train_loader

    def val_dataloader(self) -> DataLoader:
        if self._valid is None:
            self.setup("validate")
        return DataLoader(
            self._valid,
            batch_size=self.loader.batch_size,
            collate_fn=collate,
            num_workers=self.loader.num_workers,
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


def _duplicate_ids(utterances, where) -> list[tuple[str, tuple[int, dict[str, int]]]]:
    """(source, (ids repeated, up to 5 of them with counts)) for each source with repeated ids:
    Arrow sources count in Arrow (no Python object per row), in-memory ones with a dict. Each
    source is checked on its own (two datasets may reuse ids)."""
    found = []
    for part in sources_of(utterances):
        if isinstance(part, SpeechRecords):
            count, shown = part.duplicate_ids()
            label = part.name
        else:
            counts: dict[str, int] = {}
            for u in part:
                counts[u.file_id] = counts.get(u.file_id, 0) + 1
            repeated = {fid: n for fid, n in counts.items() if n > 1}
            count, shown, label = len(repeated), dict(list(repeated.items())[:5]), str(where)
        if count:
            found.append((label, (count, shown)))
    return found
