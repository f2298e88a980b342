"""The embedded default corpus: Jane Austen read aloud by espeak-ng, in the datamodule's layout.

``python -m lst_lightning.data.corpora.embedded --out data/embedded [--seed 0] [--utterances N] ...``

Everything comes from the package registries and is deterministic from the seed:

1. **Text** (:mod:`~lst_lightning.data.corpora.textsource`): the six novels, cleaned into paragraphs of
   sentences. Paragraphs are shuffled with the seed; sentences of ``min_words..max_words`` words
   are taken from the first paragraphs until there are enough utterances. Every other paragraph
   becomes a text-only document: text-only documents never contain the synthesised paragraphs.
2. **Speech** (:mod:`~lst_lightning.data.corpora.tts`): each sentence is spoken by one of the training
   voices at a rate drawn from ``rate_range``, with the engine's own word timings. One more voice
   (``heldout_voice``) speaks a separate set of sentences that is never used for training:
   ``heldout_voice.jsonl`` and ``heldout_voice_audio/`` are for evaluation on an unseen speaker.
   Synthesis runs in shards of ``shard_size`` utterances, in parallel worker processes, one fresh
   process per shard (see :mod:`~lst_lightning.data.corpora.tts` for why); each shard is an HF ``datasets``
   dataset (the ingest stage's columns, plus ``voice``, ``rate``, ``split``, ``words``) written
   atomically under ``<out>.work/shards/`` and skipped when present, so an interrupted build
   resumes where it stopped.
3. **Units** (:class:`~lst_lightning.data.speech.units.MelKMeansUnits`): the offline unit tokenizer is
   fitted on the training utterances only and saved as ``units.pt``; every utterance becomes one
   unit per 25 Hz frame, never deduplicated.
4. **Alignment** (:func:`~lst_lightning.data.speech.align.utterance_from_timings`): word timings plus units
   give the paper's aligned records, with ``[SIL]`` for every gap.
5. **Text tokenizer** (:func:`~lst_lightning.data.vocab.train_text_tokenizer`): a BPE trained on the
   training transcripts and training text documents.

The output folder is assembled beside ``out`` and renamed into place, so it is either complete or
absent. Files: ``train.jsonl``, ``valid.jsonl``, ``text_train.txt``, ``text_valid.txt``,
``tokenizer.model`` (what the datamodule reads), plus ``stats.json`` (sizes and timings, for
reading only), ``heldout_voice.jsonl``, ``heldout_voice_audio/``, ``units.pt`` and ``build.json``
(the configuration it was built from). One build at a time: a second build of the same ``out``
stops naming the first (``<out>.lock``, :mod:`lst_lightning.data.locking`); after ``kill -9`` the
rerun finds the shards of the same configuration and only synthesises the missing ones.
Bad utterances (a word the engine did not speak, an alignment that does not fit the audio) are
skipped and counted (``on_error="skip"``, the default) or stop the build (``"stop"``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lst_lightning.data.corpora.build import report_build
from lst_lightning.data.corpora.synthetic import (
    CORPUS_FILES,
    FRAME_RATE_HZ,
    STATS_FILE,
    split_stats,
)
from lst_lightning.data.corpora.textsource import (
    BOOKS,
    SOURCE_LICENCE,
    SOURCE_PACKAGE,
    Paragraph,
    TextSourceError,
    load_austen,
    load_text_file,
)
from lst_lightning.data.corpora.tts import EspeakMissing, check_voices
from lst_lightning.data.locking import output_lock
from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    AlignedUtterance,
    write_aligned_jsonl,
    write_text_atomic,
)
from lst_lightning.data.speech.align import WordTiming, check_words, utterance_from_timings
from lst_lightning.data.speech.audio import SAMPLE_RATE, RecordError, encode_wav, load_audio
from lst_lightning.data.speech.units import MelKMeansUnits, num_frames
from lst_lightning.data.vocab import TokenSpace, train_text_tokenizer

TRAIN_VOICES = (
    "en-us+m3",
    "en-us+f2",
    "en+m1",
    "en-gb-scotland+f4",
    "en-029+m5",
    "en-gb-x-gbclan+f1",
)
"""espeak-ng accents x voice variants: three male and three female training speakers."""
HELDOUT_VOICE = "en-gb-x-rp+f3"
"""An accent and a variant that no training voice uses: the unseen speaker for evaluation."""
EXTRA_FILES = ("heldout_voice.jsonl", "heldout_voice_audio", "units.pt", "build.json")
HELDOUT = "heldout"
ON_ERROR = ("skip", "stop")


@dataclass(frozen=True)
class EmbeddedConfig:
    """Everything the corpus depends on; the same configuration gives the same bytes."""

    seed: int = 0
    """Seeds the paragraph order, voices, rates, the k-means codebook and the split."""
    utterances: int = 2400
    """Utterances spoken by the training voices, train and valid together (about 2.6 h)."""
    heldout_utterances: int = 100
    """Utterances spoken by the held-out voice, for evaluation only."""
    voices: tuple[str, ...] = TRAIN_VOICES
    """espeak-ng voices of the training and validation speech, used in turn (shuffled)."""
    heldout_voice: str = HELDOUT_VOICE
    """espeak-ng voice kept out of training."""
    min_words: int = 4
    """Shortest sentence that is synthesised (in words)."""
    max_words: int = 25
    """Longest sentence that is synthesised; longer ones stay text (or are not used)."""
    rate_range: tuple[int, int] = (150, 195)
    """Speaking rate in words per minute, drawn uniformly per utterance (espeak-ng default 175)."""
    num_units: int = DEFAULT_NUM_UNITS
    """Unit codebook size (paper: 501 HuBERT k-means units; here log-mel k-means)."""
    text_vocab_size: int = 1024
    """Upper bound on the text BPE vocabulary (paper: Llama-2's 32k; real English needs > 512)."""
    valid_fraction: float = 0.05
    """Share of the training-voice utterances and of the text documents held out for validation."""
    shard_size: int = 100
    """Utterances per synthesis shard (the unit of resumption and of parallel work)."""
    books: tuple[str, ...] = tuple(BOOKS)
    """The Austen novels to draw from (janeaustenr data set names)."""
    text_file: str | None = None
    """A UTF-8 plain-text file to use instead of the novels (paragraphs separated by blank lines)."""

    def __post_init__(self) -> None:
        if self.utterances < 2 or self.heldout_utterances < 0:
            raise ValueError("need utterances >= 2 (train and valid) and heldout_utterances >= 0")
        if not self.voices:
            raise ValueError("need at least one training voice")
        if self.heldout_voice in self.voices:
            raise ValueError(f"the held-out voice {self.heldout_voice!r} is also a training voice")
        if not 1 <= self.min_words <= self.max_words:
            raise ValueError(
                f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}"
            )
        lo, hi = self.rate_range
        if not 80 <= lo <= hi <= 450:
            raise ValueError(
                f"rate_range must lie in espeak-ng's 80..450 wpm, got {self.rate_range}"
            )
        if not 0 < self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON values (tuples become lists), as saved in ``config.json``
        and ``build.json``, so a saved configuration compares equal to the live one."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PlannedUtterance:
    """One sentence to synthesise, and how."""

    file_id: str
    text: str
    voice: str
    rate: int
    seed: int
    split: str


