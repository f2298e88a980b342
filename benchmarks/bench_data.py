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
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from doc_section import replace_section

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


# -- memory and throughput against the corpus size ------------------------------------------------
RELEASE = "LST_LIGHTNING_MAPPED_MIB"
"""The environment variable of the mapped-page budget (:mod:`lst_lightning.data.sources.mapped`)."""
SCALING_SECTION = "## 4b. Memory vs corpus size: Hugging Face sources, packed by loader workers"
"""The heading of the scaling table in ``docs/benchmarks.md`` (replaced in place by a rerun)."""


def vm_hwm_mib(pid: int | str = "self") -> float:
    """Peak resident set size (``VmHWM``) of a process, MiB (shared pages it touched included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def rss_anon_mib(pid: int | str = "self") -> float:
    """Anonymous resident memory now (``RssAnon``), MiB: the process's own heap, without the
    pages of memory-mapped files (which the kernel can drop and re-read)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RssAnon in /proc/{pid}/status")


def build_replicated(corpus_dir: Path, factor: int, out: Path) -> Path:
    """``out/speech`` and ``out/text``: ``save_to_disk`` folders holding the corpus's training
    split ``factor`` times (utterance ids made unique), built from its Arrow cache in Arrow."""
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc

    from lst_lightning.data.sources.cache import cached_arrow

    for kind, name in (("speech", "train.jsonl"), ("text", "text_train.txt")):
        table = datasets.load_from_disk(str(cached_arrow(corpus_dir / name))).data.table
        copies = []
        for k in range(factor):
            if kind == "speech":
                ids = pc.binary_join_element_wise(table.column("file_id"), pa.scalar(f"~{k}"), "")
                copies.append(table.set_column(0, "file_id", ids))
            else:
                copies.append(table)
        datasets.Dataset(pa.concat_tables(copies)).save_to_disk(str(out / kind))
    return out


def scaling_case(corpus_dir: Path, reader: str, folder: Path | None, seconds: float, workers: int):
    """One measurement, in this (fresh) process: the datamodule's training loader over the corpus
    (``reader memory`` / ``arrow``) or over the replicated sources in ``folder``; tokens/s over
    ``seconds`` after the first batch, and the peak RSS of the main process and of each worker."""
    from lst_lightning.data.sources import mapped
    from lst_lightning.lit.datamodule import SpeechTextDataModule

    kwargs: dict = {
        "corpus": {"data_dir": str(corpus_dir), "reader": reader},
        "packing": {"max_patches": 256, "max_tokens": 768},
        "loader": {"batch_size": 8, "num_workers": workers},
    }
    if folder is not None:
        kwargs["sources"] = [
            {"kind": "speech", "path": str(folder / "speech")},
            {"kind": "text", "path": str(folder / "text")},
        ]
    start = time.perf_counter()
    dm = SpeechTextDataModule(**kwargs)
    dm.setup("fit")
    loader = dm.train_dataloader()
    plan_start = time.perf_counter()
    dm._train.epoch_plan()  # what the loader does before starting its workers, each pass
    plan_s = time.perf_counter() - plan_start
    iterator = iter(loader)
    next(iterator)
    ready_s = time.perf_counter() - start
    tokens = batches = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        batch = next(iterator)
        tokens += int((batch.doc_ids >= 0).sum())
        batches += 1
    wall = time.perf_counter() - t0
    pids = _worker_pids()
    return {
        "utterances": len(dm._train.corpus.utterances),
        "texts": len(dm._train.corpus.texts),
        "plan_s": round(plan_s, 2),
        "ready_s": round(ready_s, 2),
        "tokens_per_s": round(tokens / wall),
        "batches": batches,
        "main_mib": round(vm_hwm_mib(), 1),
        "worker_mib": [round(vm_hwm_mib(p), 1) for p in pids],
        "main_anon_mib": round(rss_anon_mib(), 1),
        "worker_anon_mib": [round(rss_anon_mib(p), 1) for p in pids],
        "page_budget_mib": mapped.budget_mib,
    }


