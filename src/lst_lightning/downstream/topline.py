"""The judge's topline: Whisper's WER/CER on original audio and on vocoded ground-truth units.

A TTS system is scored by the judge's CER on its vocoded output; that number can only be read
against what the vocoder + judge pair reaches when the units are perfect. For every evaluation set
(:mod:`.evalsets`) this measures the judge on

- ``original``: the utterance's own audio;
- ``codebook``: its ground-truth units through the codebook Griffin-Lim vocoder (per-band levels
  from training-split audio);
- ``fitted``: the same units through the per-unit spectrum vocoder fitted on training-split audio,

and writes a Markdown section between ``<!-- topline:start -->`` and ``<!-- topline:end -->`` in
``--out`` (the rest of the file is kept), plus every transcript to ``--json``.

``python -m lst_lightning.downstream.topline --corpus data/embedded --real data/realspeech
--limit 40 --out docs/downstream.md`` (needs the ``judge`` extra, espeak-ng and the Austen package;
the real sets need ``python -m lst_lightning.downstream.realspeech`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lst_lightning.data.records import write_text_atomic
from lst_lightning.data.speech.units import MelKMeansUnits, load_unit_tokenizer
from lst_lightning.downstream.evalsets import ALL_SETS, EvalSet, embedded_split_audio, load_eval_set
from lst_lightning.downstream.judge import JudgeUnavailable, WhisperJudge, load_judge
from lst_lightning.downstream.metrics import error_rates
from lst_lightning.downstream.vocoder import GriffinLimVocoder, mel_levels

START, END = "<!-- topline:start -->", "<!-- topline:end -->"
CONDITIONS = ("original", "codebook", "fitted")


def build_vocoders(corpus: Path, fit_utterances: int) -> tuple[dict[str, GriffinLimVocoder], str]:
    """The two Griffin-Lim vocoders, from ``fit_utterances`` re-synthesised training utterances."""
    tokenizer = load_unit_tokenizer(corpus / "units.pt")
    if not isinstance(tokenizer, MelKMeansUnits):
        raise ValueError(f"{corpus / 'units.pt'} is not a log-mel tokenizer")
    audio = [w for _, w in embedded_split_audio(corpus, "train", limit=fit_utterances)]
    codebook = GriffinLimVocoder.from_codebook(tokenizer, mel_levels(audio, tokenizer))
    fitted = GriffinLimVocoder.fit(audio, tokenizer, fallback=codebook)
    return {"codebook": codebook, "fitted": fitted}, fitted.source


def measure_set(
    eval_set: EvalSet, judge: WhisperJudge, vocoders: dict[str, GriffinLimVocoder]
) -> dict[str, Any]:
    """Judge transcripts and error rates of one set under every condition."""
    refs = [item.text for item in eval_set.items]
    result: dict[str, Any] = {
        "set": eval_set.name,
        "utterances": len(refs),
        "seconds": round(eval_set.seconds, 1),
        "note": eval_set.note,
        "conditions": {},
    }
    for condition in CONDITIONS:
        started = time.perf_counter()
        if condition == "original":
            audio = [u.waveform for u in eval_set.utterances]
        else:
            audio = [vocoders[condition](u.item.units) for u in eval_set.utterances]
        hyps = judge.transcribe_all(audio)
        rates = error_rates(hyps, refs)
        result["conditions"][condition] = {
            "wer": rates.wer,
            "cer": rates.cer,
            "reference_words": rates.reference_words,
            "seconds": round(time.perf_counter() - started, 1),
            "transcripts": [
                {"file_id": u.item.file_id, "reference": r, "judge": h}
                for u, r, h in zip(eval_set.utterances, refs, hyps, strict=True)
            ],
        }
        print(
            f"topline: {eval_set.name} {condition}: WER {100 * rates.wer:.1f} CER {100 * rates.cer:.1f}",
            flush=True,
        )
    return result


def format_section(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        START,
        "## Judge topline (Whisper tiny.en on original and vocoded ground-truth audio)",
        "",
        f"Measured {meta['date']} on {meta['machine']} (load average {meta['load']} at the start), "
        f"{meta['wall_minutes']:.1f} min wall time; `{meta['command']}`. WER / CER in %, "
        "corpus-level, after `lst_lightning.downstream.metrics.normalize_transcript`; the judge "
        f"uses beam {meta['beam_size']}, no VAD, no previous-text conditioning. Vocoders: "
        f"`codebook` = the unit codebook's centre log-mel frames with per-band levels from "
        f"{meta['fit_utterances']} re-synthesised training utterances, `fitted` = per-unit mean "
        f"spectra {meta['fitted_source']} on the same utterances.",
        "",
        *(
            [f"Rates recomputed from the saved transcripts on {meta['rescored']} (`--rescore`)."]
            if meta.get("rescored")
            else []
        ),
        "",
        "| set | utterances | audio (s) | original WER | original CER | codebook WER | codebook CER "
        "| fitted WER | fitted CER |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c = r["conditions"]
        cells = [f"{100 * c[k]['wer']:.1f} | {100 * c[k]['cer']:.1f}" for k in CONDITIONS]
        lines.append(
            f"| {r['set']} | {r['utterances']} | {r['seconds']} | " + " | ".join(cells) + " |"
        )
    lines.append("")
    for r in results:
        lines.append(f"- `{r['set']}`: {r['note']}.")
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace the section between ``start`` and ``end`` in ``path`` (or append ``section``,
    which holds both markers; create the file if needed)."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Downstream ASR and TTS\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    new = (
        pattern.sub(lambda _: section, old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + section
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, new.rstrip() + "\n")


def rescore(json_path: Path, out: Path) -> int:
    """Recompute every rate of a saved measurement from its transcripts; rewrite the section."""
    if not json_path.is_file():
        print(f"topline: no saved measurement at {json_path}", file=sys.stderr)
        return 1
    saved = json.loads(json_path.read_text())
    for result in saved["results"]:
        for condition in result["conditions"].values():
            t = condition["transcripts"]
            rates = error_rates([x["judge"] for x in t], [x["reference"] for x in t])
            condition.update(wer=rates.wer, cer=rates.cer, reference_words=rates.reference_words)
    saved["meta"]["rescored"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(out, format_section(saved["results"], saved["meta"]))
    json_path.write_text(json.dumps(saved, indent=1))
    print(f"topline: rescored {json_path} into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lst_lightning.downstream.topline")
    parser.add_argument("--corpus", default="data/embedded")
    parser.add_argument("--real", default="data/realspeech", help="built real-speech sets")
    parser.add_argument("--sets", nargs="+", choices=ALL_SETS, default=list(ALL_SETS))
    parser.add_argument("--limit", type=int, default=40, help="utterances per set (evenly spaced)")
    parser.add_argument("--fit-utterances", type=int, default=200)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--out", default="docs/downstream.md")
    parser.add_argument("--json", default="runs/downstream/topline.json")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="recompute the rates from the transcripts in --json (current normalisation) and "
        "rewrite the section, without transcribing again",
    )
    args = parser.parse_args(argv)
    if args.rescore:
        return rescore(Path(args.json), Path(args.out))
    started = time.perf_counter()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        judge = load_judge(beam_size=args.beam_size)
    except JudgeUnavailable as e:
        print(f"topline: {e}", file=sys.stderr)
        return 1
    import datasets

    datasets.disable_progress_bars()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    corpus = Path(args.corpus)
    vocoders, fitted_source = build_vocoders(corpus, args.fit_utterances)
    results = []
    for name in args.sets:
        try:
            eval_set = load_eval_set(name, corpus, args.real, args.limit)
        except FileNotFoundError as e:
            print(f"topline: skipping {name}: {e}", file=sys.stderr)
            continue
        results.append(measure_set(eval_set, judge, vocoders))
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} ({os.cpu_count()} CPU cores, no GPU)",
        "load": f"{load:.1f}",
        "wall_minutes": (time.perf_counter() - started) / 60,
        "command": "python -m lst_lightning.downstream.topline " + " ".join(argv or sys.argv[1:]),
        "beam_size": args.beam_size,
        "fit_utterances": args.fit_utterances,
        "fitted_source": fitted_source,
    }
    write_section(Path(args.out), format_section(results, meta))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"topline: wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