@dataclass(frozen=True)
class CorpusPlan:
    """The whole corpus before synthesis: utterances in shard order and the text documents."""

    utterances: tuple[PlannedUtterance, ...]
    text_train: tuple[str, ...]
    text_valid: tuple[str, ...]

    def shards(self, shard_size: int) -> list[tuple[PlannedUtterance, ...]]:
        u = self.utterances
        return [u[i : i + shard_size] for i in range(0, len(u), shard_size)]


def load_paragraphs(config: EmbeddedConfig) -> list[Paragraph]:
    if config.text_file is not None:
        return load_text_file(config.text_file)
    return load_austen(config.books)


def plan_corpus(config: EmbeddedConfig, paragraphs: Sequence[Paragraph]) -> CorpusPlan:
    """Choose sentences, voices, rates and splits from the seed (see the module docstring)."""
    rng = np.random.default_rng([config.seed, 11])
    order = rng.permutation(len(paragraphs)).tolist()
    wanted = config.heldout_utterances + config.utterances
    chosen: list[tuple[Paragraph, int, str]] = []
    used = 0  # paragraphs (in shuffled order) that give speech; the rest give text documents
    while used < len(order) and len(chosen) < wanted:
        paragraph = paragraphs[order[used]]
        for j, sentence in enumerate(paragraph.sentences):
            if config.min_words <= len(sentence.split()) <= config.max_words:
                chosen.append((paragraph, j, sentence))
        used += 1
    if len(chosen) < wanted:
        raise ValueError(
            f"the text has only {len(chosen)} sentences of {config.min_words}-{config.max_words} "
            f"words, fewer than the {wanted} utterances asked for"
        )
    chosen = chosen[:wanted]
    n_valid = max(1, round(config.utterances * config.valid_fraction))
    voices = [config.voices[i % len(config.voices)] for i in range(config.utterances)]
    voices = [voices[i] for i in rng.permutation(len(voices)).tolist()]
    lo, hi = config.rate_range
    rates = rng.integers(lo, hi + 1, size=wanted).tolist()
    seeds = rng.integers(0, 2**31, size=wanted).tolist()
    source = "austen" if config.text_file is None else "text"
    planned = []
    for k, (paragraph, j, sentence) in enumerate(chosen):
        if k < config.heldout_utterances:
            voice, split = config.heldout_voice, HELDOUT
        else:
            i = k - config.heldout_utterances
            voice = voices[i]
            split = "valid" if i >= config.utterances - n_valid else "train"
        file_id = f"{source}/{paragraph.book}/{paragraph.index:05d}-{j:02d}/{voice}"
        planned.append(PlannedUtterance(file_id, sentence, voice, rates[k], seeds[k], split))
    docs = [paragraphs[i].text for i in order[used:]]
    if len(docs) < 2:
        raise ValueError(
            f"no text is left for text-only documents after taking {wanted} utterances "
            f"from {len(paragraphs)} paragraphs"
        )
    n_text_valid = max(1, round(len(docs) * config.valid_fraction))
    return CorpusPlan(
        tuple(planned),
        tuple(docs[: len(docs) - n_text_valid]),
        tuple(docs[len(docs) - n_text_valid :]),
    )


