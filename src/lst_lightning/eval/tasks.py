"""The benchmark format: zero-shot multiple-choice items with a written and a spoken form.

One benchmark is one JSON-lines file (its name is the file stem); every line is one item::

    {"id": "storycloze/0007", "prompt": "the old dog saw", "endings": ["a cat", "the river"],
     "label": 0, "prompt_units": [12, 12, 40, ...], "ending_units": [[...], [...]]}

``prompt``/``endings`` are the written form, ``prompt_units``/``ending_units`` the spoken form as
speech units of the model's unit tokenizer (prompt and each ending rendered separately: the spoken
candidate is the prompt's units followed by the ending's). Either form may be ``null`` when a
source has only the other one (sStoryCloze audio without transcripts, HellaSwag text); directions
that need a missing form are skipped. An empty prompt (``""`` / ``[]``) makes a minimal-pair item
(sWUGGY/sBLIMP style): the whole candidate is scored and only S->S and T->T apply.

Loaders here turn the public releases into this format: StoryCloze, Topic-StoryCloze and HellaSwag
text as HF dataset rows, and spoken StoryCloze-style audio folders (``<id>_correct.wav`` /
``<id>_incorrect.wav``) through the same unit tokenizer as training.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lst_lightning.data.records import write_text_atomic

DIRECTIONS = ("S->S", "T->T", "S->T", "T->S")
"""Prompt modality -> ending modality: spoken (S) or written (T)."""
SAMPLE_RATE = 16_000
"""The unit tokenizers take 16 kHz mono audio."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One multiple-choice item. ``label`` indexes the correct entry of ``endings``."""

    id: str
    prompt: str | None
    endings: tuple[str, ...] | None
    label: int
    prompt_units: tuple[int, ...] | None = None
    ending_units: tuple[tuple[int, ...], ...] | None = None

    @property
    def num_choices(self) -> int:
        return len(self.endings) if self.endings is not None else len(self.ending_units or ())

    @property
    def has_text(self) -> bool:
        return self.prompt is not None and self.endings is not None

    @property
    def has_speech(self) -> bool:
        return self.prompt_units is not None and self.ending_units is not None

    @property
    def is_minimal_pair(self) -> bool:
        """No prompt: the candidates are whole utterances (lexical / syntactic probes)."""
        return (self.prompt is None or self.prompt == "") and not self.prompt_units

    def supports(self, direction: str) -> bool:
        """Whether the item holds the forms ``direction`` needs (and a prompt if cross-modal)."""
        src, dst = _split_direction(direction)
        if self.is_minimal_pair and src != dst:
            return False
        need_text = "T" in (src, dst)
        need_speech = "S" in (src, dst)
        return (not need_text or self.has_text) and (not need_speech or self.has_speech)

    def validate(self, num_units: int | None = None) -> None:
        """Raise ``ValueError`` saying what is wrong with this item."""
        if not self.has_text and not self.has_speech:
            raise ValueError("needs the written form (prompt, endings) or the spoken one (units)")
        k = self.num_choices
        if k < 2:
            raise ValueError(f"needs at least 2 endings, has {k}")
        if self.endings is not None and self.ending_units is not None:
            if len(self.endings) != len(self.ending_units):
                raise ValueError(
                    f"{len(self.endings)} written endings but {len(self.ending_units)} spoken ones"
                )
        if not 0 <= self.label < k:
            raise ValueError(f"label {self.label} is not in [0, {k})")
        if self.endings is not None and any(not e.strip() for e in self.endings):
            raise ValueError("an ending's text is empty")
        if self.ending_units is not None:
            if any(len(u) == 0 for u in self.ending_units):
                raise ValueError("an ending has no speech units")
            seqs = [self.prompt_units or (), *self.ending_units]
            if num_units is not None and any(not 0 <= u < num_units for s in seqs for u in s):
                raise ValueError(f"a speech unit is outside [0, {num_units})")
        if self.has_text and self.has_speech and (self.prompt == "") != (not self.prompt_units):
            raise ValueError("the written prompt and the spoken prompt disagree on being empty")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "endings": list(self.endings) if self.endings is not None else None,
            "label": self.label,
            "prompt_units": list(self.prompt_units) if self.prompt_units is not None else None,
            "ending_units": [list(u) for u in self.ending_units]
            if self.ending_units is not None
            else None,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BenchmarkItem:
        """Parse one line's object; raise ``ValueError`` naming the bad field."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        for key in ("id", "label"):
            if key not in obj:
                raise ValueError(f"missing key {key!r}")
        if not isinstance(obj["id"], str):
            raise ValueError("'id' must be a string")
        if not isinstance(obj["label"], int) or isinstance(obj["label"], bool):
            raise ValueError("'label' must be an integer")
        prompt = obj.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError("'prompt' must be a string or null")
        endings = obj.get("endings")
        if endings is not None:
            if not isinstance(endings, list) or not all(isinstance(e, str) for e in endings):
                raise ValueError("'endings' must be a list of strings or null")
            endings = tuple(endings)
        prompt_units = _units(obj.get("prompt_units"), "prompt_units")
        ending_units = obj.get("ending_units")
        if ending_units is not None:
            if not isinstance(ending_units, list):
                raise ValueError("'ending_units' must be a list of unit lists or null")
            ending_units = tuple(
                _units(u, f"ending_units[{i}]") or () for i, u in enumerate(ending_units)
            )
        return cls(obj["id"], prompt, endings, obj["label"], prompt_units, ending_units)


def _units(value: Any, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(u, int) and not isinstance(u, bool) for u in value
    ):
        raise ValueError(f"{name!r} must be a list of integers or null")
    return tuple(value)


def _split_direction(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose from {', '.join(DIRECTIONS)}")
    src, dst = direction.split("->")
    return src, dst


@dataclass(frozen=True)
class Benchmark:
    """A named list of items with the same number of choices."""

    name: str
    items: tuple[BenchmarkItem, ...]

    @property
    def num_choices(self) -> int:
        return self.items[0].num_choices if self.items else 0

    @property
    def chance(self) -> float:
        return 1.0 / self.num_choices if self.items else 0.0

    @property
    def is_minimal_pair(self) -> bool:
        return bool(self.items) and all(item.is_minimal_pair for item in self.items)

    def directions(self) -> tuple[str, ...]:
        """The directions every item supports (minimal pairs: S->S and T->T at most)."""
        return tuple(d for d in DIRECTIONS if self.items and all(i.supports(d) for i in self.items))

    def subset(self, limit: int | None) -> Benchmark:
        """The first ``limit`` items (items are already in a seeded random order)."""
        return self if limit is None else Benchmark(self.name, self.items[:limit])


def write_benchmark(path: str | Path, items: Iterable[BenchmarkItem]) -> None:
    """Write items as JSON lines, atomically."""
    lines = [json.dumps(item.to_json(), separators=(",", ":")) + "\n" for item in items]
    write_text_atomic(path, "".join(lines))


def read_benchmark(path: str | Path, num_units: int | None = None) -> Benchmark:
    """Read and validate one benchmark file; errors name ``file:line``, the item and the problem."""
    path = Path(path)
    items: list[BenchmarkItem] = []
    seen: set[str] = set()
    choices: int | None = None
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                item = BenchmarkItem.from_json(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            try:
                item.validate(num_units)
            except ValueError as e:
                raise ValueError(f"{where} ({item.id}): {e}") from None
            if item.id in seen:
                raise ValueError(f"{where}: duplicate item id {item.id!r}")
            if choices is not None and item.num_choices != choices:
                raise ValueError(
                    f"{where} ({item.id}): {item.num_choices} choices, earlier items have {choices}"
                )
            seen.add(item.id)
            choices = item.num_choices
            items.append(item)
    if not items:
        raise ValueError(f"{path}: no items")
    return Benchmark(path.stem, tuple(items))


def list_benchmarks(directory: str | Path) -> list[str]:
    """Names of the benchmark files in a folder, in ``manifest.json`` order when there is one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no benchmark folder at {directory}")
    names = sorted(p.stem for p in directory.glob("*.jsonl"))
    manifest = directory / "manifest.json"
    if manifest.is_file():
        listed = [n for n in json.loads(manifest.read_text()).get("sets", {}) if n in names]
        names = listed + [n for n in names if n not in listed]
    return names


