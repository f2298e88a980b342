"""The speech front-end as resumable stages, each writing an HF ``datasets`` dataset on disk.

``python -m lst_lightning.data.speech.stages <stage> ...``:

==============  =====================================================================================
``ingest``      HF dataset or folder -> ``file_id, audio (16 kHz WAV bytes), text, num_samples``
``fit-units``   train a unit tokenizer on the ingested audio (log-mel k-means, or HuBERT + k-means)
``units``       ingest dataset -> ``file_id, text, num_samples, units`` (25 Hz, never deduplicated)
``align``       units dataset -> ``+ words (timings), interleaved`` (the paper's aligned record), from a
                timings JSONL file (TTS or any precomputed alignment) or CTC forced alignment
``export``      aligned dataset -> aligned-unit JSONL (``lst_lightning.data.records``)
``all``         every stage above in one work folder
==============  =====================================================================================

Resumable: a stage whose output is complete is skipped (``--force`` redoes it), but only when it
was made with the same settings from the same input: each output records its settings and the
``run_id`` of the output it was made from (``stage.json``; ``.<file>.stage.json`` beside the
tokenizer and the exported JSONL), and a rerun with another ``--folder``, ``--num-units``, ... or
after an earlier stage was redone stops, naming what differs. A stage builds in
``.<name>.partial`` beside its output and renames it into place only when done, so an interrupted
stage (even by ``kill -9``) leaves only that folder, which the next run removes. One run per
output: a second run writing the same output at the same time stops, naming the first
(``<output>.lock``, :mod:`lst_lightning.data.locking`). ``--on-error skip`` leaves bad records out and reports how many
were skipped per problem; ``stop`` (the default) raises at the first one, naming it.

The ``audio`` column is a struct ``{"bytes", "path"}``, the storage of ``datasets.Audio``: cast it
with ``Audio(decode=False)`` (or ``Audio()`` where torchcodec is installed) to use it as audio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lst_lightning.data.locking import output_lock
from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    format_interleaved,
    parse_interleaved,
    write_aligned_jsonl,
    write_text_atomic,
)
from lst_lightning.data.speech.align import (
    CTCAligner,
    WordTiming,
    check_words,
    read_timings_jsonl,
    utterance_from_timings,
)
from lst_lightning.data.speech.audio import RecordError, load_audio
from lst_lightning.data.speech.ingest import (
    ON_ERROR,
    ErrorPolicy,
    ingest_rows,
    iter_folder,
    iter_hf,
    open_hf_dataset,
)
from lst_lightning.data.speech.units import (
    DEFAULT_HUBERT_LAYER,
    DEFAULT_MAX_FIT_FRAMES,
    HubertKMeansUnits,
    MelKMeansUnits,
    load_unit_tokenizer,
    num_frames,
)

STAGE_INFO = "stage.json"
RESULT_KEYS = ("stage", "records", "skipped", "seconds_to_build", "run_id")
"""``stage.json`` keys that describe a run's result, not the settings it was made with."""


class StaleOutput(FileExistsError):
    """A finished output was made with other settings or from another input than asked now."""