# -- synthesis shards --------------------------------------------------------------------------------------


def _shard_features() -> Any:
    from datasets import Features, List, Value

    word = {"word": Value("string"), "start": Value("float64"), "end": Value("float64")}
    return Features(
        {
            "file_id": Value("string"),
            "audio": {"bytes": Value("binary"), "path": Value("string")},
            "text": Value("string"),
            "num_samples": Value("int64"),
            "voice": Value("string"),
            "rate": Value("int32"),
            "split": Value("string"),
            "words": List(word),
        }
    )


def shard_path(work: Path, index: int) -> Path:
    return work / "shards" / f"{index:05d}"


def _synthesize_shard(
    work: str, index: int, items: tuple[PlannedUtterance, ...], on_error: str
) -> dict[str, Any]:
    """Speak one shard and write it as a dataset (in a fresh worker process; see tts)."""
    import datasets
    import torch

    from lst_lightning.data.corpora.tts import SynthesisError, synthesize

    torch.set_num_threads(1)  # one process per core
    datasets.disable_progress_bars()
    rows: dict[str, list[Any]] = {k: [] for k in _shard_features()}
    skipped: Counter = Counter()
    examples: dict[str, str] = {}
    for item in items:
        try:
            try:
                wav, timings = synthesize(item.text, item.voice, item.rate, item.seed)
            except SynthesisError as e:
                raise RecordError(item.file_id, e.problem, e.detail) from None
        except RecordError as e:
            if on_error == "stop":
                raise
            skipped[e.problem] += 1
            examples.setdefault(e.problem, str(e))
            continue
        rows["file_id"].append(item.file_id)
        rows["audio"].append({"bytes": encode_wav(wav), "path": None})
        rows["text"].append(item.text)
        rows["num_samples"].append(len(wav))
        rows["voice"].append(item.voice)
        rows["rate"].append(item.rate)
        rows["split"].append(item.split)
        rows["words"].append([{"word": t.word, "start": t.start, "end": t.end} for t in timings])
    final = shard_path(Path(work), index)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    datasets.Dataset.from_dict(rows, features=_shard_features()).save_to_disk(str(partial))
    info = {"utterances": len(rows["file_id"]), "skipped": dict(skipped), "examples": examples}
    write_text_atomic(partial / "shard.json", json.dumps(info, indent=2) + "\n")
    os.replace(partial, final)
    return {"index": index, **info}


