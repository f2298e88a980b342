"""Ingest: speech with transcripts, from an HF dataset or a folder, as 16 kHz mono records.

Sources:

- an HF dataset: a ``save_to_disk`` folder (``load_from_disk``), or anything ``load_dataset``
  opens (a hub name available offline, a local loading script or data folder), with a
  configurable audio column, text column and optional id column. The audio column is read
  undecoded (``Audio(decode=False)``: datasets would need torchcodec to decode) and decoded here
  with soundfile, from the cell's bytes or its path; cells holding ``{"array", "sampling_rate"}``
  work too.
- a folder: every audio file below it (``.wav``, ``.flac``, ``.ogg``, ``.mp3``), its transcript in
  a sidecar ``<name>.txt`` or in a LibriSpeech-style ``*.trans.txt`` (``<name> <transcript>`` per
  line) in the same folder. The record id is the path relative to the folder, without extension.

Each record becomes ``{"file_id", "audio": {"bytes": 16-bit WAV at 16 kHz, "path": None},
"text": normalised words joined by spaces, "num_samples"}``. A bad record (unreadable or empty
audio, missing file or transcript, a transcript that is not UTF-8, empty transcript, sample-rate
mismatch, duplicate id) raises a
:class:`~lst_lightning.data.speech.audio.RecordError`, which an :class:`ErrorPolicy` either re-raises
(``stop``) or counts (``skip``).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lst_lightning.data.speech.align import normalize_words
from lst_lightning.data.speech.audio import (
    SAMPLE_RATE,
    RecordError,
    encode_wav,
    load_audio,
    resample,
)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
ON_ERROR = ("stop", "skip")


@dataclass
class ErrorPolicy:
    """``stop``: the first bad record raises; ``skip``: bad records are counted per problem and left out."""

    on_error: str = "stop"
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    verbose: bool = True

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")

    def handle(self, error: RecordError) -> None:
        """Re-raise under ``stop``; otherwise count it (and print the first few of each kind)."""
        if self.on_error == "stop":
            raise error
        self.counts[error.problem] += 1
        seen = self.examples.setdefault(error.problem, [])
        if len(seen) < 3:
            seen.append(error.record)
            if self.verbose:
                print(f"skipped {error}", file=sys.stderr)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        """One line per problem: how many records were skipped and the first few of them."""
        if not self.counts:
            return "no records skipped"
        lines = [f"{self.skipped} records skipped:"]
        for problem, n in self.counts.most_common():
            lines.append(f"  {problem}: {n} (e.g. {', '.join(self.examples[problem])})")
        return "\n".join(lines)


@dataclass(frozen=True)
class SourceRecord:
    """One input utterance before decoding: where its audio is and its raw transcript."""

    file_id: str
    audio: Any
    """A path, encoded bytes, or ``{"array", "sampling_rate"}``; ``None`` when the file is missing."""
    text: str | None
    """The transcript as given; ``None`` when it is missing."""
    problem: RecordError | None = None
    """Why the record is bad before decoding (a transcript that is not UTF-8): raised by
    :func:`decode_record`, so the error policy stops on it or skips and counts it."""


def _undecodable(file_id: str, path: Path, raw: bytes, error: UnicodeDecodeError) -> RecordError:
    return RecordError(
        file_id,
        "transcript not UTF-8",
        f"{path}: byte 0x{raw[error.start]:02x} at position {error.start}",
    )


def iter_folder(folder: str | Path) -> Iterator[SourceRecord]:
    """Audio files and their transcripts below ``folder``, in sorted order."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    trans: dict[Path, str | RecordError] = {}
    for p in files:
        if p.name.endswith(".trans.txt"):
            for lineno, raw in enumerate(p.read_bytes().splitlines(), start=1):
                key_bytes, _, text_bytes = raw.strip().partition(b" ")
                if not key_bytes:
                    continue
                key = key_bytes.decode("utf-8", errors="replace")
                try:
                    trans[p.parent / key] = text_bytes.decode("utf-8")
                except UnicodeDecodeError as e:
                    file_id = (p.parent / key).relative_to(root).as_posix()
                    where = Path(f"{p}:{lineno}")
                    trans[p.parent / key] = _undecodable(file_id, where, text_bytes, e)
    audio = {p.with_suffix(""): p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS}
    sidecars = {
        p.with_suffix(""): p
        for p in files
        if p.suffix == ".txt" and not p.name.endswith(".trans.txt")
    }
    for stem in sorted(set(audio) | set(sidecars)):
        file_id = stem.relative_to(root).as_posix()
        text: str | RecordError | None = None
        if stem in sidecars:
            raw = sidecars[stem].read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                text = _undecodable(file_id, sidecars[stem], raw, e)
        elif stem in trans:
            text = trans[stem]
        if isinstance(text, RecordError):
            yield SourceRecord(file_id, audio.get(stem), None, problem=text)
        else:
            yield SourceRecord(file_id, audio.get(stem), text)


