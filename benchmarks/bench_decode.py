"""Batched vs one-at-a-time KV-cached decoding throughput, LST and the Base SpeechLLM (tiny presets).

``run()`` returns one row per (workload, model, case); ``python benchmarks/bench_decode.py
[--rounds 3] [--prompts 32] [--out docs/benchmarks.md]`` prints a markdown section and, with
``--out``, writes it as section 6 of that file (replacing an older section 6, atomically).
``make bench`` runs it too.

Workloads (:data:`WORKLOADS`): TTS-style prompts ``BOS <t> text <s>`` decoded into unit ids, and
ASR-style prompts ``BOS <s> units <t>`` (long) decoded into text ids; greedy, no EOS, so every case
emits the same number of tokens. Models are random-init (speed does not depend on training). Cases
per round: the prompts one at a time through :func:`~lst_lightning.model.generate.generate`, then
through :func:`~lst_lightning.model.batch_generate.generate_batch` at each batch size, and at the
largest without the parallel prefill; the cases alternate their order every round (A B C, C B A,
...) and each speedup is the median over rounds of the ratio within a round, so machine load that
changes during the run hits both sides alike. Throughput is new tokens per second of wall time,
prompt reading included. One thread, CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from doc_section import replace_section

from lst_lightning.model import LST, BaselineConfig, SpeechLLM
from lst_lightning.model.batch_generate import generate_batch
from lst_lightning.model.config import lst_preset
from lst_lightning.model.generate import StaticPatchRule, generate

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 1024
TEXT, SPECIALS = 512, 8
BOS, SPEECH_MARK, TEXT_MARK = TEXT + 1, TEXT + 4, TEXT + 3
UNIT_IDS = list(range(TEXT + SPECIALS, VOCAB))
RULE = StaticPatchRule(patch_size=4, unit_range=(TEXT + SPECIALS, VOCAB), speech_id=SPEECH_MARK)
SECTION = "## 6. Batched decoding: generate_batch vs one document at a time"


def models() -> dict[str, LST | SpeechLLM]:
    torch.manual_seed(0)
    lst = LST(lst_preset("tiny")).eval()  # vocab 1024
    base = SpeechLLM(BaselineConfig(vocab_size=VOCAB)).eval()
    return {"tiny LST (static p=4)": lst, "tiny Base SpeechLLM": base}


def tts_prompts(n: int, seed: int = 0) -> list[list[int]]:
    """``BOS <t> text <s>`` with 4-12 random text ids."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(4, 13, (1,), generator=g))
        text = torch.randint(0, TEXT, (length,), generator=g).tolist()
        out.append([BOS, TEXT_MARK, *text, SPEECH_MARK])
    return out


def asr_prompts(n: int, seed: int = 0) -> list[list[int]]:
    """``BOS <s> units <t>`` with 60-100 random units."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(60, 101, (1,), generator=g))
        units = torch.randint(UNIT_IDS[0], VOCAB, (length,), generator=g).tolist()
        out.append([BOS, SPEECH_MARK, *units, TEXT_MARK])
    return out


WORKLOADS = {
    "TTS-style": (tts_prompts, UNIT_IDS, 48),
    "ASR-style": (asr_prompts, list(range(TEXT)), 16),
}
"""name -> (prompts, allowed ids, new tokens per prompt)."""


def timed(fn) -> tuple[float, list]:  # noqa: ANN001 - any callable
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(rounds: int = 3, num_prompts: int = 32, batch_sizes=(16, 32)) -> list[dict]:
    """Interleaved rounds; one row per workload, model and case (one at a time first)."""
    torch.set_num_threads(1)
    rows = []
    for workload, (make, allowed, new_tokens) in WORKLOADS.items():
        work = make(num_prompts)
        for name, model in models().items():
            cases = {
                "one at a time": lambda m=model, w=work, n=new_tokens, a=allowed: [
                    generate(m, p, n, RULE, allowed_ids=a) for p in w
                ]
            }
            for b in batch_sizes:
                cases[f"batch {b}"] = lambda m=model, b=b, w=work, n=new_tokens, a=allowed: (
                    generate_batch(m, w, n, RULE, batch_size=b, allowed_ids=a)
                )
            b = max(batch_sizes)
            cases[f"batch {b}, no prefill"] = lambda m=model, b=b, w=work, n=new_tokens, a=allowed: (
                generate_batch(m, w, n, RULE, batch_size=b, allowed_ids=a, prefill=False)
            )
            timed(cases[f"batch {b}"])  # warm-up
            times: dict[str, list[float]] = {c: [] for c in cases}
            outputs: dict[str, list] = {}
            names = list(cases)
            for r in range(rounds):
                for c in names if r % 2 == 0 else names[::-1]:
                    seconds, out = timed(cases[c])
                    times[c].append(seconds)
                    outputs[c] = out
            reference = outputs["one at a time"]
            tokens = sum(len(g.ids) for g in reference)
            steps = statistics.mean(g.global_steps for g in reference)
            for c in names:
                ratios = [a / s for a, s in zip(times["one at a time"], times[c], strict=True)]
                rows.append(
                    dict(
                        workload=workload,
                        model=name,
                        case=c,
                        tokens=tokens,
                        global_steps=steps,
                        seconds=statistics.median(times[c]),
                        tokens_per_s=tokens / statistics.median(times[c]),
                        speedup=statistics.median(ratios),
                        speedup_range=(min(ratios), max(ratios)),
                        same_ids=[g.ids for g in outputs[c]] == [g.ids for g in reference],
                    )
                )
    return rows


def markdown(rows: list[dict], rounds: int, info: str) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_decode.py`: {info}. Greedy, restricted to the answer's modality, no "
        "EOS (every case emits the same tokens); TTS-style: `BOS <t> text(4-12) <s>` -> 48 unit "
        "ids; ASR-style: `BOS <s> units(60-100) <t>` -> 16 text ids; 32 prompts, random-init tiny "
        f"presets. {rounds} interleaved rounds (case order alternating). Speedup: median over "
        "rounds of (one-at-a-time time / case time) within a round, with the range. New tokens / s "
        "counts prompt reading in the time. Global steps: mean per utterance, prompt included.",
        "",
        "| workload | model | decoding | global steps | median wall (s) | new tokens / s "
        "| speedup (range) | same ids |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lo, hi = r["speedup_range"]
        lines.append(
            f"| {r['workload']} | {r['model']} | {r['case']} | {r['global_steps']:.1f} "
            f"| {r['seconds']:.2f} | {r['tokens_per_s']:.0f} | {r['speedup']:.2f}x "
            f"({lo:.2f}-{hi:.2f}) | {'yes' if r['same_ids'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{when}, {cpu}, {os.cpu_count()} logical cores, load average {load} at start, "
        f"1 torch thread, torch {torch.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--out", type=Path, help="write as section 6 of this markdown file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.prompts < 1:
        parser.error("need --rounds >= 1 and --prompts >= 1")
    info = machine()
    sizes = tuple(b for b in (16, 32) if b <= args.prompts) or (args.prompts,)
    rows = run(args.rounds, args.prompts, sizes)
    section = markdown(rows, args.rounds, info)
    print(section)
    if args.out:
        replace_section(args.out, "## 6. ", section)
        print(f"wrote section 6 of {args.out}")


if __name__ == "__main__":
    main()
