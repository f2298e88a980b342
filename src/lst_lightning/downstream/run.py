"""``make downstream``: the paper's Tab. 5 at tiny scale, from pre-training to the table.

For each system (tiny LST static, tiny LST curriculum, tiny Base SpeechLLM) this

1. takes its ``make train`` checkpoint (``runs/<exp>/run/checkpoints/last.ckpt``), training it
   first with ``lst-lightning fit --config experiments/<exp>.yaml`` when it is missing
   (``--pretrain-steps`` shortens that run);
2. fine-tunes it on ASR and on TTS (``experiments/tiny_<system>_<task>.yaml``, warm-started with
   ``--model.init_from``, ``--steps`` each, into ``<out>/runs``; ``--jobs`` fine-tunes at once);
3. decodes held-out prompts (:mod:`.decode`: greedy, restricted to the answer's modality, bounded
   by twice the reference answer's length): ASR on the held-out split, the held-out voice and the
   real sets (librivox, asterisk; built by :mod:`.realspeech` when missing and possible), TTS on
   the held-out split and voice;
4. scores them: ASR WER / CER (:mod:`.metrics`); TTS through two judges, the unit CTC recogniser
   on the generated units (:mod:`.unit_ctc`; trained first when its file is missing) and Whisper
   tiny.en on the units vocoded by the codebook vocoder (:mod:`.judge`; skipped with its reason
   when the ``judge`` extra is absent), each next to its topline on the same utterances'
   ground-truth units;
5. writes ``<out>/results.json`` and the section between ``<!-- tab5:start -->`` and
   ``<!-- tab5:end -->`` of ``--doc`` (docs/downstream.md), with machine, date, load and wall time.

``--quick`` shrinks everything (a few steps and utterances) to check the pipeline end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START, END = "<!-- tab5:start -->", "<!-- tab5:end -->"


@dataclass(frozen=True)
class System:
    key: str
    """Fine-tune experiments are ``tiny_<key>_<task>``."""
    label: str
    pretrain: str
    """The pre-training experiment (``experiments/<pretrain>.yaml``)."""


SYSTEMS = (
    System("lst", "LST static", "tiny_lst"),
    System("lst_curriculum", "LST curriculum", "tiny_lst_curriculum"),
    System("baseline", "Base SpeechLLM", "tiny_baseline"),
)
BASELINE = "baseline"
ASR_SETS = ("valid", "heldout_voice", "librivox", "asterisk")
TTS_SETS = ("valid", "heldout_voice")


def log(message: str) -> None:
    print(f"downstream [{datetime.now(UTC).strftime('%H:%M:%S')}]: {message}", flush=True)


# -- training ----------------------------------------------------------------------------------
def _fit(args: list[str], threads: int, logfile: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "lst_lightning",
        "fit",
        *args,
        "--trainer.enable_progress_bar",
        "false",
    ]
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = "".join(logfile.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}); log {logfile}:\n{tail}")


def pretrained(system: System, runs: Path, steps: int | None, threads: int, logs: Path) -> Path:
    """The system's ``make train`` checkpoint, trained first when missing."""
    ckpt = runs / system.pretrain / "run" / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return ckpt
    log(f"{ckpt} is missing: pre-training {system.pretrain}")
    extra = [] if steps is None else ["--trainer.max_steps", str(steps)]
    if steps is not None and steps <= 30:  # the experiments warm up for 30 steps
        extra += ["--model.optim.warmup_steps", str(max(1, steps // 4))]
    if steps is not None:
        extra += ["--trainer.val_check_interval", str(min(steps, 100))]
        extra += ["--checkpoint.every_n_train_steps", str(steps)]
    _fit(
        [
            "--config",
            f"experiments/{system.pretrain}.yaml",
            "--trainer.logger.init_args.save_dir",
            str(runs),
            *extra,
        ],
        threads,
        logs / f"pretrain_{system.pretrain}.log",
    )
    if not ckpt.is_file():
        raise RuntimeError(f"pre-training {system.pretrain} wrote no {ckpt}")
    return ckpt


def finetune(
    system: System, task: str, init: Path, out: Path, steps: int, threads: int, quick: bool
) -> Path:
    """Fine-tune ``system`` on ``task``; reuses a finished run of the same length."""
    name = f"tiny_{system.key}_{task}"
    ckpt = out / "runs" / name / "run" / "checkpoints" / "last.ckpt"
    done = out / "runs" / name / "run" / f"finished_{steps}_steps"
    if ckpt.is_file() and done.is_file():
        log(f"{name}: reusing {ckpt}")
        return ckpt
    if (out / "runs" / name / "run").exists():
        raise FileExistsError(
            f"{out / 'runs' / name / 'run'} holds an unfinished or different run: remove it"
        )
    log(f"{name}: fine-tuning {steps} steps from {init}")
    args = [
        "--config",
        f"experiments/{name}.yaml",
        f"--model.init_from={init}",
        "--trainer.max_steps",
        str(steps),
        "--trainer.val_check_interval",
        str(steps),
        "--model.optim.warmup_steps",
        str(max(1, min(20, steps // 5))),
        "--trainer.logger.init_args.save_dir",
        str(out / "runs"),
        "--checkpoint.every_n_train_steps",  # last.ckpt at the final step, not the last 100th
        str(steps),
    ]
    if quick:
        args += [
            "--trainer.limit_val_batches",
            "1",
            "--data.task.train_limit",
            "32",
            "--data.task.valid_limit",
            "8",
            "--samples.num_prompts",
            "1",
        ]
    started = time.perf_counter()
    _fit(args, threads, out / "logs" / f"{name}.log")
    done.write_text(f"{time.perf_counter() - started:.0f} s\n")
    log(f"{name}: done in {time.perf_counter() - started:.0f} s")
    return ckpt


# -- evaluation data ---------------------------------------------------------------------------
def eval_items(name: str, corpus: Path, real: Path, limit: int) -> tuple[list, str]:
    """``(SpeechText items, note)`` of one set; ``([], why)`` when it cannot be had."""
    from lst_lightning.data.records import read_aligned_jsonl
    from lst_lightning.downstream.evalsets import spread
    from lst_lightning.downstream.realspeech import read_real_set, real_set_status
    from lst_lightning.downstream.tasks import SpeechText

    if name in ("valid", "heldout_voice"):
        utts = [u for u in read_aligned_jsonl(corpus / f"{name}.jsonl") if u.transcript.strip()]
        items = [SpeechText.from_aligned(utts[i]) for i in spread(len(utts), limit)]
        return items, f"{name}.jsonl"
    work = real / name
    if not (work / "units").is_dir():
        ok, why = real_set_status(name)
        if not ok:
            return [], why
        from lst_lightning.downstream.realspeech import main as build_real

        log(f"building the real-speech set {name} in {work}")
        if build_real(
            ["--out", str(real), "--tokenizer", str(corpus / "units.pt"), "--sets", name]
        ):
            return [], f"building {work} failed"
    built = [item for item, _ in read_real_set(work)]
    return [built[i] for i in spread(len(built), limit)], "real recordings"


# -- scoring -----------------------------------------------------------------------------------
def summarise(decoded: list) -> dict[str, Any]:
    n = max(1, len(decoded))
    return {
        "utterances": len(decoded),
        "global_steps": sum(d.global_steps for d in decoded) / n,
        "context_positions": sum(d.context_positions for d in decoded) / n,
        "decoder_steps": sum(d.decoder_steps for d in decoded) / n,
        "not_stopped": sum(not d.stopped for d in decoded) / n,
    }


def rates(hyps: list[str], refs: list[str]) -> dict[str, float]:
    from lst_lightning.downstream.metrics import error_rates

    r = error_rates(hyps, refs)
    return {"wer": 100 * r.wer, "cer": 100 * r.cer}


@dataclass
class Judges:
    unit_ctc: Any
    whisper: Any
    whisper_note: str
    vocoder: Any


def load_judges(corpus: Path, ctc_path: Path, ctc_epochs: int, doc: Path, quick: bool) -> Judges:
    from lst_lightning.downstream.judge import JudgeUnavailable, load_judge
    from lst_lightning.downstream.unit_ctc import UnitRecognizer

    if not ctc_path.is_file():
        log(f"{ctc_path} is missing: training the unit CTC judge ({ctc_epochs} epochs)")
        if quick:
            from lst_lightning.data.records import read_aligned_jsonl
            from lst_lightning.downstream.unit_ctc import UnitCTCConfig, train_unit_ctc

            train = read_aligned_jsonl(corpus / "train.jsonl")[:64]
            recognizer = train_unit_ctc(
                [(u.units, u.transcript) for u in train], UnitCTCConfig(), 1
            )
            ctc_path.parent.mkdir(parents=True, exist_ok=True)
            recognizer.save(ctc_path)
        else:
            from lst_lightning.downstream.unit_ctc import main as train_ctc

            argv = ["--corpus", str(corpus), "--out", str(ctc_path), "--epochs", str(ctc_epochs)]
            if train_ctc([*argv, "--doc", str(doc)]):
                raise RuntimeError("training the unit CTC judge failed")
    unit_ctc = UnitRecognizer.load(ctc_path)
    try:
        whisper, note = load_judge(), "Whisper tiny.en (faster-whisper, int8, beam 5)"
    except JudgeUnavailable as e:
        whisper, note = None, str(e)
        log(f"Whisper judge skipped: {e}")
    vocoder = codebook_vocoder(corpus, 10 if quick else 50) if whisper is not None else None
    return Judges(unit_ctc, whisper, note, vocoder)


def codebook_vocoder(corpus: Path, utterances: int):
    """The topline's codebook vocoder: per-band levels from re-synthesised training audio (the
    corpus's held-out-voice audio when espeak-ng is absent)."""
    from lst_lightning.data.speech.units import load_unit_tokenizer
    from lst_lightning.downstream.evalsets import embedded_split_audio
    from lst_lightning.downstream.listen import load_vocoder
    from lst_lightning.downstream.vocoder import GriffinLimVocoder, mel_levels

    try:
        tokenizer = load_unit_tokenizer(corpus / "units.pt")
        audio = [w for _, w in embedded_split_audio(corpus, "train", limit=utterances)]
        return GriffinLimVocoder.from_codebook(tokenizer, mel_levels(audio, tokenizer))
    except (FileNotFoundError, OSError, RuntimeError) as e:
        log(f"codebook vocoder from the held-out voice's audio instead ({e})")
        return load_vocoder(None, corpus)


def evaluate(
    ckpt: Path, task: str, sets: dict[str, list], judges: Judges | None, batch_size: int = 1
) -> dict[str, Any]:
    """Decode and score one fine-tuned checkpoint on every set of its task."""
    import numpy as np

    from lst_lightning.downstream.decode import decode_tasks, transcript, units
    from lst_lightning.downstream.tasks import task_documents
    from lst_lightning.eval.__main__ import load_checkpoint

    loaded = load_checkpoint(ckpt)
    space, net = loaded.space, loaded.module.net.eval()
    out: dict[str, Any] = {"step": loaded.step, "sets": {}}
    for name, items in sets.items():
        if not items:
            continue
        docs = task_documents(task, items, space)
        started = time.perf_counter()
        decoded = decode_tasks(net, docs, space, loaded.patch_size, batch_size=batch_size)
        row = summarise(decoded)
        row["decode_seconds"] = time.perf_counter() - started
        refs = [i.text for i in items]
        if task == "asr":
            hyps = [transcript(space, d) for d in decoded]
            row.update(rates(hyps, refs))
            row["examples"] = [[refs[k], hyps[k]] for k in range(min(3, len(refs)))]
        else:
            made = [units(space, d) for d in decoded]
            ctc = judges.unit_ctc.transcribe_all([m if m else (0,) for m in made])
            row["unit_ctc"] = rates(ctc, refs)
            row["examples"] = [[refs[k], ctc[k]] for k in range(min(3, len(refs)))]
            if judges.whisper is not None:
                heard = [
                    judges.whisper.transcribe(judges.vocoder(np.asarray(m or (0,), dtype=np.int64)))
                    for m in made
                ]
                row["whisper"] = rates(heard, refs)
        out["sets"][name] = row
        log(
            f"{ckpt.parent.parent.parent.name} {name}: {json.dumps({k: v for k, v in row.items() if k != 'examples'})}"
        )
    return out


def toplines(sets: dict[str, list], judges: Judges) -> dict[str, Any]:
    """The judges on the same utterances' ground-truth units."""
    import numpy as np

    out: dict[str, Any] = {}
    for name, items in sets.items():
        refs = [i.text for i in items]
        row = {"unit_ctc": rates(judges.unit_ctc.transcribe_all([i.units for i in items]), refs)}
        if judges.whisper is not None:
            heard = [judges.whisper.transcribe(judges.vocoder(np.asarray(i.units))) for i in items]
            row["whisper"] = rates(heard, refs)
        out[name] = row
    return out


# -- the report --------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _relative(results: dict[str, Any], key: str, task: str, field: str) -> str:
    mine = _mean(results, key, task, field)
    base = _mean(results, BASELINE, task, field)
    if mine is None or not base:
        return "n/a"
    return f"{mine:.1f} ({mine / base:.2f}x)"


def _mean(results: dict[str, Any], key: str, task: str, field: str) -> float | None:
    sets = results.get("runs", {}).get(f"{key}_{task}", {}).get("sets", {})
    rows = [r[field] for r in sets.values() if field in r]
    return sum(rows) / len(rows) if rows else None


def format_report(results: dict[str, Any]) -> str:
    """The Tab. 5 section from a results dict (``<out>/results.json``'s layout)."""
    meta, runs = results["meta"], results.get("runs", {})
    labels = {s.key: s.label for s in SYSTEMS}
    asr_sets = [
        s
        for s in ASR_SETS
        if any(s in r.get("sets", {}) for k, r in runs.items() if k.endswith("_asr"))
    ]
    tts_sets = [
        s
        for s in TTS_SETS
        if any(s in r.get("sets", {}) for k, r in runs.items() if k.endswith("_tts"))
    ]
    lines = [
        START,
        "## Tab. 5 at tiny scale: fine-tuned ASR and TTS (`make downstream`)",
        "",
        f"Measured {meta['date']} on {meta['machine']} (load average {meta['load_start']} at the "
        f"start, {meta['load_end']} at the end), {meta['wall_minutes']:.1f} min wall time; "
        f"`{meta['command']}`. {meta['recipe']}",
        "",
        "ASR: WER / CER in % (corpus-level, torchmetrics, after "
        "`downstream.metrics.normalize_transcript`); global AR steps = global-model steps per "
        "answer, context = global positions of prompt + answer (means per utterance over every "
        "set, the ratio to the Base SpeechLLM in brackets); not stopped = share of answers "
        "without EOS within the bound.",
        "",
        "| system | task | fine-tune steps | "
        + " | ".join(f"{s} WER / CER" for s in asr_sets)
        + " | global AR steps | context positions | not stopped |",
        "| --- | --- | --- | " + " | ".join("---" for _ in asr_sets) + " | --- | --- | --- |",
    ]
    for key, label in labels.items():
        run = runs.get(f"{key}_asr")
        if run is None:
            continue
        cells = []
        for s in asr_sets:
            r = run["sets"].get(s)
            cells.append("n/a" if r is None else f"{_fmt(r['wer'])} / {_fmt(r['cer'])}")
        lines.append(
            f"| {label} | ASR | {run['step']} | "
            + " | ".join(cells)
            + f" | {_relative(results, key, 'asr', 'global_steps')}"
            + f" | {_relative(results, key, 'asr', 'context_positions')}"
            + f" | {100 * _mean(results, key, 'asr', 'not_stopped'):.0f}% |"
        )
    whisper_note = meta.get("whisper", "")
    top = results.get("toplines", {})
    lines += [
        "",
        "TTS: CER / WER in % of the judges' transcripts of the generated units: the unit CTC "
        "recogniser reads the units directly, Whisper hears them through the codebook vocoder "
        f"({whisper_note}). Topline = the same judge on the same utterances' ground-truth units.",
        "",
        "| system | task | fine-tune steps | "
        + " | ".join(f"{s} unit-CTC CER / WER | {s} Whisper CER / WER" for s in tts_sets)
        + " | global AR steps | context positions | not stopped |",
        "| --- | --- | --- | " + " | ".join("--- | ---" for _ in tts_sets) + " | --- | --- | --- |",
    ]

    def judge_cells(row: dict[str, Any] | None) -> str:
        cells = []
        for judge in ("unit_ctc", "whisper"):
            r = None if row is None else row.get(judge)
            cells.append("n/a" if r is None else f"{_fmt(r['cer'])} / {_fmt(r['wer'])}")
        return " | ".join(cells)

    lines.append(
        "| topline (ground-truth units) | TTS | - | "
        + " | ".join(judge_cells(top.get(s)) for s in tts_sets)
        + " | - | - | - |"
    )
    for key, label in labels.items():
        run = runs.get(f"{key}_tts")
        if run is None:
            continue
        lines.append(
            f"| {label} | TTS | {run['step']} | "
            + " | ".join(judge_cells(run["sets"].get(s)) for s in tts_sets)
            + f" | {_relative(results, key, 'tts', 'global_steps')}"
            + f" | {_relative(results, key, 'tts', 'context_positions')}"
            + f" | {100 * _mean(results, key, 'tts', 'not_stopped'):.0f}% |"
        )
    notes = meta.get("notes", [])
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    lines += ["", END]
    return "\n".join(lines)


def write_report(results: dict[str, Any], doc: Path) -> None:
    from lst_lightning.downstream.topline import write_section

    write_section(doc, format_report(results), START, END)


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lst_lightning.downstream.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--corpus", default="data/embedded")
    parser.add_argument("--real", default="data/realspeech", help="real-speech sets folder")
    parser.add_argument("--runs", default="runs", help="where the pre-trained runs are (or go)")
    parser.add_argument("--out", default="runs/downstream", help="fine-tunes, logs, results.json")
    parser.add_argument("--doc", default="docs/downstream.md")
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps per run")
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=None,
        help="steps of a missing pre-training (default: the experiment's)",
    )
    parser.add_argument("--asr-limit", type=int, default=40, help="ASR utterances per set")
    parser.add_argument("--tts-limit", type=int, default=20, help="TTS utterances per set")
    parser.add_argument(
        "--systems", nargs="+", default=[s.key for s in SYSTEMS], choices=[s.key for s in SYSTEMS]
    )
    parser.add_argument("--jobs", type=int, default=2, help="fine-tunes run at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fine-tune")
    parser.add_argument("--unit-ctc", default="runs/downstream/unit_ctc.pt")
    parser.add_argument("--ctc-epochs", type=int, default=2)
    parser.add_argument(
        "--decode-batch",
        type=int,
        default=16,
        help="prompts decoded at once (generate_batch; 1: one at a time, as measured 2026-12-02)",
    )
    parser.add_argument(
        "--note", action="append", default=[], help="a line for the report's notes (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="a few steps and utterances")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.asr_limit, args.tts_limit = 3, 2, 2
        args.pretrain_steps = args.pretrain_steps or 3
    started, load_start = time.perf_counter(), _load()
    corpus, out, doc = Path(args.corpus), Path(args.out), Path(args.doc)
    import torch

    torch.set_num_threads(max(1, args.threads * args.jobs))
    try:
        systems = [s for s in SYSTEMS if s.key in args.systems]
        inits = {
            s.key: pretrained(s, Path(args.runs), args.pretrain_steps, 2, out / "logs")
            for s in systems
        }
        jobs = [(s, task) for s in systems for task in ("asr", "tts")]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {
                (s.key, task): pool.submit(
                    finetune, s, task, inits[s.key], out, args.steps, args.threads, args.quick
                )
                for s, task in jobs
            }
            ckpts = {key: f.result() for key, f in futures.items()}
        notes = list(args.note)
        asr_sets, tts_sets = {}, {}
        for name in ASR_SETS:
            items, note = eval_items(name, corpus, Path(args.real), args.asr_limit)
            if not items:
                notes.append(f"ASR set `{name}` skipped: {note}")
                log(notes[-1])
            asr_sets[name] = items
        for name in TTS_SETS:
            tts_sets[name] = eval_items(name, corpus, Path(args.real), args.tts_limit)[0]
        judges = load_judges(corpus, Path(args.unit_ctc), args.ctc_epochs, doc, args.quick)
        if judges.whisper is None:
            notes.append(f"Whisper judge skipped: {judges.whisper_note}")
        results: dict[str, Any] = {"runs": {}, "toplines": toplines(tts_sets, judges)}
        for (key, task), ckpt in ckpts.items():
            sets = asr_sets if task == "asr" else tts_sets
            results["runs"][f"{key}_{task}"] = evaluate(ckpt, task, sets, judges, args.decode_batch)
        sizes = ", ".join(f"{n} {len(v)}" for n, v in asr_sets.items() if v)
        pre = (
            "their experiments' own steps"
            if args.pretrain_steps is None
            else f"{args.pretrain_steps} steps when missing"
        )
        results["meta"] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()} ({os.cpu_count()} CPU cores, no GPU)"
            if not torch.cuda.is_available()
            else torch.cuda.get_device_name(),
            "load_start": f"{load_start:.1f}",
            "load_end": f"{_load():.1f}",
            "wall_minutes": (time.perf_counter() - started) / 60,
            "command": "python -m lst_lightning.downstream.run "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "recipe": (
                f"Pre-trained checkpoints: `runs/<exp>/run/checkpoints/last.ckpt` ({pre}); "
                f"fine-tuning: {args.steps} steps per run (the table's steps column is the step of the "
                "evaluated checkpoint), the pre-training recipe (AdamW, "
                "lr 2e-3, warm-up then cosine), batch 4 rows of 768 tokens for every system (equal "
                "steps and documents), loss on the answer span only, seed 0. Decoding: greedy, "
                "restricted to the answer's modality (text + EOS / units + EOS), at most 2x the "
                f"reference answer + 8 tokens. Utterances per set: ASR {sizes}; TTS "
                + ", ".join(f"{n} {len(v)}" for n, v in tts_sets.items())
                + " (evenly spaced through each set). One seed."
            ),
            "whisper": judges.whisper_note,
            "notes": notes,
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        write_report(results, doc)
        log(
            f"wrote {doc} and {out / 'results.json'} in {(time.perf_counter() - started) / 60:.1f} min"
        )
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


if __name__ == "__main__":
    sys.exit(main())
