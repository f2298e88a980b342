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

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    AlignedUtterance,
    iter_utf8_lines,
    read_aligned_jsonl,
)
from lst_lightning.data.sources.mixing import (
    Concatenated,
    parts_of,
    sources_of,
    weighted_order,
)
from lst_lightning.data.sources.streamed import StreamPosition, TextStream
from lst_lightning.data.stream.documents import (
    EncodedDocument,
    PlannedSpan,
    encode_plan,
    plan_interleaving,
    speech_document,
    text_document,
)
from lst_lightning.data.stream.lengths import (
    UtteranceLengths,
    build_profile,
    cached_profile,
    cached_text_lengths,
)
from lst_lightning.data.stream.packing import PackedRow, PackingMode, RowPacker, collate
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
SOURCE_STREAM = 13
"""Seeds the walk over several sources of one kind (:func:`weighted_order`) apart from the rest."""


@dataclass(frozen=True)
class Corpus:
    """One split of a corpus: aligned utterances and text-only documents.

    Either may be any indexable sequence: tuples in memory, or
    :mod:`lst_lightning.data.sources` records read by index from memory-mapped Arrow (several
    sources of a kind as one :class:`~lst_lightning.data.sources.mixing.Concatenated`, which
    carries their shares). ``streams`` are streamed text sources (with ``stream_shares``): they
    replace ``texts`` and are read by each shard in order rather than planned per epoch."""

    utterances: Sequence[AlignedUtterance]
    texts: Sequence[str]
    streams: tuple[TextStream, ...] = ()
    stream_shares: tuple[float, ...] = ()


class EpochPlan(Sequence[tuple[int, int]]):
    """An epoch's documents as two arrays (kind, index): 9 bytes a document, not a Python tuple
    each, so the plan of a large corpus stays small in every loader process."""

    def __init__(self, kinds: np.ndarray, indices: np.ndarray) -> None:
        self.kinds, self.indices = kinds, indices

    def __len__(self) -> int:
        return len(self.kinds)

    def __getitem__(self, position):  # type: ignore[override]
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return int(self.kinds[position]), int(self.indices[position])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EpochPlan):
            return np.array_equal(self.kinds, other.kinds) and np.array_equal(
                self.indices, other.indices
            )
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick an epoch's interleaved utterances, speech-only utterances and text documents so that
    their tokens come in the shares ``interleaved : speech_only : 1 - both`` (``int64`` index
    arrays: a Python int per document would make the plan of a large corpus weigh ~40 bytes a
    document in the main process, which every loader worker then inherits).

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
        return _indices([]), _indices([]), _indices(text_order)
    # (utterance, interleaved?) in order, and the running token total: arrays, not a tuple per
    # utterance, so a large corpus's walk stays small
    walk_u = np.asarray(utterance_order, dtype=np.int64).copy()
    walk_i = np.zeros(len(walk_u), dtype=bool)
    cumulative = np.zeros(len(walk_u), dtype=np.int64)
    totals = [0, 0]
    for n, u in enumerate(_ints(walk_u)):
        as_interleaved = speech_only == 0 or (
            interleaved > 0 and totals[0] * speech_only <= totals[1] * interleaved
        )
        totals[0 if as_interleaved else 1] += (
            interleaved_length(u) if as_interleaved else speech_length(u)
        )
        walk_i[n] = as_interleaved
        cumulative[n] = totals[0] + totals[1]
    keep = len(walk_u)
    texts = _indices(text_order)
    taken = 0
    if text > SHARE_TOLERANCE:
        wanted = cumulative[-1] * text / speech
        have = 0
        for i in _ints(texts):
            n = text_length(i)
            if have + n / 2 > wanted:  # adding it would move away from the share
                break
            taken += 1
            have += n
        if taken == len(texts) and have < wanted:  # text is the scarcer source
            target = have * speech / text
            keep = int(np.searchsorted(cumulative, target))
            if keep < len(walk_u) and (
                keep == 0 or cumulative[keep] - target < target - cumulative[keep - 1]
            ):
                keep += 1
    walk_u, walk_i = walk_u[:keep], walk_i[:keep]
    return walk_u[walk_i], walk_u[~walk_i], texts[:taken].copy()


