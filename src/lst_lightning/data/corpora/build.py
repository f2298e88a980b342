"""Build the generated corpus once: ``python -m lst_lightning.data.corpora.build --out data/generated``.

The corpus is written into a temporary sibling folder and renamed into place, so an interrupted
build leaves nothing half-written behind. One builder at a time (``<out>.lock``): a second
command-line build of the same folder stops naming the first; the datamodule's builders (one per
DDP process) wait for it instead (``wait_for_lock``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lst_lightning.data.corpora.synthetic import CORPUS_FILES, STATS_FILE, generate_corpus
from lst_lightning.data.locking import output_lock
from lst_lightning.data.records import DEFAULT_NUM_UNITS

DEFAULT_UTTERANCES = 3000
DEFAULT_TEXT_DOCS = 6000
"""About 4 hours of generated speech and 6k text documents: a few seconds to build, and with
the default 1/3 interleaved mixture, enough rows for several hundred steps of a tiny model."""


def corpus_is_complete(out_dir: str | Path) -> bool:
    return all((Path(out_dir) / name).is_file() for name in CORPUS_FILES)


def build_generated_corpus(
    out_dir: str | Path,
    seed: int = 0,
    num_utterances: int = DEFAULT_UTTERANCES,
    num_text_docs: int = DEFAULT_TEXT_DOCS,
    force: bool = False,
    num_units: int = DEFAULT_NUM_UNITS,
    wait_for_lock: bool = False,
) -> dict:
    """Build the corpus unless a complete one is already there; return its ``stats.json``
    (``{}`` when a complete corpus has none: it is informational)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, wait=wait_for_lock):
        return _build(out, seed, num_utterances, num_text_docs, force, num_units)


def _read_stats(out: Path) -> dict:
    path = out / STATS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _build(
    out: Path, seed: int, num_utterances: int, num_text_docs: int, force: bool, num_units: int
) -> dict:
    if corpus_is_complete(out) and not force:
        return _read_stats(out)
    if out.exists() and not force and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists but is not a complete generated corpus (it needs {', '.join(CORPUS_FILES)}); "
            "remove it or pass force=True / --force"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
    try:
        stats = generate_corpus(tmp, num_utterances, num_text_docs, seed, num_units)
        os.chmod(tmp, 0o755)
        if force and out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            shutil.rmtree(old)
        try:
            os.replace(tmp, out)
        except OSError:
            if not corpus_is_complete(out):
                raise
            # Another process finished the same build first; keep its corpus.
            stats = _read_stats(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return stats


def format_stats(stats: dict) -> str:
    """A short human-readable summary of ``stats.json``."""
    lines = [
        f"generated corpus: seed {stats['seed']}, text vocab {stats['text_vocab_size']}, "
        f"model vocab {stats['vocab_size']} ({stats['num_units']} units)"
    ]
    for name, s in stats["splits"].items():
        lines.append(
            f"  {name}: {s['utterances']} utterances, {s['words']} words, {s['units']} units "
            f"({s['seconds'] / 3600:.2f} h at {stats['frame_rate_hz']} Hz), "
            f"{s['text_docs']} text documents, {s['tokens']} tokens"
        )
    return "\n".join(lines)


def report_build(
    out: str | Path,
    existed: bool,
    build: Callable[[], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Run a corpus builder for a command line: time it, say whether ``out`` was built or was
    already there (``existed``, decided by the caller's own completeness rule), print the stats
    table ``describe`` makes, and return the stats. Both corpus builders' ``main`` use it."""
    started = time.perf_counter()
    stats = build()
    if existed:
        print(f"{out} already exists")
    else:
        print(f"built {out} in {time.perf_counter() - started:.1f} s")
    if stats:
        print(describe(stats))
    else:
        print(f"({Path(out) / STATS_FILE} is missing: it only records the build's statistics)")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/generated", help="corpus folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--utterances", type=int, default=DEFAULT_UTTERANCES, help="train + valid")
    parser.add_argument("--text-docs", type=int, default=DEFAULT_TEXT_DOCS, help="train + valid")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus exists")
    args = parser.parse_args(argv)
    existed = corpus_is_complete(args.out) and not args.force
    try:
        stats = report_build(
            args.out,
            existed,
            lambda: build_generated_corpus(
                args.out, args.seed, args.utterances, args.text_docs, force=args.force
            ),
            format_stats,
        )
    except FileExistsError as e:  # a foreign folder, or another build running (OutputLocked)
        print(f"generated corpus: {e}", file=sys.stderr)
        return 1
    if existed and stats:
        sizes = {
            k: sum(s[k] for s in stats["splits"].values()) for k in ("utterances", "text_docs")
        }
        wanted = {"utterances": args.utterances, "text_docs": args.text_docs}
        if stats["seed"] != args.seed or sizes != wanted:
            print(
                f"{args.out} exists with other settings (seed {stats['seed']}, {sizes}); "
                "pass --force to rebuild",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