def open_hf_dataset(source: str | Path, split: str = "train", config: str | None = None) -> Any:
    """A ``save_to_disk`` folder through ``load_from_disk``, anything else through ``load_dataset``."""
    import datasets

    path = Path(source)
    if path.is_dir() and (
        (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    ):
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{source}: no split {split!r} (it has {', '.join(ds)})")
            ds = ds[split]
        return ds
    return datasets.load_dataset(str(source), config, split=split)


def iter_hf(
    dataset: Any,
    audio_column: str = "audio",
    text_column: str = "text",
    id_column: str | None = None,
    name: str = "dataset",
) -> Iterator[SourceRecord]:
    """Records of an HF ``Dataset``; ``id_column`` defaults to ``id`` when present, else the row index."""
    import datasets

    columns = list(dataset.column_names)
    for role, column in (("audio", audio_column), ("text", text_column), ("id", id_column)):
        if column is not None and column not in columns:
            raise ValueError(
                f"{name}: no {role} column {column!r} (columns: {', '.join(columns)}); "
                f"choose it with --{role}-column"
            )
    if id_column is None and "id" in columns:
        id_column = "id"
    if isinstance(dataset.features[audio_column], datasets.Audio):
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    width = len(str(max(len(dataset) - 1, 0)))
    for i, row in enumerate(dataset):
        file_id = str(row[id_column]) if id_column else f"{i:0{width}d}"
        cell = row[audio_column]
        if isinstance(cell, dict) and cell.get("bytes") is None and "array" not in cell:
            cell = cell.get("path")
        elif isinstance(cell, dict) and cell.get("bytes") is not None:
            cell = cell["bytes"]
        yield SourceRecord(file_id, cell, row[text_column])


def decode_record(record: SourceRecord, expected_rate: int | None = None) -> dict[str, Any]:
    """Decode, resample and normalise one record into an ingest row; raises :class:`RecordError`."""
    if record.problem is not None:
        raise record.problem
    if record.audio is None:
        raise RecordError(
            record.file_id, "missing audio file", "a transcript has no audio beside it"
        )
    if record.text is None:
        raise RecordError(record.file_id, "missing transcript")
    if not isinstance(record.text, str):
        raise RecordError(
            record.file_id, "missing transcript", f"text is {type(record.text).__name__}"
        )
    words = normalize_words(record.text)
    if not words:
        raise RecordError(record.file_id, "empty transcript", repr(record.text[:40]))
    if isinstance(record.audio, dict):
        try:
            array = np.asarray(record.audio["array"], dtype=np.float32)
            rate = int(record.audio["sampling_rate"])
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(record.file_id, "unreadable audio", f"bad audio cell ({e})") from None
        if array.size == 0:
            raise RecordError(record.file_id, "empty audio", "no samples")
        if expected_rate is not None and rate != expected_rate:
            raise RecordError(
                record.file_id, "sample rate mismatch", f"{rate} Hz, expected {expected_rate} Hz"
            )
        waveform = resample(array.reshape(-1) if array.ndim == 1 else array.mean(0), rate)
    else:
        waveform = load_audio(record.audio, record.file_id, expected_rate=expected_rate)
    return {
        "file_id": record.file_id,
        "audio": {"bytes": encode_wav(waveform, SAMPLE_RATE), "path": None},
        "text": " ".join(words),
        "num_samples": len(waveform),
    }


def ingest_rows(
    records: Iterator[SourceRecord], policy: ErrorPolicy, expected_rate: int | None = None
) -> Iterator[dict[str, Any]]:
    """Decoded rows of the good records; bad ones go through ``policy``."""
    seen: set[str] = set()
    for record in records:
        try:
            if record.file_id in seen:
                raise RecordError(record.file_id, "duplicate file_id")
            row = decode_record(record, expected_rate)
        except RecordError as e:
            policy.handle(e)
            continue
        seen.add(record.file_id)
        yield row
