"""``lst-lightning eval --ckpt PATH [--sets ...] [--data-dir ...] [--out DIR]`` (or ``python -m lst_lightning.eval``).

Loads a checkpoint written by ``lst-lightning fit`` (weights-only: no code is unpickled), with the
tokenizers it carries, finds the benchmark sets in the corpus it was trained on (the absolute
folder the checkpoint records, unless ``--data-dir`` or ``--sets-dir`` is given; they are built
there from the corpus if missing, but a missing corpus is an error, never rebuilt), scores every
set in every direction it supports, prints the table, and writes ``results.json``,
``results.md`` and TensorBoard events at the checkpoint's step into a new folder
``<run>/eval/step_<N>/`` beside the training run (whose own files are never touched).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lst_lightning.data.corpora.build import corpus_is_complete
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.build_sets import ALL_SETS, build_sets, make_renderer, sets_are_built
from lst_lightning.eval.report import log_tensorboard, markdown_table, write_results
from lst_lightning.eval.runner import evaluate
from lst_lightning.eval.tasks import DIRECTIONS, load_benchmarks
from lst_lightning.runs import record_folder


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What evaluation and sampling need from a checkpoint."""

    module: torch.nn.Module
    space: TokenSpace
    """The token space the model was trained with (text BPE, and the unit BPE for the BPE
    baseline), from the tokenizers embedded in the checkpoint."""
    data_dir: Path | None
    """The corpus it was trained on (``--data-dir`` when given), which may not exist here."""
    patch_size: int | None
    """Static patch size for LST; ``None`` for token-level baselines."""
    num_units: int
    step: int
    run_dir: Path | None
    """``<run>`` when the checkpoint is ``<run>/checkpoints/x.ckpt`` next to the run's logs."""


def load_checkpoint(path: str | Path, data_dir: str | Path | None = None) -> LoadedCheckpoint:
    """The module and token space of a checkpoint, read weights-only; ``data_dir`` overrides the
    recorded corpus (needed for the token space only by checkpoints older than embedded
    tokenizers)."""
    from lst_lightning.hub.checkpoint import KitCheckpoint
    from lst_lightning.lit.module import SpeechTextLM

    ckpt = KitCheckpoint.load(path, data_dir)
    module = SpeechTextLM(network=ckpt.network)
    module.net.load_state_dict(ckpt.weights)
    module.on_load_checkpoint(ckpt.raw)
    return LoadedCheckpoint(
        module=module.eval(),
        space=ckpt.space,
        data_dir=ckpt.data_dir,
        patch_size=ckpt.eval_patch_size,
        num_units=ckpt.space.num_units,
        step=ckpt.step,
        run_dir=ckpt.run_dir,
    )


def find_sets(ckpt: LoadedCheckpoint, sets_dir: str | None, sets: list[str] | None) -> Path:
    """The benchmark folder: ``--sets-dir``, else ``<corpus>/eval`` (built from the corpus when
    missing); an error naming what is missing when neither exists."""
    if sets_dir is not None:
        folder = Path(sets_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"--sets-dir {folder} does not exist")
        return folder
    corpus = ckpt.data_dir
    if corpus is None:
        raise FileNotFoundError("the checkpoint records no corpus: pass --sets-dir or --data-dir")
    folder = corpus / "eval"
    if sets_are_built(folder, sets or ALL_SETS):
        return folder
    if not corpus_is_complete(corpus):
        raise FileNotFoundError(
            f"no benchmark sets at {folder} and no corpus at {corpus} to build them from (the "
            "checkpoint was trained on it): pass --sets-dir with built sets or --data-dir with "
            "the corpus (nothing is rebuilt)"
        )
    print(f"building the embedded benchmark sets in {folder}", flush=True)
    build_sets(corpus, folder, make_renderer(corpus))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lst-lightning eval", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by lst-lightning fit")
    parser.add_argument(
        "--sets", nargs="+", default=None, help=f"default: all ({', '.join(ALL_SETS)})"
    )
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=DIRECTIONS)
    parser.add_argument(
        "--data-dir", default=None, help="corpus folder (default: the one the checkpoint records)"
    )
    parser.add_argument("--sets-dir", default=None, help="benchmark folder (default: <data>/eval)")
    parser.add_argument("--out", default=None, help="default: a new <run>/eval/step_<N>")
    parser.add_argument("--limit", type=int, default=None, help="first N items of each set")
    parser.add_argument("--max-tokens", type=int, default=1024, help="tokens per packed row")
    parser.add_argument("--rows", type=int, default=8, help="rows per batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-tensorboard", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        ckpt = load_checkpoint(args.ckpt, args.data_dir)
        sets_dir = find_sets(ckpt, args.sets_dir, args.sets)
        benchmarks = load_benchmarks(sets_dir, args.sets, ckpt.num_units)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"lst-lightning eval: {e}", file=sys.stderr)
        return 2
    space = ckpt.space
    net = ckpt.module.net.to(args.device)
    kind = f"LST, static patches p={ckpt.patch_size}" if ckpt.patch_size else "token-level"
    print(f"evaluating {args.ckpt} (step {ckpt.step}, {kind}) on {sets_dir}", flush=True)
    benchmarks = [b.subset(args.limit) for b in benchmarks]
    results = evaluate(
        net,
        benchmarks,
        space,
        ckpt.patch_size,
        args.directions,
        max_tokens=args.max_tokens,
        max_rows=args.rows,
        device=args.device,
        log=True,
    )
    base = ckpt.run_dir or Path(args.ckpt).parent
    out = Path(args.out) if args.out else record_folder(base, "eval", ckpt.step)
    seconds = time.perf_counter() - start
    json_path, md_path = write_results(
        out,
        results,
        checkpoint=str(args.ckpt),
        step=ckpt.step,
        patch_size=ckpt.patch_size,
        sets_dir=str(sets_dir),
        seconds=round(seconds, 1),
    )
    if not args.no_tensorboard:
        log_tensorboard(out, results, ckpt.step)
    print()
    print(markdown_table(results))
    print(f"wrote {json_path} and {md_path} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