def _worker_pids() -> list[int]:
    """The DataLoader worker processes of this process (its live children)."""
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":  # a worker that has exited: gone
                out.append(int(entry.name))
    return sorted(out)


def run_scaling(
    corpus_dir: Path,
    factors: tuple[int, ...] = (1, 10, 100),
    seconds: float = 8.0,
    workers: int = 2,
    rounds: int = 2,
) -> list[dict]:
    """Each case in a fresh process, rounds interleaved (memory 1x, Arrow 1x, sources 1x, 10x,
    100x, the largest again without releasing mapped pages, then again), so load that drifts hits
    every size alike; replicated corpora in a temporary folder, removed afterwards. Before the
    rounds each source case runs once untimed: the first run over a source measures it for the
    epoch plan (:mod:`lst_lightning.data.stream.lengths`), once; its time is reported apart."""
    from lst_lightning.data.corpora.synthetic import CORPUS_FILES
    from lst_lightning.data.sources.cache import cached_arrow

    work = Path(tempfile.mkdtemp(prefix="bench_sources."))
    try:
        source, corpus_dir = corpus_dir, work / "corpus"  # the Arrow cache goes there, not beside
        corpus_dir.mkdir()  # the shared corpus
        for name in CORPUS_FILES:
            shutil.copy2(source / name, corpus_dir / name)
        cached_arrow(corpus_dir / "train.jsonl")
        cached_arrow(corpus_dir / "text_train.txt")
        cases: list[tuple[str, str, Path | None, int, dict]] = [
            ("JSONL in memory (reader memory)", "memory", None, 1, {})
        ]
        cases.append(("JSONL as cached Arrow (reader arrow)", "arrow", None, 1, {}))
        for f in factors:
            t = time.perf_counter()
            folder = build_replicated(corpus_dir, f, work / f"x{f}")
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            cases.append((f"HF sources {f}x", "memory", folder, f, {}))
            print(f"built {f}x: {size / 2**20:.0f} MiB in {time.perf_counter() - t:.1f} s")
        largest = cases[-1]
        cases.append(
            (f"{largest[0]}, pages not released", "memory", largest[2], largest[3], {RELEASE: "0"})
        )

        def one(reader: str, folder: Path | None, env: dict, budget: float) -> dict:
            cmd = [sys.executable, __file__, "--scaling-case", reader, "--corpus", str(corpus_dir)]
            cmd += ["--seconds", str(budget), "--workers", str(workers)]
            if folder is not None:
                cmd += ["--folder", str(folder)]
            done = subprocess.run(
                cmd, capture_output=True, text=True, check=False, env={**os.environ, **env}
            )
            if done.returncode:
                raise RuntimeError(f"{cmd} failed:\n{done.stderr[-3000:]}")
            return json.loads(done.stdout.strip().splitlines()[-1])

        first_runs: dict[str, float] = {}
        for name, reader, folder, _, env in cases:
            if (folder is not None or reader == "arrow") and not env:  # measured once, cached
                first_runs[name] = one(reader, folder, env, 0.5)["plan_s"]
                print(f"{name}: first run's plan (measuring included) {first_runs[name]} s")
        results: dict[str, list[dict]] = {name: [] for name, *_ in cases}
        for _ in range(rounds):
            for name, reader, folder, factor, env in cases:
                row = one(reader, folder, env, seconds)
                results[name].append({**row, "factor": factor})
                print(name, row)
        return [
            {"case": name, "runs": runs, "first_plan_s": first_runs.get(name)}
            for name, runs in results.items()
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scaling_markdown(rows: list[dict], corpus_dir: Path, seconds: float, workers: int) -> str:
    load = os.getloadavg()
    head = [
        SCALING_SECTION,
        "",
        f"`python benchmarks/bench_data.py --scaling` on `{corpus_dir}` (train split replicated "
        f"1x/10x/100x into `save_to_disk` folders, utterance ids made unique), {workers} loader "
        f"workers, batches of 8 rows (256 positions / 768 tokens), {seconds:g} s per run after the "
        f"first batch, every case in a fresh process, {len(rows[0]['runs'])} rounds interleaved. "
        f"Machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs share the machine). Peak RSS "
        "is `VmHWM` (shared pages a process touched count in full, memory-mapped Arrow pages "
        "included); anonymous RSS (`RssAnon`) leaves out the file pages, which the kernel can drop "
        "and re-read; each process releases the mapped Arrow pages it holds beyond a budget "
        f"({RELEASE}, 32 MiB; the last row turns that off); `vs 1x` is the median over rounds of "
        "the ratio to the same round's `HF sources 1x` run; the plan is the epoch's mixture walk, "
        "run in the main process before the workers start (each pass) over the sources' cached "
        "length profiles; the first run over a source measures it for them, once (last column).",
        "",
        "| case | utterances | text docs | peak RSS per worker (MiB) | vs 1x | anonymous RSS per "
        "worker at the end (MiB) | main process peak / anonymous (MiB) | tokens / s (all workers) "
        "| vs 1x | epoch plan (s) | first run: measuring + plan (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def median(values):
        return float(np.median(values))

    base = next(r for r in rows if r["case"].startswith("HF sources 1x"))
    base_w = [max(run["worker_mib"]) for run in base["runs"]]
    base_t = [run["tokens_per_s"] for run in base["runs"]]
    body = []
    for r in rows:
        runs = r["runs"]
        worker = [max(run["worker_mib"]) for run in runs]
        tps = [run["tokens_per_s"] for run in runs]
        rel_w = median([w / b for w, b in zip(worker, base_w, strict=True)])
        rel_t = median([t / b for t, b in zip(tps, base_t, strict=True)])
        body.append(
            f"| {r['case']} | {runs[0]['utterances']} | {runs[0]['texts']} | "
            f"{median(worker):.0f} ({min(worker):.0f}-{max(worker):.0f}) | {rel_w:.2f}x | "
            f"{median([max(run['worker_anon_mib']) for run in runs]):.0f} | "
            f"{median([run['main_mib'] for run in runs]):.0f} / "
            f"{median([run['main_anon_mib'] for run in runs]):.0f} | {median(tps):,.0f} "
            f"({min(tps):,}-{max(tps):,}) | {rel_t:.2f}x | "
            f"{median([run['plan_s'] for run in runs]):.1f} | "
            f"{'' if r.get('first_plan_s') is None else format(r['first_plan_s'], '.1f')} |"
        )
    return "\n".join(head + body) + "\n"


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
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="memory and tokens/s against the corpus size (1x/10x/100x HF sources, loader "
        "workers); writes its section of --doc",
    )
    parser.add_argument("--factors", default="1,10,100", help="--scaling: corpus sizes")
    parser.add_argument("--workers", type=int, default=2, help="--scaling: loader workers")
    parser.add_argument("--rounds", type=int, default=2, help="--scaling: interleaved rounds")
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--scaling-case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    corpus = Path(args.corpus) if args.corpus else default_corpus()
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    if args.scaling_case:
        row = scaling_case(corpus, args.scaling_case, args.folder, args.seconds, args.workers)
        print(json.dumps(row))
        return 0
    if args.scaling:
        factors = tuple(int(f) for f in args.factors.split(","))
        rows = run_scaling(corpus, factors, args.seconds, args.workers, args.rounds)
        section = scaling_markdown(rows, corpus, args.seconds, args.workers)  # names the source
        print(section)
        replace_section(args.doc, SCALING_SECTION, section, before="## 5. ")
        return 0
    print(f"corpus: {corpus} (train split), one process = one DataLoader worker")
    print(markdown(run(corpus, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