def synthesize_shards(
    plan: CorpusPlan,
    work: str | Path,
    shard_size: int,
    workers: int = 2,
    on_error: str = "skip",
) -> list[int]:
    """Write every missing shard under ``work/shards``; return the indices that were synthesised.

    Each shard runs in its own fresh process (``forkserver``, at most ``workers`` at a time), so a
    shard's audio depends only on its utterances, whichever worker or run produces it.
    """
    work = Path(work)
    (work / "shards").mkdir(parents=True, exist_ok=True)
    for stray in (work / "shards").glob(".*.partial-*"):
        shutil.rmtree(stray)  # left by an interrupted run
    shards = plan.shards(shard_size)
    todo = [i for i in range(len(shards)) if not (shard_path(work, i) / "shard.json").is_file()]
    if not todo:
        return []
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lst_lightning.data.corpora.tts", "datasets"])
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(todo))), mp_context=context, max_tasks_per_child=1
    ) as pool:
        futures = [pool.submit(_synthesize_shard, str(work), i, shards[i], on_error) for i in todo]
        for future in futures:
            result = future.result()
            done = sum(1 for f in futures if f.done())
            print(
                f"  synthesised shard {result['index'] + 1}/{len(shards)} "
                f"({result['utterances']} utterances; {done}/{len(todo)} of this run)",
                flush=True,
            )
    return todo


@dataclass
class SynthesisedUtterance:
    file_id: str
    text: str
    voice: str
    split: str
    waveform: np.ndarray
    timings: list[WordTiming]
    audio_bytes: bytes = field(repr=False)
    rate: int = 0


def read_shards(work: str | Path, num_shards: int) -> tuple[list[SynthesisedUtterance], Counter]:
    """Every synthesised utterance, in plan order, and the skip counts of all shards."""
    from datasets import load_from_disk

    out: list[SynthesisedUtterance] = []
    skipped: Counter = Counter()
    for i in range(num_shards):
        path = shard_path(Path(work), i)
        skipped.update(json.loads((path / "shard.json").read_text())["skipped"])
        for row in load_from_disk(str(path)):
            audio = row["audio"]["bytes"]
            out.append(
                SynthesisedUtterance(
                    file_id=row["file_id"],
                    text=row["text"],
                    voice=row["voice"],
                    split=row["split"],
                    waveform=load_audio(audio, row["file_id"], expected_rate=SAMPLE_RATE),
                    timings=[WordTiming(w["word"], w["start"], w["end"]) for w in row["words"]],
                    audio_bytes=audio,
                    rate=row["rate"],
                )
            )
    return out, skipped


# -- the build ---------------------------------------------------------------------------------------------


def corpus_is_complete(out_dir: str | Path) -> bool:
    """Every file of a finished build is there (``stats.json`` is not needed: only read)."""
    out = Path(out_dir)
    return all((out / name).exists() for name in (*CORPUS_FILES, *EXTRA_FILES))