def check_settings(name: str, out: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise :class:`StaleOutput` naming every setting of ``wanted`` that ``saved`` differs in."""
    saved = json.loads(json.dumps(saved))
    wanted = json.loads(json.dumps(wanted))
    diff = [
        f"{key}: {saved.get(key)!r} there, {value!r} now"
        for key, value in wanted.items()
        if key not in RESULT_KEYS and saved.get(key) != value
    ]
    if diff:
        raise StaleOutput(
            f"{name}: {out} was made with other settings or from another input "
            f"({'; '.join(diff)}): pass --force to redo it (and the stages after it), or write "
            "to another output"
        )


def _sidecar(path: Path) -> Path:
    return path.parent / f".{path.name}.{STAGE_INFO}"


def _check_file_output(name: str, path: Path, wanted: dict[str, Any]) -> None:
    """Settings check for a stage whose output is one file (settings in a hidden sidecar)."""
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise StaleOutput(
            f"{name}: {path} exists but records no settings ({sidecar} is missing), so it cannot "
            "be checked against this run: pass --force to redo it, or write to another output"
        )
    check_settings(name, path, json.loads(sidecar.read_text(encoding="utf-8")), wanted)


def _write_file_settings(path: Path, settings: dict[str, Any]) -> None:
    write_text_atomic(_sidecar(path), json.dumps(settings, indent=2) + "\n")


def _features(kind: str) -> Any:
    from datasets import Features, List, Value

    audio = {"bytes": Value("binary"), "path": Value("string")}
    word = {"word": Value("string"), "start": Value("float64"), "end": Value("float64")}
    columns: dict[str, Any] = {"file_id": Value("string")}
    if kind == "ingest":
        columns |= {"audio": audio, "text": Value("string"), "num_samples": Value("int64")}
    elif kind == "units":
        columns |= {"text": Value("string"), "num_samples": Value("int64")}
        columns |= {"units": List(Value("int32"))}
    elif kind == "align":
        columns |= {"text": Value("string"), "units": List(Value("int32"))}
        columns |= {"words": List(word), "interleaved": Value("string")}
    return Features(columns)


# -- the resumable stage runner ----------------------------------------------------------------------------


def stage_is_complete(out: str | Path) -> bool:
    out = Path(out)
    return (out / STAGE_INFO).is_file() and (out / "state.json").is_file()


def read_stage_info(path: str | Path) -> dict[str, Any]:
    """The ``stage.json`` of a finished stage output."""
    info = Path(path) / STAGE_INFO
    if not info.is_file():
        raise FileNotFoundError(
            f"{path} is not a finished stage output (no {STAGE_INFO}); run the previous stage first"
        )
    return json.loads(info.read_text(encoding="utf-8"))


def run_stage(
    name: str,
    out: str | Path,
    rows: Callable[[], Iterator[dict[str, Any]]],
    policy: ErrorPolicy,
    info: dict[str, Any],
    force: bool = False,
) -> dict[str, Any]:
    """Write the rows of ``rows()`` as a dataset at ``out`` (atomically), unless it is already there.

    Returns the stage's ``stage.json``: ``info`` (the settings, compared on a rerun) plus the
    record count, the skip counts and a fresh ``run_id``.
    """

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        return _run_stage(name, out, rows, policy, info, force)


def _run_stage(
    name: str,
    out: Path,
    rows: Callable[[], Iterator[dict[str, Any]]],
    policy: ErrorPolicy,
    info: dict[str, Any],
    force: bool,
) -> dict[str, Any]:
    from datasets import Dataset
    from datasets.exceptions import DatasetGenerationError

    partial = out.parent / f".{out.name}.partial"
    if stage_is_complete(out) and not force:
        saved = read_stage_info(out)
        check_settings(name, out, saved, info)
        print(f"{name}: {out} is complete, skipping (--force redoes it)")
        return saved
    if out.exists() and not force:
        raise FileExistsError(
            f"{out} exists but is not a finished {name} stage; remove it or pass --force"
        )
    if partial.exists():
        print(f"{name}: removing {partial} left by an interrupted run")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    try:
        try:
            ds = Dataset.from_generator(
                rows,
                features=_features(name),
                cache_dir=str(partial / "cache"),
                fingerprint=uuid.uuid4().hex,
            )
        except DatasetGenerationError as e:
            cause: BaseException | None = e
            while cause is not None and not isinstance(cause, (RecordError, ValueError, OSError)):
                cause = cause.__cause__
            raise (cause or e) from None
        if len(ds) == 0:
            raise ValueError(f"{name}: no records to write\n{policy.report()}")
        target = partial / "dataset"
        ds.save_to_disk(str(target))
        del ds
        info = {
            "stage": name,
            **info,
            "records": _count_rows(target),
            "skipped": dict(policy.counts),
            "seconds_to_build": round(time.perf_counter() - started, 2),
            "run_id": uuid.uuid4().hex,
        }
        write_text_atomic(target / STAGE_INFO, json.dumps(info, indent=2) + "\n")
        if out.exists():  # force
            old = out.parent / f".{out.name}.old"
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            shutil.rmtree(old)
        os.replace(target, out)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    print(f"{name}: wrote {info['records']} records to {out}")
    print(f"{name}: {policy.report()}")
    return info


def _count_rows(path: Path) -> int:
    from datasets import load_from_disk

    return len(load_from_disk(str(path)))


def _open_stage(path: str | Path, name: str) -> tuple[Any, dict[str, Any]]:
    from datasets import load_from_disk

    info = read_stage_info(path)
    if info.get("stage") != name:
        raise ValueError(f"{path} is the output of stage {info.get('stage')!r}, expected {name!r}")
    return load_from_disk(str(path)), info


# -- the stages --------------------------------------------------------------------------------------------


def ingest(
    out: str | Path,
    *,
    hf: str | None = None,
    folder: str | Path | None = None,
    split: str = "train",
    config: str | None = None,
    audio_column: str = "audio",
    text_column: str = "text",
    id_column: str | None = None,
    sample_rate: int | None = None,
    on_error: str = "stop",
    force: bool = False,
) -> dict[str, Any]:
    """Stage 1: read an HF dataset (``hf``) or a folder of audio + transcripts into 16 kHz records.

    ``sample_rate``: the rate the source declares; a file at another rate is then a bad record.
    """
    if (hf is None) == (folder is None):
        raise ValueError(
            "ingest needs exactly one source: an HF dataset (--hf) or a folder (--folder)"
        )
    policy = ErrorPolicy(on_error)
    if hf is not None:
        source = f"hf:{hf}[{split}]"

        def records():
            dataset = open_hf_dataset(hf, split, config)
            return iter_hf(dataset, audio_column, text_column, id_column, name=str(hf))

    else:
        source = f"folder:{Path(folder).resolve()}"

        def records():
            return iter_folder(folder)

    def rows():
        yield from ingest_rows(records(), policy, sample_rate)

    info = {"source": source, "sample_rate": 16000, "expected_sample_rate": sample_rate}
    if hf is not None:
        info |= {"config": config, "columns": [audio_column, text_column, id_column]}
    return run_stage("ingest", out, rows, policy, info, force)


def fit_units(
    ingest_dir: str | Path,
    out_file: str | Path,
    *,
    kind: str = "mel",
    num_units: int = DEFAULT_NUM_UNITS,
    seed: int = 0,
    hubert: str | Path | None = None,
    layer: int = DEFAULT_HUBERT_LAYER,
    max_frames: int = DEFAULT_MAX_FIT_FRAMES,
    force: bool = False,
) -> Path:
    """Train a unit tokenizer on the ingested audio and save it (skipped when the file exists
    and was made with the same settings from the same ingest output)."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    ingest_info = read_stage_info(ingest_dir)
    settings = {
        "stage": "fit-units",
        "input": str(Path(ingest_dir).resolve()),
        "input_run": ingest_info.get("run_id"),
        "kind": kind,
        "num_units": num_units,
        "seed": seed,
        "hubert": None if hubert is None else str(hubert),
        "layer": layer if kind == "hubert" else None,
        "max_frames": max_frames,
    }
    with output_lock(out_file):
        if out_file.is_file() and not force:
            _check_file_output("fit-units", out_file, settings)
            print(f"fit-units: {out_file} exists, skipping (--force retrains)")
            return out_file
        return _fit_units(ingest_dir, out_file, settings)


def _fit_units(ingest_dir: str | Path, out_file: Path, settings: dict[str, Any]) -> Path:
    kind, num_units, seed = settings["kind"], settings["num_units"], settings["seed"]
    hubert, layer, max_frames = settings["hubert"], settings["layer"], settings["max_frames"]
    dataset, _ = _open_stage(ingest_dir, "ingest")
    waveforms = (load_audio(row["audio"]["bytes"], row["file_id"]) for row in dataset)
    started = time.perf_counter()
    if kind == "mel":
        tokenizer: Any = MelKMeansUnits.fit(waveforms, num_units, seed, max_frames=max_frames)
    elif kind == "hubert":
        if hubert is None:
            raise ValueError(
                "fit-units --kind hubert needs --hubert (a model folder or weights file)"
            )
        tokenizer = HubertKMeansUnits.fit(
            hubert, waveforms, num_units, seed, layer=layer, max_frames=max_frames
        )
    else:
        raise ValueError(f"fit-units --kind must be 'mel' or 'hubert', got {kind!r}")
    _sidecar(out_file).unlink(missing_ok=True)  # a crash between the two writes: no settings
    tokenizer.save(out_file)
    _write_file_settings(out_file, settings)
    print(
        f"fit-units: {num_units}-unit {kind} codebook in {time.perf_counter() - started:.1f} s -> {out_file}"
    )
    return out_file


def units(
    ingest_dir: str | Path,
    out: str | Path,
    tokenizer: str | Path,
    *,
    on_error: str = "stop",
    force: bool = False,
) -> dict[str, Any]:
    """Stage 2: unit-tokenise every ingested utterance (one unit per 25 Hz frame, no dedup)."""
    ingest_info = read_stage_info(ingest_dir)
    tok = load_unit_tokenizer(tokenizer)
    policy = ErrorPolicy(on_error)

    def rows():
        dataset, _ = _open_stage(ingest_dir, "ingest")
        for row in dataset:
            try:
                wav = load_audio(row["audio"]["bytes"], row["file_id"])
                seq = tok(wav)
            except RecordError as e:
                policy.handle(e)
                continue
            yield {
                "file_id": row["file_id"],
                "text": row["text"],
                "num_samples": row["num_samples"],
                "units": seq.tolist(),
            }

    info = {"input": str(Path(ingest_dir).resolve()), "tokenizer": str(Path(tokenizer).resolve())}
    info["num_units"] = tok.num_units
    info["input_run"] = ingest_info.get("run_id")
    tokenizer_settings = _sidecar(Path(tokenizer))
    if tokenizer_settings.is_file():  # the tokenizer fit-units made: refit means redo
        info["tokenizer_settings"] = json.loads(tokenizer_settings.read_text(encoding="utf-8"))
    return run_stage("units", out, rows, policy, info, force)


def check_units(file_id: str, seq: list[int], num_units: int, num_samples: int | None) -> None:
    """Unit ids inside the codebook, and as many as the audio has 25 Hz frames."""
    bad = [u for u in seq if not 0 <= u < num_units]
    if bad:
        raise RecordError(file_id, "unit out of range", f"unit {bad[0]} outside [0, {num_units})")
    if num_samples is not None and len(seq) != num_frames(num_samples):
        raise RecordError(
            file_id,
            "unit count does not match audio",
            f"{len(seq)} units for {num_samples} samples ({num_frames(num_samples)} frames)",
        )


def align(
    units_dir: str | Path,
    out: str | Path,
    *,
    method: str = "timings",
    timings: str | Path | None = None,
    ctc_model: str | Path | None = None,
    audio_dir: str | Path | None = None,
    on_error: str = "stop",
    force: bool = False,
) -> dict[str, Any]:
    """Stage 3: word timings -> aligned records, checking words, units and lengths.

    ``method="timings"``: a timings JSONL file (``lst_lightning.data.speech.align``). ``method="ctc"``: a
    local transformers CTC model folder with ``vocab.json``; the audio comes from ``audio_dir``
    (default: the ingest output the units stage read).
    """
    _, units_info = _open_stage(units_dir, "units")
    num_units = int(units_info["num_units"])
    policy = ErrorPolicy(on_error)
    if method == "timings":
        if timings is None:
            raise ValueError("align --method timings needs --timings (a timings JSONL file)")
        table = read_timings_jsonl(timings)

        def get_timings(row: dict[str, Any]) -> list[WordTiming]:
            if row["file_id"] not in table:
                raise RecordError(row["file_id"], "no alignment", f"not in {timings}")
            return table[row["file_id"]]

        source = str(Path(timings).resolve())
    elif method == "ctc":
        if ctc_model is None:
            raise ValueError("align --method ctc needs --ctc-model (a local CTC model folder)")
        aligner = CTCAligner.from_pretrained(ctc_model)
        audio_path = audio_dir or units_info["input"]
        audio_ds, _ = _open_stage(audio_path, "ingest")
        index = {fid: i for i, fid in enumerate(audio_ds["file_id"])}

        def get_timings(row: dict[str, Any]) -> list[WordTiming]:
            if row["file_id"] not in index:
                raise RecordError(row["file_id"], "no alignment", f"no audio in {audio_path}")
            wav = load_audio(audio_ds[index[row["file_id"]]]["audio"]["bytes"], row["file_id"])
            return aligner(row["file_id"], wav, row["text"].split())

        source = str(Path(ctc_model).resolve())
    else:
        raise ValueError(f"align --method must be 'timings' or 'ctc', got {method!r}")

    def rows():
        dataset, _ = _open_stage(units_dir, "units")
        for row in dataset:
            fid = row["file_id"]
            try:
                check_units(fid, row["units"], num_units, row["num_samples"])
                words = get_timings(row)
                check_words(fid, row["text"].split(), words)
                utt = utterance_from_timings(fid, words, row["units"])
            except RecordError as e:
                policy.handle(e)
                continue
            yield {
                "file_id": fid,
                "text": row["text"],
                "units": row["units"],
                "words": [{"word": w.word, "start": w.start, "end": w.end} for w in words],
                "interleaved": format_interleaved(utt),
            }

    info = {"input": str(Path(units_dir).resolve()), "method": method, "source": source}
    info["num_units"] = num_units
    info["input_run"] = units_info.get("run_id")
    return run_stage("align", out, rows, policy, info, force)


def export(aligned_dir: str | Path, out_file: str | Path, *, force: bool = False) -> Path:
    """Stage 4: write the aligned dataset as the paper's aligned-unit JSONL (atomically)."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    aligned_info = read_stage_info(aligned_dir)
    settings = {
        "stage": "export",
        "input": str(Path(aligned_dir).resolve()),
        "input_run": aligned_info.get("run_id"),
    }
    with output_lock(out_file):
        if out_file.is_file() and not force:
            _check_file_output("export", out_file, settings)
            print(f"export: {out_file} exists, skipping (--force rewrites it)")
            return out_file
        dataset, info = _open_stage(aligned_dir, "align")
        num_units = int(info["num_units"])
        utterances = []
        for row in dataset:
            try:
                utterances.append(parse_interleaved(row["interleaved"], row["file_id"], num_units))
            except ValueError as e:
                raise ValueError(f"{aligned_dir} ({row['file_id']}): {e}") from None
        _sidecar(out_file).unlink(missing_ok=True)
        write_aligned_jsonl(out_file, utterances)
        _write_file_settings(out_file, settings)
    print(f"export: wrote {len(utterances)} utterances to {out_file}")
    return out_file


def run_all(work: str | Path, **kwargs: Any) -> Path:
    """ingest -> fit-units (unless ``tokenizer`` is given) -> units -> align -> export, in ``work``."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    force = kwargs.pop("force", False)
    on_error = kwargs.pop("on_error", "stop")
    ingest(
        work / "ingest",
        **{k: kwargs[k] for k in _INGEST_KEYS if k in kwargs},
        on_error=on_error,
        force=force,
    )
    tokenizer = kwargs.get("tokenizer") or fit_units(
        work / "ingest",
        work / "unit_tokenizer.pt",
        **{k: kwargs[k] for k in _FIT_KEYS if k in kwargs},
        force=force,
    )
    units(work / "ingest", work / "units", tokenizer, on_error=on_error, force=force)
    align(
        work / "units",
        work / "aligned",
        **{k: kwargs[k] for k in _ALIGN_KEYS if k in kwargs},
        on_error=on_error,
        force=force,
    )
    return export(work / "aligned", work / "aligned.jsonl", force=force)


_INGEST_KEYS = (
    "hf",
    "folder",
    "split",
    "config",
    "audio_column",
    "text_column",
    "id_column",
    "sample_rate",
)
_FIT_KEYS = ("kind", "num_units", "seed", "hubert", "layer", "max_frames")
_ALIGN_KEYS = ("method", "timings", "ctc_model", "audio_dir")


# -- command line ----------------------------------------------------------------------------------------


def _add_ingest_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--hf", help="HF dataset: a save_to_disk folder, or a name/path for load_dataset"
    )
    src.add_argument(
        "--folder", help="folder of audio files with <name>.txt or *.trans.txt transcripts"
    )
    p.add_argument("--split", default="train")
    p.add_argument("--config", default=None, help="load_dataset configuration name")
    p.add_argument("--audio-column", default="audio")
    p.add_argument("--text-column", default="text")
    p.add_argument(
        "--id-column", default=None, help="default: 'id' when present, else the row index"
    )
    p.add_argument("--sample-rate", type=int, default=None, help="reject files at another rate")


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=("mel", "hubert"), default="mel")
    p.add_argument(
        "--num-units", type=int, default=DEFAULT_NUM_UNITS, help="codebook size (paper: 501)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--hubert", default=None, help="transformers HubertModel folder or torchaudio weights"
    )
    p.add_argument("--layer", type=int, default=DEFAULT_HUBERT_LAYER)
    p.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FIT_FRAMES)