def _indices(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _ints(values: np.ndarray, chunk: int = 65536) -> Iterator[int]:
    """The values as Python ints, a chunk at a time (not one list of the whole corpus)."""
    for start in range(0, len(values), chunk):
        yield from values[start : start + chunk].tolist()


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
        lengths_cache: str | Path | None = None,
    ) -> None:
        """``interleaved_fraction`` / ``speech_only_fraction``: token shares (module docstring).
        ``patching``: the schedule of ``"patches"`` packing (default static(4)); ``"tokens"``
        packing gives one patch per token whatever it says. ``rows_per_batch``: the DataLoader's
        batch size, which maps this process's rows to training steps. ``lengths_cache``: where
        the length profiles of memory-mapped speech sources are kept
        (:mod:`~lst_lightning.data.stream.lengths`; without it they are built in memory)."""
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
        if speech < 1 - SHARE_TOLERANCE and not corpus.texts and not corpus.streams:
            raise ValueError("the mixture asks for text-only documents but the corpus has none")
        if corpus.streams and speech < SHARE_TOLERANCE:
            raise ValueError(
                "streamed text sources are drawn alongside the speech documents, by token share: "
                "the mixture needs a speech share > 0 (interleaved or speech_only)"
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
        self.rows_per_batch = rows_per_batch
        self.epoch = 0
        self.first_batch = 0
        """Global index (from 0, over the whole run) of the current pass's first batch."""
        self.accumulate = 1
        """Batches per optimizer step (``trainer.accumulate_grad_batches``)."""
        self.lengths_cache = None if lengths_cache is None else Path(lengths_cache)
        self._text_lengths: np.ndarray | None = None  # encoded lengths, kept (no cache)
        self._profiles: list[UtteranceLengths] | None = None
        self._text_tables: list[np.ndarray | None] | None = None
        self._plan: tuple[int, EpochPlan] | None = None
        self.rank: int | None = None
        """This process's data-parallel rank; ``None``: from ``torch.distributed`` (if any)."""
        self.world_size: int | None = None
        """Data-parallel ranks; ``None``: from ``torch.distributed`` (1 without it)."""
        self.stream_starts: dict[int, dict[str, StreamPosition]] = {}
        """Streamed sources: each shard's position at the start of the current pass."""
        self.read_log_dir: Path | None = None
        """When set, each shard appends what it reads each pass to
        ``rank<r>.worker<w>.jsonl`` here (see :meth:`log_reads`)."""
        self._positions: dict[str, StreamPosition] = {}
        self._shard_id = 0
        # Fail here, not later in a worker, when the row sizes are impossible.
        RowPacker(packing, max_tokens, max_patches, space.pad_id, space.is_unit)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose mixture, interleavings and order :meth:`__iter__` produces."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def set_shard(self, rank: int | None, world_size: int | None) -> None:
        """Read as data-parallel rank ``rank`` of ``world_size`` (``None``: from
        ``torch.distributed``): for tests and launchers that shard without a process group."""
        if (rank is None) != (world_size is None) or (
            world_size is not None and not 0 <= rank < world_size  # type: ignore[operator]
        ):
            raise ValueError(f"need 0 <= rank < world_size, got {rank}, {world_size}")
        self.rank, self.world_size = rank, world_size

    def set_stream_starts(self, starts: dict[int, dict[str, StreamPosition]]) -> None:
        """Each shard's streamed-source positions at the start of the next pass."""
        self.stream_starts = dict(starts)

    def shard(self) -> tuple[int, int]:
        """(this process's shard, number of shards) over ranks x DataLoader workers."""
        return _shard(self.rank, self.world_size)

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
        """Baseline units of the utterance's interleaved document this epoch (from its length
        profile; from the record when its text does not add up word by word)."""
        profile, row = _of_source(self.corpus.utterances, self.length_profiles(), utterance)
        n = profile.interleaved_length(row, self._interleaving_rng(utterance))
        return self.measured_interleaved_length(utterance) if n is None else n

    def measured_interleaved_length(self, utterance: int) -> int:
        """:meth:`interleaved_length` from the record itself: parse it, lay out this epoch's
        spans, encode their text (what the profile spares the epoch plan)."""
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
        profile, row = _of_source(self.corpus.utterances, self.length_profiles(), utterance)
        return 3 + profile.num_frames(row)

    def length_profiles(self) -> list[UtteranceLengths]:
        """The length profile of each speech source (one for a plain sequence), built or loaded
        on first use: memory-mapped sources' through :attr:`lengths_cache`."""
        if self._profiles is None:
            self._profiles = self._per_source(
                self.corpus.utterances,
                lambda source, identity: cached_profile(
                    source, self.space, self.lengths_cache, identity
                ),
                lambda source: build_profile(source, self.space),
            )
        return self._profiles

    def text_length(self, index: int) -> int:
        """Baseline units (tokens) of text document ``index``: BOS, ``<t>``, BPE, EOS (from the
        cached lengths of a memory-mapped source, else encoded once and kept)."""
        cached, row = _of_source(self.corpus.texts, self.text_length_tables(), index)
        if cached is not None:
            return int(cached[row])
        if self._text_lengths is None:
            self._text_lengths = np.full(len(self.corpus.texts), -1, dtype=np.int32)
        if self._text_lengths[index] < 0:
            self._text_lengths[index] = 3 + len(self.space.encode_text(self.corpus.texts[index]))
        return int(self._text_lengths[index])

    def text_length_tables(self) -> list[np.ndarray | None]:
        """Each text source's lengths: memory-mapped sources' from :attr:`lengths_cache` (one
        pass the first time); ``None`` for the others (encoded as the plan meets them)."""
        if self._text_tables is None:
            self._text_tables = self._per_source(
                self.corpus.texts,
                lambda source, identity: cached_text_lengths(
                    source, self.space, self.lengths_cache, identity
                ),
                lambda source: None,
            )
        return self._text_tables

    def _per_source(
        self,
        collection: Sequence,
        cached: Callable[[Sequence, dict], Any],
        uncached: Callable[[Sequence], Any],
    ) -> list:
        """``cached(source, identity)`` for each source of ``collection`` that is memory-mapped
        (has an identity) when there is a :attr:`lengths_cache`, else ``uncached(source)``."""
        out = []
        for source in sources_of(collection):
            identity = getattr(source, "identity", lambda: None)()
            use_cache = identity is not None and self.lengths_cache is not None
            out.append(cached(source, identity) if use_cache else uncached(source))
        return out

    def epoch_plan(self) -> EpochPlan:
        """The epoch's documents in order, as ``(kind, index into utterances or texts)``; computed
        once per epoch and process (the loader computes it before starting workers, which then
        inherit it).

        Several sources of a kind are walked by their shares (:func:`weighted_order`, its own
        seed stream, so one source gives the same plan as before sources existed). Streamed text
        is not planned: the plan holds the speech documents only (split between interleaved and
        speech-only by their shares) and each shard draws its text while it packs."""
        if self._plan is not None and self._plan[0] == self.epoch:
            return self._plan[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        utterance_order = rng.permutation(len(self.corpus.utterances))
        text_order = rng.permutation(len(self.corpus.texts))
        for kind, (collection, length) in enumerate(
            ((self.corpus.utterances, self.speech_length), (self.corpus.texts, self.text_length))
        ):
            parts = parts_of(collection)
            if len(parts) > 1:
                walk_rng = np.random.default_rng([self.seed, self.epoch, SOURCE_STREAM, kind])
                order = weighted_order(parts, walk_rng, length)
                if kind == 0:
                    utterance_order = order
                else:
                    text_order = order
        interleaved, speech_only = self.interleaved_fraction, self.speech_only_fraction
        if self.corpus.streams:  # text comes from the streams: plan the speech kinds only
            total = interleaved + speech_only
            interleaved, speech_only, text_order = interleaved / total, speech_only / total, []
        inter, speech, texts = select_mixture(
            utterance_order,
            self.interleaved_length,
            self.speech_length,
            text_order,
            self.text_length,
            interleaved,
            speech_only,
        )
        kinds = np.concatenate(
            [
                np.full(len(inter), INTERLEAVED, dtype=np.int8),
                np.full(len(speech), SPEECH, dtype=np.int8),
                np.full(len(texts), TEXT, dtype=np.int8),
            ]
        )
        indices = np.concatenate([inter, speech, texts])
        del inter, speech, texts
        order = rng.permutation(len(kinds))
        plan = EpochPlan(kinds[order], indices[order])
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
        shard, num_shards = self.shard()
        worker, num_workers = _worker()
        self._shard_id = shard
        packer = RowPacker(
            self.packing,
            self.max_tokens,
            self.max_patches,
            self.space.pad_id,
            self.space.is_unit,
            speech_frames=self.space.speech_frames,
        )
        plan = self.epoch_plan()
        starts = self.stream_starts.get(shard, {})
        self._positions = {
            s.name: starts.get(s.name, StreamPosition()) for s in self.corpus.streams
        }
        self.log_reads(shard, num_shards, worker, num_workers, "start")
        feeder = _StreamFeeder(self, shard, num_shards) if self.corpus.streams else None

        def place(position: int, doc: EncodedDocument, kind: int) -> Iterator[PackedRow]:
            return self.place_document(packer, position, doc, kind, worker, num_workers)

        for position in range(shard, len(plan), num_shards):
            kind, index = plan[position]
            yield from place(position, self.build_document(position, kind, index), kind)
            if feeder is not None:
                feeder.add_speech(
                    self.interleaved_length(index)
                    if kind == INTERLEAVED
                    else self.speech_length(index)
                )
                for text in feeder.texts_due():
                    yield from place(
                        len(plan) + feeder.drawn, text_document(text, self.space), TEXT
                    )
        yield from packer.flush()
        self.log_reads(shard, num_shards, worker, num_workers, "end")

    def place_document(
        self,
        packer: RowPacker,
        position: int,
        doc: EncodedDocument,
        kind: int,
        worker: int,
        num_workers: int,
        loss_mask: np.ndarray | None = None,
    ) -> Iterator[PackedRow]:
        """Patch ``doc`` for the step of the row it lands in and add it to ``packer`` (with
        ``loss_mask``, a fine-tuning answer mask, when given)."""
        row = packer.rows_emitted
        step = self.step_of_row(row, worker, num_workers)
        lengths, aligned = self.patch_document(position, doc, step)
        if not packer.starts_in_current_row(len(doc), lengths):
            # The document begins in the next row, which may belong to the next step.
            yield from packer.close_row()
            later = self.step_of_row(row + 1, worker, num_workers)
            if later != step:
                lengths, aligned = self.patch_document(position, doc, later)
        yield from packer.add(doc.tokens, lengths, aligned, KIND_NAMES[kind], loss_mask=loss_mask)

    # -- streamed sources and what each shard read -------------------------------------------------
    @property
    def streams(self) -> bool:
        """Whether the corpus has streamed sources (whose positions the batches report)."""
        return bool(self.corpus.streams)

    def stream_report(self) -> tuple[int, dict[str, StreamPosition]]:
        """(this shard, its streamed-source positions after the documents used so far)."""
        return self._shard_id, dict(self._positions)

    def collate_reporting(self, rows: list[PackedRow]):
        """The collate of a training loader over streamed sources: ``(batch, shard, positions)``
        (runs in the worker that built the rows, so it reads that worker's positions)."""
        return (collate(rows), *self.stream_report())

    def log_reads(self, shard: int, num_shards: int, worker: int, workers: int, when: str) -> None:
        """Append one JSON line saying what this shard reads this pass (at ``start``: the plan
        positions ``shard::num_shards``, the documents per source and a digest of their indices,
        the streams' start positions) or read (at ``end``: the streams' positions)."""
        if self.read_log_dir is None:
            return
        rank, world = shard // workers, num_shards // workers
        entry: dict = {
            "when": when,
            "epoch": self.epoch,
            "first_batch": self.first_batch,
            "rank": rank,
            "world_size": world,
            "worker": worker,
            "workers": workers,
            "plan_positions": f"{shard}::{num_shards}",
        }
        if when == "start":
            plan = self.epoch_plan()
            kinds, indices = plan.kinds[shard::num_shards], plan.indices[shard::num_shards]
            reads = {}
            for is_text, collection in ((False, self.corpus.utterances), (True, self.corpus.texts)):
                chosen = indices[(kinds == TEXT) == is_text]
                for part in parts_of(collection):
                    mine = chosen[(chosen >= part.start) & (chosen < part.stop)] - part.start
                    label = part.name or ("texts" if is_text else "utterances")
                    reads[label] = {
                        "documents": int(len(mine)),
                        "rows_sha1": hashlib.sha1(np.sort(mine).tobytes()).hexdigest()[:16],
                    }
            entry["reads"] = reads
        if self.corpus.streams:
            entry["streams"] = {n: [p.lap, p.taken] for n, p in self._positions.items()}
        folder = Path(self.read_log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry) + "\n"
        fd = os.open(
            folder / f"rank{rank}.worker{worker}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        try:
            os.write(fd, line.encode())  # one append per line: whole lines even across restarts
        finally:
            os.close(fd)

    def text_units(self, text: str) -> int:
        """Baseline units of a text document: BOS, ``<t>``, BPE, EOS."""
        return 3 + len(self.space.encode_text(text))


class _StreamFeeder:
    """Draws one shard's text documents from the streamed sources as the token shares ask.

    After each speech document the shard has packed, it takes text documents while that brings
    the pass's text tokens closer to ``speech tokens x text share / speech share`` (the rule of
    :func:`select_mixture`), each from the stream furthest below its share of the text. A
    document read but not taken waits for the next call (it is not counted as used)."""

    def __init__(self, dataset: PackedDocumentDataset, shard: int, num_shards: int) -> None:
        streams, shares = dataset.corpus.streams, dataset.corpus.stream_shares
        total = float(sum(shares))
        self.dataset = dataset
        self.shares = [w / total for w in shares]
        speech = dataset.interleaved_fraction + dataset.speech_only_fraction
        self.ratio = max(0.0, 1.0 - speech) / speech
        self.readers = [s.documents(shard, num_shards, dataset._positions[s.name]) for s in streams]
        self.names = [s.name for s in streams]
        self.pending: list[tuple[StreamPosition, str, int] | None] = [None] * len(streams)
        self.tokens = [0] * len(streams)
        self.speech_units = 0
        self.drawn = 0

    def add_speech(self, units: int) -> None:
        self.speech_units += units

    def texts_due(self) -> Iterator[str]:
        wanted = self.speech_units * self.ratio
        while True:
            k = min(range(len(self.readers)), key=lambda j: self.tokens[j] / self.shares[j])
            if self.pending[k] is None:
                position, text = next(self.readers[k])
                self.pending[k] = (position, text, self.dataset.text_units(text))
            position, text, n = self.pending[k]  # type: ignore[misc]
            if sum(self.tokens) + n / 2 > wanted:
                return
            self.pending[k] = None
            self.tokens[k] += n
            self.drawn += 1
            self.dataset._positions[self.names[k]] = position
            yield text


def _of_source(collection: Sequence, per_source: list, index: int) -> tuple[Any, int]:
    """(the entry of ``per_source`` for the source holding ``index``, the row in that source)."""
    if isinstance(collection, Concatenated):
        k, row = collection.locate(index)
        return per_source[k], row
    return per_source[0], index


def _worker() -> tuple[int, int]:
    """(this DataLoader worker, number of workers); (0, 1) in the main process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _shard(rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """(this process's shard, number of shards) over distributed ranks x DataLoader workers;
    ``rank`` / ``world`` override ``torch.distributed``."""
    if rank is None or world is None:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker, workers = _worker()
    return rank * workers + worker, world * workers
