"""Batched vs one-at-a-time KV-cached decoding throughput, LST and the Base SpeechLLM (tiny presets).

``run()`` returns one row per (model, batch size); ``python benchmarks/bench_decode.py [--rounds 5]
[--out docs/benchmarks.md]`` prints a markdown section and, with ``--out``, writes it as section 6
of that file (replacing an older section 6, atomically). ``make bench`` runs it too.

Workload: ``--prompts`` TTS-style prompts ``BOS <t> text <s>`` (4-12 random text ids), greedy
decoding restricted to unit ids, no EOS, ``--new-tokens`` new tokens each, so every case emits the
same number of tokens. Models are random-init (speed does not depend on training). Cases per round:
the prompts one at a time through :func:`~lst_lightning.model.generate.generate`, then through
:func:`~lst_lightning.model.batch_generate.generate_batch` at each batch size; the cases rotate
their order every round (A B, B A, ...) and the speedup is the median over rounds of the ratio
within a round, so machine load that changes during the run hits both sides alike. Throughput is
new tokens per second of wall time, prompt reading included. One thread, CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

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


def prompts(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(4, 13, (1,), generator=g))
        text = torch.randint(0, TEXT, (length,), generator=g).tolist()
        out.append([BOS, TEXT_MARK, *text, SPEECH_MARK])
    return out


def timed(fn) -> tuple[float, list]:  # noqa: ANN001 - any callable
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(
    rounds: int = 5, num_prompts: int = 32, new_tokens: int = 48, batch_sizes=(16, 32)
) -> list[dict]:
    """Interleaved rounds; one row per model and batch size (the one-at-a-time row first)."""
    torch.set_num_threads(1)
    work = prompts(num_prompts)
    options = dict(allowed_ids=UNIT_IDS, eos_id=None)
    rows = []
    for name, model in models().items():
        cases = {
            "one at a time": lambda m=model: [
                generate(m, p, new_tokens, RULE, allowed_ids=UNIT_IDS) for p in work
            ]
        }
        for b in batch_sizes:
            cases[f"batch {b}"] = lambda m=model, b=b: generate_batch(
                m, work, new_tokens, RULE, batch_size=b, **options
            )
        timed(cases["batch 16" if 16 in batch_sizes else "one at a time"])  # warm-up
        times: dict[str, list[float]] = {c: [] for c in cases}
        outputs: dict[str, list[list[int]]] = {}
        names = list(cases)
        for r in range(rounds):
            for c in names if r % 2 == 0 else names[::-1]:
                seconds, out = timed(cases[c])
                times[c].append(seconds)
                outputs[c] = [g.ids for g in out]
        reference = outputs["one at a time"]
        tokens = sum(len(ids) for ids in reference)
        for c in names:
            ratios = [a / s for a, s in zip(times["one at a time"], times[c], strict=True)]
            rows.append(
                dict(
                    model=name,
                    case=c,
                    tokens=tokens,
                    seconds=statistics.median(times[c]),
                    tokens_per_s=tokens / statistics.median(times[c]),
                    speedup=statistics.median(ratios),
                    speedup_range=(min(ratios), max(ratios)),
                    same_ids=outputs[c] == reference,
                )
            )
    return rows


def markdown(rows: list[dict], rounds: int, info: str) -> str:
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_decode.py`: {info}. TTS-style prompts, greedy, unit ids only, "
        f"{rows[0]['tokens']} new tokens per case (prompt reading included), {rounds} interleaved "
        "rounds (case order alternating), random-init tiny presets. Speedup: median over rounds of "
        "(one-at-a-time time / case time) within a round, with the range over rounds.",
        "",
        "| model | decoding | median wall (s) | new tokens / s | speedup (range) | same ids |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lo, hi = r["speedup_range"]
        lines.append(
            f"| {r['model']} | {r['case']} | {r['seconds']:.2f} | {r['tokens_per_s']:.0f} "
            f"| {r['speedup']:.2f}x ({lo:.2f}-{hi:.2f}) | {'yes' if r['same_ids'] else 'NO'} |"
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


def write_section(path: Path, section: str) -> None:
    """Replaces section 6 of ``path`` (or appends it), atomically."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## 6\. .*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section)
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, help="write as section 6 of this markdown file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.prompts < 1 or args.new_tokens < 1:
        parser.error("need --rounds, --prompts and --new-tokens >= 1")
    info = machine()
    sizes = tuple(b for b in (16, 32) if b <= args.prompts) or (args.prompts,)
    rows = run(args.rounds, args.prompts, args.new_tokens, sizes)
    section = markdown(rows, args.rounds, info)
    print(section)
    if args.out:
        write_section(args.out, section)
        print(f"wrote section 6 of {args.out}")


if __name__ == "__main__":
    main()