def _add_align_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("timings", "ctc"), default="timings")
    p.add_argument("--timings", default=None, help="timings JSONL (file_id, words: word/start/end)")
    p.add_argument("--ctc-model", default=None, help="local CTC model folder with vocab.json")
    p.add_argument("--audio-dir", default=None, help="ingest output holding the audio (ctc)")


def _common(p: argparse.ArgumentParser, policy: bool = True) -> None:
    if policy:
        p.add_argument("--on-error", choices=ON_ERROR, default="stop")
    p.add_argument("--force", action="store_true", help="redo the stage even if its output exists")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lst_lightning.data.speech.stages",
        description="Speech front-end stages: ingest -> fit-units -> units -> align -> export.",
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("ingest", help="HF dataset or folder -> 16 kHz records")
    p.add_argument("--out", required=True)
    _add_ingest_args(p)
    _common(p)
    p = sub.add_parser("fit-units", help="train a unit tokenizer on ingested audio")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True, help="tokenizer file to write")
    _add_fit_args(p)
    _common(p, policy=False)
    p = sub.add_parser("units", help="ingested audio -> 25 Hz units")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", required=True, help="a saved unit tokenizer (fit-units output)")
    _common(p)
    p = sub.add_parser("align", help="units + word timings -> aligned records")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    _add_align_args(p)
    _common(p)
    p = sub.add_parser("export", help="aligned dataset -> aligned-unit JSONL")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    _common(p, policy=False)
    p = sub.add_parser("all", help="every stage in one work folder")
    p.add_argument("--work", required=True)
    p.add_argument("--tokenizer", default=None, help="use this tokenizer instead of fitting one")
    _add_ingest_args(p)
    _add_fit_args(p)
    _add_align_args(p)
    _common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = {k: v for k, v in vars(args).items() if k not in ("stage", "inp", "out", "work")}
    try:
        if args.stage == "ingest":
            ingest(args.out, **opts)
        elif args.stage == "fit-units":
            fit_units(args.inp, args.out, **opts)
        elif args.stage == "units":
            units(args.inp, args.out, **opts)
        elif args.stage == "align":
            align(args.inp, args.out, **opts)
        elif args.stage == "export":
            export(args.inp, args.out, **opts)
        else:
            run_all(args.work, **opts)
    except (RecordError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