def _read_stats(out: Path) -> dict[str, Any]:
    """The corpus's ``stats.json``, or ``{}`` when it was removed (it is informational)."""
    path = out / STATS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _work_dir(out: Path) -> Path:
    return out.parent / f"{out.name}.work"


def _prepare_work(work: Path, config: EmbeddedConfig) -> None:
    """Reuse the work folder of an interrupted build of the same configuration, else start afresh."""
    marker = work / "config.json"
    if work.exists():
        same = marker.is_file() and json.loads(marker.read_text()) == config.to_json()
        if same:
            print(f"  resuming the interrupted build in {work}", flush=True)
            return
        print(f"  {work} holds shards of another configuration: removing it", flush=True)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    write_text_atomic(marker, json.dumps(config.to_json(), indent=2) + "\n")


def _heldout_audio(utterances: list[SynthesisedUtterance], path: Path) -> None:
    import datasets

    datasets.disable_progress_bars()

    rows: dict[str, list[Any]] = {k: [] for k in _shard_features()}
    for u in utterances:
        rows["file_id"].append(u.file_id)
        rows["audio"].append({"bytes": u.audio_bytes, "path": None})
        rows["text"].append(u.text)
        rows["num_samples"].append(len(u.waveform))
        rows["voice"].append(u.voice)
        rows["rate"].append(u.rate)
        rows["split"].append(u.split)
        rows["words"].append([{"word": t.word, "start": t.start, "end": t.end} for t in u.timings])
    datasets.Dataset.from_dict(rows, features=_shard_features()).save_to_disk(str(path))


def assemble_corpus(
    out: Path,
    config: EmbeddedConfig,
    plan: CorpusPlan,
    utterances: list[SynthesisedUtterance],
    skipped: Counter,
    on_error: str = "skip",
) -> dict[str, Any]:
    """Fit units, align, train the BPE and write every file of the corpus into ``out``."""
    timer: dict[str, float] = {}
    train_audio = [u.waveform for u in utterances if u.split == "train"]
    if not train_audio:
        raise ValueError("no training utterance was synthesised: nothing to fit the units on")
    started = time.perf_counter()
    tokenizer = MelKMeansUnits.fit(train_audio, config.num_units, config.seed)
    tokenizer.save(out / "units.pt")
    timer["fit_units"] = time.perf_counter() - started
    started = time.perf_counter()
    unit_seqs = [tokenizer(u.waveform) for u in utterances]
    timer["tokenize_units"] = time.perf_counter() - started
    audio_seconds = sum(len(u.waveform) for u in utterances) / SAMPLE_RATE
    by_split: dict[str, list[AlignedUtterance]] = {"train": [], "valid": [], HELDOUT: []}
    for u, units in zip(utterances, unit_seqs, strict=True):
        try:
            if len(units) != num_frames(len(u.waveform)):
                raise RecordError(u.file_id, "unit count does not match audio")
            check_words(u.file_id, u.text.split(), u.timings)
            by_split[u.split].append(utterance_from_timings(u.file_id, u.timings, units))
        except RecordError as e:
            if on_error == "stop":
                raise
            skipped[e.problem] += 1
    for name in ("train", "valid"):
        if not by_split[name]:
            raise ValueError(
                f"no {name} utterance survived synthesis and alignment ({dict(skipped)})"
            )
    write_aligned_jsonl(out / "train.jsonl", by_split["train"])
    write_aligned_jsonl(out / "valid.jsonl", by_split["valid"])
    write_aligned_jsonl(out / "heldout_voice.jsonl", by_split[HELDOUT])
    _heldout_audio([u for u in utterances if u.split == HELDOUT], out / "heldout_voice_audio")
    write_text_atomic(out / "text_train.txt", "".join(d + "\n" for d in plan.text_train))
    write_text_atomic(out / "text_valid.txt", "".join(d + "\n" for d in plan.text_valid))
    started = time.perf_counter()
    train_text_tokenizer(
        [u.transcript for u in by_split["train"]] + list(plan.text_train),
        out / "tokenizer.model",
        config.text_vocab_size,
    )
    timer["train_bpe"] = time.perf_counter() - started
    space = TokenSpace(out / "tokenizer.model", config.num_units)
    voices = Counter((u.split, u.voice) for u in utterances)
    stats = {
        "corpus": "embedded",
        "seed": config.seed,
        "source": f"Jane Austen's novels ({SOURCE_PACKAGE})"
        if config.text_file is None
        else config.text_file,
        "licence": SOURCE_LICENCE if config.text_file is None else "as of the user's text file",
        "tts": "espeak-ng",
        "num_units": config.num_units,
        "unit_tokenizer": "MelKMeansUnits (log-mel k-means, fitted on the training utterances)",
        "frame_rate_hz": FRAME_RATE_HZ,
        "text_vocab_size": space.text_vocab_size,
        "vocab_size": space.vocab_size,
        "voices": {
            split: {v: n for (s, v), n in sorted(voices.items()) if s == split}
            for split in ("train", "valid", HELDOUT)
        },
        "skipped": dict(skipped),
        "splits": {
            "train": split_stats(by_split["train"], list(plan.text_train), space),
            "valid": split_stats(by_split["valid"], list(plan.text_valid), space),
        },
        "heldout_voice": split_stats(by_split[HELDOUT], [], space),
        "audio_seconds": round(audio_seconds, 2),
        "seconds_per_stage": {k: round(v, 2) for k, v in timer.items()},
        "unit_tokenizer_audio_seconds_per_second": round(
            audio_seconds / timer["tokenize_units"], 1
        ),
    }
    write_text_atomic(out / STATS_FILE, json.dumps(stats, indent=2) + "\n")
    write_text_atomic(
        out / "build.json",
        json.dumps({"config": config.to_json(), "digest": config.digest()}, indent=2) + "\n",
    )
    return stats


