"""The data options, grouped the way the method is described (DESIGN sections 3-4).

An experiment's ``data:`` section reads as the method::

    data:
      corpus: {data_dir: data/embedded}
      mixture: {interleaved: 0.3333333333333333}
      patching: {strategy: curriculum, start: 0.3333333333333333, end: 0.6666666666666666}
      packing: {mode: patches, max_patches: 256, max_tokens: 768}
      loader: {batch_size: 8}

and a command line overrides one field with ``--data.patching.strategy aligned``. Each group is a
frozen dataclass that checks its own fields and names the option in its errors; checks that span
groups (for example patching under token packing) are the datamodule's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from lst_lightning.data.records import DEFAULT_NUM_UNITS
from lst_lightning.data.stream.patching import STRATEGIES, PatchingStrategy
from lst_lightning.data.vocab import DEFAULT_UNIT_BPE_SIZE

BUILDS = ("auto", "embedded", "generated", "none")
AUTO_BUILDS = {"data/embedded": "embedded", "data/generated": "generated"}
"""The folders ``build: auto`` builds into when they are missing (``make data`` /
``make data-generated`` build the same ones)."""


@dataclass(frozen=True)
class CorpusOptions:
    """Where the corpus is, what to build when it is missing, and how speech is tokenised."""

    data_dir: str = "data/embedded"
    """Corpus folder: ``train.jsonl`` / ``valid.jsonl`` (aligned units), ``text_train.txt`` /
    ``text_valid.txt`` and ``tokenizer.model``; any corpus in that layout works."""
    build: Literal["auto", "embedded", "generated", "none"] = "auto"
    """What to build into ``data_dir`` when it does not exist (or is empty): the ``embedded``
    corpus (Austen read by espeak-ng; needs ``make setup-system``), the small ``generated`` corpus
    (no system packages), ``none`` (an error naming the folder), or ``auto``: ``embedded`` for
    the default ``data/embedded``, ``generated`` for ``data/generated``, and an error for any
    other path (so a mistyped path is never filled with a new corpus). A folder that exists but
    lacks corpus files is never built into: the error lists the missing files."""
    allow_no_speech: bool = False
    """Train even when the mixture asks for speech but no utterance of the corpus has a unit on
    a spoken word (every one empty or ``[SIL]`` only). By default that is an error."""
    num_units: int = DEFAULT_NUM_UNITS
    """Speech unit codebook size. Paper: 501 HuBERT k-means units."""
    speech_tokenizer: Literal["units", "bpe"] = "units"
    """``units``: one token per unit (the paper's LST and Base SpeechLLM); ``bpe``: units
    re-tokenised by a unit BPE trained on the training split and cached in ``data_dir`` as
    ``unit_bpe_<size>.model`` (the paper's BPE SpeechLLM)."""
    unit_bpe_size: int = DEFAULT_UNIT_BPE_SIZE
    """Pieces of that unit BPE. Paper: 1k."""
    reader: Literal["memory", "arrow"] = "memory"
    """How ``data_dir``'s JSONL / txt files are read: ``memory`` (parsed into Python objects,
    fine for a laptop corpus) or ``arrow`` (converted once to Arrow in ``data_dir/arrow/``,
    atomically, and read by index from the memory-mapped files: memory independent of the
    corpus size; the same batches). ``data.sources`` reads Hugging Face datasets instead."""

    def resolved_build(self) -> str:
        """``build`` with ``auto`` resolved for this ``data_dir``."""
        if self.build != "auto":
            return self.build
        target = Path(self.data_dir).resolve()
        for folder, kind in AUTO_BUILDS.items():
            if target == Path(folder).resolve():
                return kind
        return "none"

    def __post_init__(self) -> None:
        _choice("corpus.build", self.build, BUILDS)
        _choice("corpus.speech_tokenizer", self.speech_tokenizer, ("units", "bpe"))
        _choice("corpus.reader", self.reader, ("memory", "arrow"))
        _at_least("corpus.num_units", self.num_units, 1)
        _at_least("corpus.unit_bpe_size", self.unit_bpe_size, 2)


@dataclass(frozen=True)
class MixtureOptions:
    """What share of the training tokens each kind of document holds (the rest is text-only).

    Shares are of tokens counted as the Base SpeechLLM counts them, one per text token or special
    and one per speech unit (before any unit BPE or patching), so one setting gives the same
    documents to LST and to both baselines. Each epoch selects documents to meet the shares (the
    scarcer of utterances and text documents is used completely); ``CurriculumCallback`` logs the
    realised shares as ``mixture/*_token_share``.
    """

    interleaved: float = 1 / 3
    """Share of tokens in interleaved speech-text documents. Paper: 1/3 (4.3, Tab. 13: 1.00 of
    every 3.00 baseline units)."""
    speech_only: float = 0.0
    """Share of tokens in speech-only documents. Paper's best from scratch: 0."""

    def __post_init__(self) -> None:
        for name in ("interleaved", "speech_only"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"data.mixture.{name} must be in [0, 1], got {value}")
        if self.interleaved + self.speech_only > 1.0 + 1e-9:
            raise ValueError(
                f"data.mixture.interleaved + data.mixture.speech_only = "
                f"{self.interleaved + self.speech_only} exceeds 1"
            )


@dataclass(frozen=True)
class PatchingOptions:
    """How the training documents' speech runs are cut into patches (DESIGN section 3).

    Validation, evaluation and generation always use static patches of ``size``.
    """

    strategy: PatchingStrategy = "static"
    """``static`` (chunks of ``size``), ``aligned`` (a patch per word and per silence gap),
    ``aligned_merged`` (silence joins the word before it), ``aligned_bpe`` (a patch per BPE piece
    of each word), ``mixed`` (aligned with probability ``aligned_prob`` per document) or
    ``curriculum`` (aligned with probability 1 before ``start``, falling linearly to 0 at ``end``:
    the paper's best)."""
    size: int = 4
    """Static patch size ``p`` in tokens, ``<s>`` included. Paper: 4 (ablations 6, 9)."""
    aligned_prob: float = 0.5
    """``mixed`` only: probability of aligned patching per document."""
    start: int | float = 1 / 3
    """``curriculum`` only: the aligned probability is 1 before this step. An int is a step, a
    float in [0, 1] a fraction of ``trainer.max_steps``. Paper: T/3."""
    end: int | float = 2 / 3
    """``curriculum`` only: the probability reaches 0 at this step and stays 0 (int step or float
    fraction as for ``start``). Paper: 2T/3."""

    def __post_init__(self) -> None:
        _choice("patching.strategy", self.strategy, STRATEGIES)
        _at_least("patching.size", self.size, 1)
        if not 0.0 <= self.aligned_prob <= 1.0:
            raise ValueError(
                f"data.patching.aligned_prob must be in [0, 1], got {self.aligned_prob}"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"data.patching.{name} must be a step or a fraction, got {value!r}"
                )
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"data.patching.{name}={value} is a fraction of max_steps: want [0, 1]"
                )
            if value < 0:
                raise ValueError(f"data.patching.{name} must be >= 0, got {value}")

    @property
    def has_fractions(self) -> bool:
        """Whether a curriculum bound is a fraction of ``max_steps`` (resolved once it is known)."""
        return self.strategy == "curriculum" and any(
            isinstance(v, float) for v in (self.start, self.end)
        )


@dataclass(frozen=True)
class PackingOptions:
    """How documents are packed into fixed-size training rows (DESIGN section 4)."""

    mode: Literal["patches", "tokens"] = "patches"
    """``patches`` (LST: rows bounded by global positions and by tokens) or ``tokens`` (the
    baselines: rows of ``max_tokens`` tokens, one global position per token)."""
    max_patches: int = 256
    """Global positions per row in ``patches`` mode. Paper: 4096."""
    max_tokens: int = 512
    """Tokens per row. Paper: 12288 for LST; the baselines' sequence length."""

    def __post_init__(self) -> None:
        _choice("packing.mode", self.mode, ("patches", "tokens"))
        _at_least("packing.max_patches", self.max_patches, 1)
        _at_least("packing.max_tokens", self.max_tokens, 2)


@dataclass(frozen=True)
class LoaderOptions:
    """How rows are batched and loaded."""

    batch_size: int = 8
    """Rows per batch (per data-parallel rank)."""
    num_workers: int = 0
    """DataLoader worker processes; documents are sharded across them."""
    endless: bool = True
    """Chain the training epochs into one stream that never ends, so the run length is
    ``trainer.max_steps`` and DDP ranks stay in step. ``False`` ends Lightning's epoch with each
    pass over the corpus."""
    resume_reshard: bool = False
    """Resume a checkpoint saved with another ``num_workers`` or ``batch_size`` (an error
    otherwise: shards and steps are counted in them, so the saved position names other batches)
    inexactly: a fresh pass (the next epoch) from the saved step, with a warning."""

    def __post_init__(self) -> None:
        _at_least("loader.batch_size", self.batch_size, 1)
        _at_least("loader.num_workers", self.num_workers, 0)


@dataclass(frozen=True)
class TaskOptions:
    """Fine-tuning on a downstream task instead of pre-training (the paper's Tab. 5).

    With ``name`` set, the training and validation rows hold only that task's documents, built
    from ``train.jsonl`` / ``valid.jsonl`` (:mod:`lst_lightning.downstream.tasks`), and the loss
    covers only each document's answer span; the mixture options are not used."""

    name: Literal["asr", "tts"] | None = None
    """``asr`` (``BOS <s> units <t> transcript EOS``), ``tts`` (``BOS <t> text <s> units EOS``) or
    ``None`` (pre-training)."""
    train_limit: int | None = None
    """Training utterances kept (evenly spaced through ``train.jsonl``); ``None``: all. A small
    number with many steps memorises them (the kit's test of the fine-tuning path)."""
    valid_limit: int | None = 200
    """Held-out utterances of the validation loss (evenly spaced through ``valid.jsonl``)."""
    train_split: str = "train"
    """The split whose utterances are trained on (``valid`` for a memorisation check)."""

    def __post_init__(self) -> None:
        _choice("task.name", self.name, ("asr", "tts", None))
        for name in ("train_limit", "valid_limit"):
            value = getattr(self, name)
            if value is not None:
                _at_least(f"task.{name}", value, 1)
        _choice("task.train_split", self.train_split, ("train", "valid"))


Options = TypeVar("Options")

GROUPS: dict[str, type] = {
    "corpus": CorpusOptions,
    "mixture": MixtureOptions,
    "patching": PatchingOptions,
    "packing": PackingOptions,
    "loader": LoaderOptions,
    "task": TaskOptions,
}
"""The datamodule's option groups, by their key in ``data:``."""

LEGACY_FLAT_KEYS: dict[str, tuple[str, str]] = {
    "data_dir": ("corpus", "data_dir"),
    "build": ("corpus", "build"),
    "num_units": ("corpus", "num_units"),
    "speech_tokenizer": ("corpus", "speech_tokenizer"),
    "unit_bpe_size": ("corpus", "unit_bpe_size"),
    "interleaved_fraction": ("mixture", "interleaved"),
    "speech_only_fraction": ("mixture", "speech_only"),
    "patching": ("patching", "strategy"),
    "patch_size": ("patching", "size"),
    "aligned_prob": ("patching", "aligned_prob"),
    "curriculum_start": ("patching", "start"),
    "curriculum_end": ("patching", "end"),
    "packing": ("packing", "mode"),
    "max_patches": ("packing", "max_patches"),
    "max_tokens": ("packing", "max_tokens"),
    "batch_size": ("loader", "batch_size"),
    "num_workers": ("loader", "num_workers"),
    "endless": ("loader", "endless"),
}
"""The flat options of checkpoints written before the groups existed -> (group, field)."""


def coerce(kind: type[Options], value: Options | dict[str, Any] | None, group: str) -> Options:
    """``value`` as a ``kind`` instance: dataclasses pass through, dicts are checked for unknown
    keys (an error naming ``data.<group>.<key>``), ``None`` is the defaults."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"data.{group} must be a mapping or {kind.__name__}, got {value!r}")
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(
            f"data.{group} has no option {', '.join(unknown)} (it has: {', '.join(sorted(known))})"
        )
    return kind(**value)


def grouped_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """A datamodule's saved hyperparameters in the grouped form, whether they were saved grouped
    or flat (checkpoints from before the groups); private keys (``_...``) are dropped."""
    out: dict[str, Any] = {}
    for key, value in hparams.items():
        if key.startswith("_"):
            continue
        if key in GROUPS:
            group = value if isinstance(value, dict) else asdict(value)
            out.setdefault(key, {}).update(group)
        elif key in LEGACY_FLAT_KEYS:
            group, name = LEGACY_FLAT_KEYS[key]
            out.setdefault(group, {})[name] = value
        elif key in ("seed", "sources"):
            out[key] = value
        else:
            raise ValueError(f"unknown datamodule option {key!r} in the saved hyperparameters")
    return out


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"data.{name} must be one of {', '.join(choices)}, got {value!r}")


def _at_least(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"data.{name} must be an integer >= {low}, got {value!r}")
