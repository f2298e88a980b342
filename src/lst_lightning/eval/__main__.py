"""``python -m lst_lightning.eval --ckpt PATH [--sets ...] [--data-dir ...] [--out DIR]``.

Loads a checkpoint written by ``lst-lightning fit``, finds the corpus it was trained on (from the
checkpoint's datamodule hyperparameters, unless ``--data-dir`` is given), builds the embedded
benchmark sets there if they are missing, scores every set in every direction it supports, prints
the table, writes ``results.json`` and ``results.md`` and logs the accuracies to TensorBoard (into
the run's own log folder when the checkpoint sits in ``<run>/checkpoints/``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lst_lightning.data.options import grouped_hparams
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.build_sets import ALL_SETS, build_sets, make_renderer, sets_are_built
from lst_lightning.eval.report import log_tensorboard, markdown_table, write_results
from lst_lightning.eval.runner import evaluate
from lst_lightning.eval.tasks import DIRECTIONS, load_benchmarks

DEFAULT_DATA_DIR = "data/embedded"


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What evaluation needs from a checkpoint."""

    module: torch.nn.Module
    space: TokenSpace
    """The data's token space (text BPE, and the unit BPE for the BPE baseline)."""
    data_dir: Path
    patch_size: int | None
    """Static patch size for LST; ``None`` for token-level baselines."""
    num_units: int
    step: int
    run_dir: Path | None
    """``<run>`` when the checkpoint is ``<run>/checkpoints/x.ckpt`` next to the run's logs."""


def load_checkpoint(path: str | Path, data_dir: str | Path | None = None) -> LoadedCheckpoint:
    """The module, and the token space rebuilt by the datamodule from its saved hyperparameters."""
    from lst_lightning.lit.datamodule import SpeechTextDataModule
    from lst_lightning.lit.module import load_module

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    raw = torch.load(path, map_location="cpu", weights_only=False)
    data_hp = grouped_hparams(raw.get("datamodule_hyper_parameters") or {})
    corpus = data_hp.setdefault("corpus", {})
    if data_dir is not None or "data_dir" not in corpus:
        corpus["data_dir"] = str(data_dir or DEFAULT_DATA_DIR)
    datamodule = SpeechTextDataModule(**data_hp)
    # Checkpoints hold config objects, which torch's weights-only unpickler refuses; load only
    # checkpoints you trust, as with any pickle.
    module = load_module(str(path))
    patch_size = datamodule.eval_patch_size(module.is_lst)
    return LoadedCheckpoint(
        module=module,
        space=datamodule.token_space,
        data_dir=Path(datamodule.data_dir),
        patch_size=patch_size,
        num_units=datamodule.num_units,
        step=int(raw.get("global_step", 0)),
        run_dir=path.parent.parent if path.parent.name == "checkpoints" else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by lst-lightning fit")
    parser.add_argument(
        "--sets", nargs="+", default=None, help=f"default: all ({', '.join(ALL_SETS)})"
    )
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=DIRECTIONS)
    parser.add_argument(
        "--data-dir", default=None, help="corpus folder (default: the checkpoint's)"
    )
    parser.add_argument("--sets-dir", default=None, help="benchmark folder (default: <data>/eval)")
    parser.add_argument("--out", default=None, help="default: <run>/eval/step_<N>")
    parser.add_argument("--limit", type=int, default=None, help="first N items of each set")
    parser.add_argument("--max-tokens", type=int, default=1024, help="tokens per packed row")
    parser.add_argument("--rows", type=int, default=8, help="rows per batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-tensorboard", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        ckpt = load_checkpoint(args.ckpt, args.data_dir)
        sets_dir = Path(args.sets_dir or ckpt.data_dir / "eval")
        if args.sets_dir is None and not sets_are_built(sets_dir, args.sets or ALL_SETS):
            print(f"building the embedded benchmark sets in {sets_dir}", flush=True)
            build_sets(ckpt.data_dir, sets_dir, make_renderer(ckpt.data_dir))
        benchmarks = load_benchmarks(sets_dir, args.sets, ckpt.num_units)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    space = ckpt.space
    net = ckpt.module.net.to(args.device)
    if space.vocab_size != ckpt.module.network_config.vocab_size:
        print(
            f"error: {ckpt.data_dir} has {space.vocab_size} token ids but the model has "
            f"{ckpt.module.network_config.vocab_size}: wrong --data-dir?",
            file=sys.stderr,
        )
        return 2
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
    out = (
        Path(args.out)
        if args.out
        else (ckpt.run_dir or Path(args.ckpt).parent) / "eval" / f"step_{ckpt.step}"
    )
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
        log_tensorboard(ckpt.run_dir or out, results, ckpt.step)
    print()
    print(markdown_table(results))
    print(f"wrote {json_path} and {md_path} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
