"""Data pipeline throughput: tokens per second of one worker, for interleave + patch + pack.

``run(corpus_dir)`` returns one row per configuration; ``python benchmarks/bench_data.py
[--corpus data/embedded] [--seconds 10]`` prints a markdown table. Each configuration iterates a
:class:`~lst_lightning.data.stream.dataset.PackedDocumentDataset` over the corpus's training split in this
process, which is exactly what one DataLoader worker does (documents are sharded across workers,
so N workers give about N times this, cores permitting). Reading and parsing the corpus happen
before the clock starts; the timed part draws the epoch plan, builds documents (tokenising text
and interleaving), computes patch lengths and packs rows, until the epoch ends or the time budget
runs out. Without ``--corpus`` it uses ``data/embedded``, else ``data/generated``, and
builds the generated corpus in a temporary folder when neither exists.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lst_lightning.data.corpora.build import build_generated_corpus, corpus_is_complete
from lst_lightning.data.stream.dataset import PackedDocumentDataset, load_corpus
from lst_lightning.data.stream.patching import PatchingSchedule
from lst_lightning.data.vocab import TokenSpace

CONFIGS: tuple[tuple[str, dict], ...] = (
    (
        "LST, static patches p=4 (256 positions / 768 tokens)",
        dict(
            packing="patches",
            patching=PatchingSchedule("static", 4),
            max_patches=256,
            max_tokens=768,
        ),
    ),
    (
        "LST, aligned patches (256 positions / 768 tokens)",
        dict(
            packing="patches", patching=PatchingSchedule("aligned"), max_patches=256, max_tokens=768
        ),
    ),
    (
        "LST, static p=4, every document interleaved speech-text",
        dict(
            packing="patches",
            patching=PatchingSchedule("static", 4),
            max_patches=256,
            max_tokens=768,
            interleaved_fraction=1.0,
        ),
    ),
    (
        "LST, paper row size, static p=4 (4096 positions / 12288 tokens)",
        dict(
            packing="patches",
            patching=PatchingSchedule("static", 4),
            max_patches=4096,
            max_tokens=12288,
        ),
    ),
    (
        "Base SpeechLLM, token rows (256 tokens)",
        dict(packing="tokens", max_patches=256, max_tokens=256),
    ),
)


def measure(dataset: PackedDocumentDataset, seconds: float) -> dict:
    """Iterate one epoch (or ``seconds``) of packed rows and count what came out."""
    rows = tokens = positions = 0
    start = time.perf_counter()
    for row in dataset:
        rows += 1
        tokens += row.num_tokens
        positions += int((row.patch_lengths > 0).sum())
        if time.perf_counter() - start > seconds:
            break
    wall = time.perf_counter() - start
    return {
        "rows": rows,
        "tokens": tokens,
        "global_positions": positions,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall),
        "rows_per_s": round(rows / wall, 1),
    }


def run(corpus_dir: str | Path, seconds: float = 10.0, seed: int = 0) -> list[dict]:
    """Throughput of one worker for each configuration in :data:`CONFIGS`."""
    corpus_dir = Path(corpus_dir)
    corpus = load_corpus(corpus_dir, "train")
    space = TokenSpace(corpus_dir / "tokenizer.model")
    results = []
    for name, kwargs in CONFIGS:
        dataset = PackedDocumentDataset(corpus, space, seed=seed, **kwargs)
        results.append({"configuration": name, **measure(dataset, seconds)})
    return results


def markdown(rows: list[dict]) -> str:
    head = (
        "| configuration | rows | tokens | global positions | wall (s) | tokens / s | rows / s |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    body = [
        f"| {r['configuration']} | {r['rows']} | {r['tokens']} | {r['global_positions']} | "
        f"{r['wall_s']} | {r['tokens_per_s']} | {r['rows_per_s']} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def default_corpus() -> Path:
    for candidate in (Path("data/embedded"), Path("data/generated")):
        if corpus_is_complete(candidate):
            return candidate
    out = Path(tempfile.mkdtemp(prefix="bench_data.")) / "generated"
    build_generated_corpus(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=None, help="corpus folder (default: see above)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time budget per configuration")
    args = parser.parse_args(argv)
    corpus = Path(args.corpus) if args.corpus else default_corpus()
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    print(f"corpus: {corpus} (train split), one process = one DataLoader worker")
    print(markdown(run(corpus, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