def build_embedded_corpus(
    out_dir: str | Path,
    config: EmbeddedConfig | None = None,
    workers: int = 2,
    on_error: str = "skip",
    force: bool = False,
    keep_work: bool = False,
    wait_for_lock: bool = False,
) -> dict[str, Any]:
    """Build the corpus into ``out_dir`` unless a complete one of the same configuration is there.

    Returns its ``stats.json`` (``{}`` if that file was removed). Synthesis shards live in
    ``<out_dir>.work`` until the corpus is complete (kept with ``keep_work``), so a rerun after an
    interruption only synthesises the shards that are missing. Another build of the same folder
    running at the same time is an error (:class:`~lst_lightning.data.locking.OutputLocked`), or
    is waited for with ``wait_for_lock`` (DDP ranks).
    """
    config = config or EmbeddedConfig()
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, wait=wait_for_lock):
        return _build(out, config, workers, on_error, force, keep_work)


def _build(
    out: Path, config: EmbeddedConfig, workers: int, on_error: str, force: bool, keep_work: bool
) -> dict[str, Any]:
    if corpus_is_complete(out) and not force:
        built = json.loads((out / "build.json").read_text())
        if built.get("digest") != config.digest():
            raise FileExistsError(
                f"{out} holds an embedded corpus of another configuration "
                f"(see {out / 'build.json'}); remove it or pass force=True / --force"
            )
        return _read_stats(out)
    if out.exists() and not force and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists but is not a complete embedded corpus; remove it or pass force=True / --force"
        )
    started = time.perf_counter()
    check_voices((*config.voices, config.heldout_voice))  # fail before any work
    paragraphs = load_paragraphs(config)
    plan = plan_corpus(config, paragraphs)
    work = _work_dir(out)
    _prepare_work(work, config)
    num_shards = len(plan.shards(config.shard_size))
    print(
        f"embedded corpus: {len(plan.utterances)} utterances in {num_shards} shards, "
        f"{len(plan.text_train) + len(plan.text_valid)} text documents",
        flush=True,
    )
    synth_started = time.perf_counter()
    synthesize_shards(plan, work, config.shard_size, workers, on_error)
    synth_seconds = time.perf_counter() - synth_started
    utterances, skipped = read_shards(work, num_shards)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
    try:
        stats = assemble_corpus(tmp, config, plan, utterances, skipped, on_error)
        stats["seconds_per_stage"] = {
            "synthesis": round(synth_seconds, 2),
            **stats["seconds_per_stage"],
        }
        stats["seconds_to_build"] = round(time.perf_counter() - started, 1)
        write_text_atomic(tmp / STATS_FILE, json.dumps(stats, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            shutil.rmtree(old)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    if not keep_work:
        shutil.rmtree(work)
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """A short human-readable summary of the embedded corpus's ``stats.json``."""
    lines = [
        f"embedded corpus: {stats['source']}, spoken by espeak-ng; seed {stats['seed']}, "
        f"text vocab {stats['text_vocab_size']}, model vocab {stats['vocab_size']} "
        f"({stats['num_units']} units)"
    ]
    parts: Iterator[tuple[str, dict]] = iter(
        [*stats["splits"].items(), ("heldout voice", stats["heldout_voice"])]
    )
    for name, s in parts:
        lines.append(
            f"  {name}: {s['utterances']} utterances, {s['words']} words, {s['units']} units "
            f"({s['seconds'] / 3600:.2f} h), {s['transcript_tokens']} transcript tokens, "
            f"{s['text_docs']} text documents ({s['text_words']} words, {s['text_tokens']} tokens)"
        )
    voices = ", ".join(sorted({v for split in ("train", "valid") for v in stats["voices"][split]}))
    lines.append(
        f"  training voices: {voices}; held-out voice: {', '.join(stats['voices'][HELDOUT])}"
    )
    if stats["skipped"]:
        lines.append(f"  skipped: {stats['skipped']}")
    if "seconds_to_build" in stats:
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in stats["seconds_per_stage"].items())
        lines.append(f"  built in {stats['seconds_to_build']:.0f} s ({stages})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    defaults = EmbeddedConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/embedded", help="corpus folder")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--utterances", type=int, default=defaults.utterances, help="training-voice utterances"
    )
    parser.add_argument("--heldout-utterances", type=int, default=defaults.heldout_utterances)
    parser.add_argument(
        "--voices", nargs="+", default=list(defaults.voices), help="training voices"
    )
    parser.add_argument("--heldout-voice", default=defaults.heldout_voice)
    parser.add_argument("--num-units", type=int, default=defaults.num_units)
    parser.add_argument("--text-vocab-size", type=int, default=defaults.text_vocab_size)
    parser.add_argument("--text-file", default=None, help="plain-text file instead of the novels")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=defaults.shard_size,
        help="utterances per synthesis shard (the unit of resumption)",
    )
    parser.add_argument("--valid-fraction", type=float, default=defaults.valid_fraction)
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes")
    parser.add_argument("--on-error", choices=ON_ERROR, default="skip")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus exists")
    parser.add_argument("--keep-work", action="store_true", help="keep the synthesis shards")
    args = parser.parse_args(argv)
    config = EmbeddedConfig(
        seed=args.seed,
        utterances=args.utterances,
        heldout_utterances=args.heldout_utterances,
        voices=tuple(args.voices),
        heldout_voice=args.heldout_voice,
        num_units=args.num_units,
        text_vocab_size=args.text_vocab_size,
        text_file=args.text_file,
        shard_size=args.shard_size,
        valid_fraction=args.valid_fraction,
    )
    existed = corpus_is_complete(args.out) and not args.force
    try:
        report_build(
            args.out,
            existed,
            lambda: build_embedded_corpus(
                args.out, config, args.workers, args.on_error, args.force, args.keep_work
            ),
            format_stats,
        )
    except (FileExistsError, TextSourceError, EspeakMissing, RecordError, ValueError) as e:
        # (OutputLocked is a FileExistsError: another build of the same folder is running)
        print(f"embedded corpus: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
