"""Resuming a streamed text source: reading through the used documents vs the stream's state.

``python benchmarks/bench_stream_resume.py [--docs 2100000] [--rounds 5]`` builds a local text
dataset of short documents (a ``save_to_disk`` folder of 8 shards, read as one stream, and
folders of 8 parquet and 8 JSON-lines files), opens shard 0 of 2 of each (``split_dataset_by_node``: every 2nd
example of the ``save_to_disk`` stream, whole files of the parquet one) and times how long
:meth:`~lst_lightning.data.sources.streamed.TextStream.documents` takes to hand out the first
document after ``taken`` = 1k, 10k, 100k, 1M used ones, three ways:

- ``skip``: what a resume did before (``IterableDataset.skip(taken)``, then the first read;
  on an every-n-th split it lands on the wrong document: the table says so);
- ``read through``: a position without a saved state (an older checkpoint's fallback);
- ``state``: the position's saved ``IterableDataset.state_dict()`` (the default now).

The cases run interleaved (round after round, each case once, in a rotating order) in this
process; the table gives the median over rounds and the median per-round speedup over ``skip``.
Every case is checked to resume at the same document. The section ``## 7. Resuming a streamed
source`` of ``docs/benchmarks.md`` is replaced in place (``--doc`` names another file).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from doc_section import replace_section

SECTION = "## 7. Resuming a streamed source: skip vs the stream's state"
"""The heading of this benchmark's section in ``docs/benchmarks.md``."""
SHARDS = 8
"""Shards / files of the benchmark dataset."""
TAKEN = (1_000, 10_000, 100_000, 1_000_000)
"""Used documents of the resumed shard."""


def build(folder: Path, docs: int) -> dict[str, Path]:
    """The benchmark's dataset as a ``save_to_disk`` folder and as parquet files."""
    import datasets

    texts = [f"document {i}: " + "lorem ipsum dolor sit amet " * (1 + i % 5) for i in range(docs)]
    ds = datasets.Dataset.from_dict({"text": texts})
    disk, parquet = folder / "disk", folder / "parquet"
    ds.save_to_disk(str(disk), num_shards=SHARDS)
    jsonl = folder / "jsonl"
    parquet.mkdir()
    jsonl.mkdir()
    for k in range(SHARDS):
        part = ds.shard(SHARDS, k, contiguous=True)
        part.to_parquet(str(parquet / f"part-{k:02d}.parquet"))
        part.to_json(str(jsonl / f"part-{k:02d}.jsonl"))
    return {
        f"save_to_disk ({SHARDS} shards)": disk,
        f"parquet ({SHARDS} files)": parquet,
        f"JSON lines ({SHARDS} files)": jsonl,
    }


def resume_by_skip(stream, taken: int) -> str:
    """The first document after ``taken`` as resumes did before: ``skip`` then read."""
    from lst_lightning.data.sources.streamed import READ_BATCH

    ds = stream._open(0, 2).skip(taken)
    return next(iter(ds.iter(batch_size=READ_BATCH)))[stream.text_column][0]


def timed(fn) -> tuple[float, str]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(docs: int, rounds: int, folder: Path) -> list[dict]:
    from lst_lightning.data.sources.streamed import StreamPosition, TextStream

    rows = []
    for label, path in build(folder, docs).items():
        stream = TextStream(path)
        for taken in TAKEN:
            reader = stream.documents(0, 2, StreamPosition())
            position, _ = next(itertools.islice(reader, taken - 1, None))
            expected = next(reader)[1]
            old = StreamPosition(position.lap, position.taken)  # no state: the fallback

            def first(start, s=stream):
                return lambda: next(s.documents(0, 2, start))[1]

            cases = {
                "skip": lambda t=taken, s=stream: resume_by_skip(s, t),
                "read through": first(old),
                "state": first(position),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            right = dict.fromkeys(cases, True)
            names = list(cases)
            for r in range(rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    seconds, text = timed(cases[name])
                    if text != expected and name != "skip":
                        raise AssertionError(f"{label}, taken {taken}, {name}: wrong document")
                    right[name] = right[name] and text == expected
                    times[name].append(seconds)
            for name in names:
                speedup = [a / b for a, b in zip(times["skip"], times[name], strict=True)]
                rows.append(
                    {
                        "source": label,
                        "taken": taken,
                        "case": name,
                        "median_s": statistics.median(times[name]),
                        "min_s": min(times[name]),
                        "max_s": max(times[name]),
                        "speedup": statistics.median(speedup),
                        "right": right[name],
                    }
                )
    return rows


def markdown(rows: list[dict], docs: int, rounds: int, load: tuple, load_end: tuple) -> str:
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_stream_resume.py`: {docs:,} short documents (30-150 "
        f"characters) as a `save_to_disk` folder of {SHARDS} shards (streamed as one, so "
        f"`split_dataset_by_node` takes every 2nd example) and as {SHARDS} parquet and {SHARDS} "
        "JSON-lines files "
        "(whole files per shard); shard 0 of 2 resumed after `taken` used documents; time to "
        "the first document after them. `skip`: `IterableDataset.skip(taken)` (how a resume "
        "read before); `read through`: a position without a saved state (older checkpoints); "
        "`state`: the position's saved `IterableDataset.state_dict()`. "
        f"{rounds} interleaved rounds in one process, median (min-max); speedup: median "
        f"per-round ratio to `skip`. Machine: {platform.machine()} {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {platform.python_version()}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the start, {load_end[0]:.1f} / {load_end[1]:.1f} / "
        f"{load_end[2]:.1f} at the end (other jobs share the machine). `right document`: "
        "whether the resume hands out the document the uninterrupted read does; `skip` on an "
        "every-n-th split skips `taken` examples of the *whole* stream (`datasets` applies "
        "`skip` before the split), so it resumed too early there (the bug this replaced).",
        "",
        "| source | taken | resume | median (s) | min-max (s) | speedup vs skip | right document |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['source']} | {r['taken']:,} | {r['case']} | {r['median_s']:.4f} | "
            f"{r['min_s']:.4f}-{r['max_s']:.4f} | {r['speedup']:.1f}x | "
            f"{'yes' if r['right'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2_100_000, help="documents in the dataset")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    if args.docs < 2 * max(TAKEN) + 2:
        parser.error(f"--docs must be at least {2 * max(TAKEN) + 2} (shard 0 of 2 is resumed)")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_stream_resume_") as tmp:
        rows = run(args.docs, args.rounds, Path(tmp))
    section = markdown(rows, args.docs, args.rounds, load, os.getloadavg())
    print(section)
    replace_section(args.doc, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