def load_benchmarks(
    directory: str | Path, names: Sequence[str] | None = None, num_units: int | None = None
) -> list[Benchmark]:
    """Read the named benchmarks (all of them by default) from a folder."""
    available = list_benchmarks(directory)
    if not available:
        raise FileNotFoundError(f"no *.jsonl benchmark in {directory}")
    names = list(names) if names else available
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(
            f"no benchmark named {', '.join(missing)} in {directory}; "
            f"available: {', '.join(available)}"
        )
    return [read_benchmark(Path(directory) / f"{n}.jsonl", num_units) for n in names]


# -- public text releases (HF dataset rows) -------------------------------------------------------
def _field(row: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise ValueError(f"{where}: missing field {key!r} (has {', '.join(sorted(row))})")
    return row[key]


def from_storycloze_rows(rows: Iterable[Mapping[str, Any]], name: str = "storycloze") -> Benchmark:
    """StoryCloze as HF ``story_cloze`` rows: four ``input_sentence_*``, two ``sentence_quiz*``
    endings and ``answer_right_ending`` (1 or 2). Topic-StoryCloze text has the same columns."""
    items = []
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        prompt = " ".join(str(_field(row, f"input_sentence_{k}", where)) for k in range(1, 5))
        endings = tuple(str(_field(row, f"sentence_quiz{k}", where)) for k in (1, 2))
        answer = int(_field(row, "answer_right_ending", where))
        if answer not in (1, 2):
            raise ValueError(f"{where}: answer_right_ending must be 1 or 2, got {answer}")
        item_id = str(row.get("story_id", i))
        items.append(BenchmarkItem(f"{name}/{item_id}", prompt, endings, answer - 1))
    return _checked(name, items)


def from_hellaswag_rows(rows: Iterable[Mapping[str, Any]], name: str = "hellaswag") -> Benchmark:
    """HellaSwag as HF ``hellaswag`` rows: ``ctx``, four ``endings`` and ``label`` ("0".."3")."""
    items = []
    for i, row in enumerate(rows):
        where = f"{name} row {i}"
        endings = _field(row, "endings", where)
        label = _field(row, "label", where)
        if label in ("", None):
            raise ValueError(f"{where}: no label (the HellaSwag test split is unlabelled)")
        item_id = str(row.get("ind", i))
        items.append(
            BenchmarkItem(
                f"{name}/{item_id}",
                str(_field(row, "ctx", where)).strip(),
                tuple(str(e).strip() for e in endings),
                int(label),
            )
        )
    return _checked(name, items)


def _checked(name: str, items: list[BenchmarkItem], num_units: int | None = None) -> Benchmark:
    for item in items:
        try:
            item.validate(num_units)
        except ValueError as e:
            raise ValueError(f"{name} item {item.id}: {e}") from None
    if not items:
        raise ValueError(f"{name}: no items")
    return Benchmark(name, tuple(items))


# -- public spoken releases (audio folders) --------------------------------------------------------
UnitTokenizer = Callable[[np.ndarray, int], np.ndarray]
"""Audio -> units: ``tok(waveform_float32_mono, sample_rate) -> int64 units`` (the training one)."""


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 audio at ``sample_rate`` (averaging channels, resampling when needed)."""
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise ValueError(f"{path}: cannot read audio ({e})") from None
    mono = wav.mean(axis=1)
    if sr != sample_rate:
        mono = AF.resample(torch.from_numpy(mono), sr, sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


def tokenize_audio(tokenizer: UnitTokenizer, wav: np.ndarray, where: str) -> tuple[int, ...]:
    """Run the unit tokenizer and check that it returned a 1-D integer sequence."""
    units = np.asarray(tokenizer(wav, SAMPLE_RATE))
    if units.ndim != 1 or not np.issubdtype(units.dtype, np.integer):
        raise ValueError(f"{where}: the unit tokenizer returned {units.dtype} {units.shape}")
    return tuple(int(u) for u in units)


def from_spoken_pairs(
    directory: str | Path,
    tokenizer: UnitTokenizer,
    name: str | None = None,
    correct_suffix: str = "_correct.wav",
    incorrect_suffix: str = "_incorrect.wav",
) -> Benchmark:
    """Spoken StoryCloze as released (sSC / tSC): ``<id>_correct.wav`` and ``<id>_incorrect.wav``,
    each the prompt followed by one ending, without transcripts.

    Both files carry the same prompt recording, so their unit sequences share a prefix: the longest
    common prefix is taken as the prompt and the rest of each file as its ending (the units near the
    join can differ where the tokenizer's context reaches across it; those count as ending). The
    two endings are put in an order drawn from the item id, so ties cannot favour the label.
    """
    directory = Path(directory)
    name = name or directory.name
    correct = sorted(directory.glob(f"*{correct_suffix}"))
    if not correct:
        raise FileNotFoundError(f"no *{correct_suffix} files in {directory}")
    items = []
    for path in correct:
        item_id = path.name[: -len(correct_suffix)]
        other = directory / f"{item_id}{incorrect_suffix}"
        if not other.is_file():
            raise FileNotFoundError(f"{path} has no matching {other.name}")
        good = tokenize_audio(tokenizer, read_audio(path), str(path))
        bad = tokenize_audio(tokenizer, read_audio(other), str(other))
        shared = _common_prefix(good, bad)
        if shared == min(len(good), len(bad)):
            shared -= 1  # every ending keeps at least one unit
        prompt, endings = good[:shared], [good[shared:], bad[shared:]]
        label = zlib.crc32(item_id.encode()) % 2
        if label:
            endings.reverse()
        items.append(BenchmarkItem(f"{name}/{item_id}", None, None, label, prompt, tuple(endings)))
    return _checked(name, items)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
