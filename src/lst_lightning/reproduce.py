"""The paper's main comparison at tiny scale: ``python -m lst_lightning.reproduce`` (``make reproduce``).

Trains the six systems of the paper's main table (Base SpeechLLM, BPE SpeechLLM, LST static, aligned,
mixed, curriculum) with their ``experiments/tiny_*.yaml`` configs, one after the other, evaluates each
final checkpoint on the embedded benchmark sets, and writes one table (``docs/reproduction.md`` by
default) with the held-out losses, the compute and data each system used, and the headline
(per-character) accuracies. The systems share steps and global positions per step: the paper's
"compute-controlled" setting (DESIGN 5), which is **equal steps, not equal FLOPs** at this size (the
local encoder and decoder are a large share of a tiny LST, which then spends ~1.36x the baseline's
training FLOPs). The table says so, and states the FLOPs each system spent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lst_lightning.runs import next_version

SYSTEMS = {
    "tiny_baseline": "Base SpeechLLM",
    "tiny_bpe_baseline": "BPE SpeechLLM",
    "tiny_lst_static": "LST static",
    "tiny_lst_aligned": "LST aligned",
    "tiny_lst_mixed": "LST mixed",
    "tiny_lst_curriculum": "LST curriculum",
}
"""Experiment name -> the row of the paper's main table it reproduces."""
SCALARS = ("val/loss", "val/loss_speech", "val/loss_text", "train/flops_seen", "train/tokens_seen")


def last_scalars(run_dir: Path) -> dict[str, float]:
    """The last logged value of each of :data:`SCALARS` in a run's TensorBoard files."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    return {tag: acc.Scalars(tag)[-1].value for tag in SCALARS if tag in tags}


def run_system(exp: str, root: Path, runs: Path, extra: list[str]) -> Path:
    """Train one experiment into a new ``runs/<exp>/run[-k]`` and return its last checkpoint."""
    version = next_version(runs / exp, "run")
    cmd = [
        sys.executable,
        "-m",
        "lst_lightning",
        "fit",
        "--config",
        str(root / "experiments" / f"{exp}.yaml"),
        f"--trainer.logger.init_args.save_dir={runs}",
        f"--trainer.logger.init_args.version={version}",
        "--trainer.enable_progress_bar=false",
        *extra,
    ]
    subprocess.run(cmd, check=True)
    return runs / exp / version / "checkpoints" / "last.ckpt"


def evaluate_system(ckpt: Path, eval_args: list[str]) -> dict:
    out = ckpt.parent.parent / "eval" / "reproduce"
    cmd = [sys.executable, "-m", "lst_lightning.eval", "--ckpt", str(ckpt), "--out", str(out)]
    subprocess.run([*cmd, *eval_args], check=True)
    return json.loads((out / "results.json").read_text())


def table(rows: list[dict]) -> str:
    """Markdown: one row per system; accuracy columns are ``benchmark direction`` pairs."""
    columns: list[tuple[str, str]] = []
    for row in rows:
        for r in row["eval"]["results"]:
            key = (r["benchmark"], r["direction"])
            if key not in columns:
                columns.append(key)
    head = ["system", "`EXP`", "val loss", "speech", "text", "train FLOPs", "tokens"]
    head += [f"{b} {d}" for b, d in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        s = row["scalars"]
        acc = {
            (r["benchmark"], r["direction"]): r["accuracy"]["per_char"]
            for r in row["eval"]["results"]
        }
        cells = [
            row["system"],
            f"`{row['exp']}`",
            f"{s.get('val/loss', float('nan')):.3f}",
            f"{s.get('val/loss_speech', float('nan')):.3f}",
            f"{s.get('val/loss_text', float('nan')):.3f}",
            f"{s.get('train/flops_seen', float('nan')):.3g}",
            f"{s.get('train/tokens_seen', float('nan')):.3g}",
        ]
        cells += [f"{100 * acc[key]:.1f}" if key in acc else "" for key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lst-lightning reproduce", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--runs", default="runs/reproduce", help="where the runs go")
    parser.add_argument("--out", default="docs/reproduction.md", help="the table")
    parser.add_argument("--root", default=".", help="repository root (holds experiments/)")
    parser.add_argument(
        "--fit-args",
        default="",
        help="extra `lst-lightning fit` options, e.g. --trainer.max_steps=50",
    )
    parser.add_argument(
        "--eval-args", default="", help="extra `python -m lst_lightning.eval` options"
    )
    args = parser.parse_args(argv)
    root, runs = Path(args.root).resolve(), Path(args.runs).resolve()
    start = time.perf_counter()
    rows = []
    for exp in args.systems:
        t0 = time.perf_counter()
        ckpt = run_system(exp, root, runs, args.fit_args.split())
        rows.append(
            {
                "system": SYSTEMS[exp],
                "exp": exp,
                "scalars": last_scalars(ckpt.parent.parent),
                "eval": evaluate_system(ckpt, args.eval_args.split()),
            }
        )
        print(f"{exp}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    report = "\n".join(
        [
            "# Reproduction: the paper's main comparison at tiny scale",
            "",
            "Written by `make reproduce` (`python -m lst_lightning.reproduce`); rerun it to refresh.",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
            f"{os.cpu_count()} logical cores, {time.perf_counter() - start:.0f} s in all.",
            f"Extra fit options: `{args.fit_args or 'none'}`.",
            "",
            "**Comparison at equal steps, one seed.** Each system trains with its",
            "`experiments/<EXP>.yaml` for the same steps with the same global positions per step (the",
            "paper's 'compute-controlled' setting), which at this tiny size is *not* equal FLOPs: see",
            "the `train FLOPs` column, and compare systems at equal FLOPs before drawing conclusions.",
            "Each is trained on the embedded corpus, then scored on",
            "the embedded benchmark sets (spoken items in the held-out voice). Losses are the last",
            "validation losses (nats per token; the BPE SpeechLLM's speech tokens are unit-BPE pieces,",
            "so its speech loss is per piece). Accuracies (%) use the headline rule, log-likelihood",
            "per character of the ending; chance is 50 for 2-way sets and 25 for `hellaswag`; with",
            "100-200 items a 2-way accuracy has a standard error of 3.5-5 points.",
            "",
            table(rows),
            "",
        ]
    )
    write_atomic(Path(args.out), report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
