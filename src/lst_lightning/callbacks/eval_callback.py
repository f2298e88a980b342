"""Zero-shot benchmark accuracy during training (a subset, every N steps) and at test time.

Add it to an experiment's ``trainer.callbacks``::

    trainer:
      callbacks:
        - class_path: lst_lightning.callbacks.eval_callback.BenchmarkEvalCallback
          init_args: {every_n_steps: 100, val_limit: 32}

During ``fit`` it scores the first ``val_limit`` items of every embedded set at the end of each
validation run that falls ``every_n_steps`` after the last one, so TensorBoard shows speech and text
accuracy over training (``eval/<set>/<s2s|t2t|s2t|t2s>/<rule>``). During ``lst-lightning test`` it
scores the full sets, logs them the same way and writes ``results.json`` / ``results.md`` into
the test's log folder (``<run>/test/step_<N>/`` for a checkpoint tested through the CLI). Sets, token space and patch size come from the attached
:class:`~lst_lightning.lit.datamodule.SpeechTextDataModule`; LST is scored with static patches.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from ..eval.build_sets import ALL_SETS, build_sets, make_renderer, sets_are_built
from ..eval.report import markdown_table, scalar_logs, write_results
from ..eval.runner import EvalResult, evaluate
from ..eval.tasks import DIRECTIONS, Benchmark, load_benchmarks


class BenchmarkEvalCallback(Callback):
    """Runs the benchmark evaluation inside a Lightning run (see the module docstring)."""

    def __init__(
        self,
        sets: list[str] | None = None,
        sets_dir: str | None = None,
        directions: list[str] | None = None,
        every_n_steps: int = 0,
        val_limit: int | None = 32,
        test_limit: int | None = None,
        max_tokens: int = 1024,
        max_rows: int = 8,
    ) -> None:
        """
        Args:
            sets: benchmark names (default: every set in the folder).
            sets_dir: benchmark folder (default: ``<data_dir>/eval``, built there if missing).
            directions: any of ``S->S``, ``T->T``, ``S->T``, ``T->S`` (default: all four).
            every_n_steps: during fit, evaluate at the first validation at least this many steps
                after the previous evaluation; 0 turns the training-time evaluation off.
            val_limit: items per set during fit (the first ones; sets are in random order).
            test_limit: items per set at test time (default: all).
            max_tokens: tokens per packed scoring row.
            max_rows: rows per scoring batch.
        """
        super().__init__()
        directions = list(directions or DIRECTIONS)
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad:
            raise ValueError(f"unknown direction {bad}; choose from {', '.join(DIRECTIONS)}")
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0, got {every_n_steps}")
        self.sets = sets
        self.sets_dir = sets_dir
        self.directions = directions
        self.every_n_steps = every_n_steps
        self.val_limit = val_limit
        self.test_limit = test_limit
        self.max_tokens = max_tokens
        self.max_rows = max_rows
        self._benchmarks: list[Benchmark] | None = None
        self._folder: Path | None = None
        self._last_step: int | None = None
        self.last_results: list[EvalResult] = []

    @staticmethod
    def _datamodule(trainer: L.Trainer):
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "token_space") or not hasattr(dm, "data_dir"):
            raise TypeError(
                "BenchmarkEvalCallback needs a datamodule with token_space, data_dir and "
                f"eval_patch_size (SpeechTextDataModule); got {type(dm).__name__}"
            )
        return dm

    def _load(self, trainer: L.Trainer) -> list[Benchmark]:
        if self._benchmarks is None:
            dm = self._datamodule(trainer)
            folder = Path(self.sets_dir) if self.sets_dir else Path(dm.data_dir) / "eval"
            if self.sets_dir is None and not sets_are_built(folder, self.sets or ALL_SETS):
                rank_zero_info(f"building the embedded benchmark sets in {folder}")
                build_sets(dm.data_dir, folder, make_renderer(dm.data_dir))
            self._benchmarks = load_benchmarks(folder, self.sets, dm.num_units)
            self._folder = folder
        return self._benchmarks

    def _run(
        self, trainer: L.Trainer, pl_module: L.LightningModule, limit: int | None
    ) -> list[EvalResult]:
        dm = self._datamodule(trainer)
        is_lst = getattr(pl_module, "is_lst", True)
        patch_size = dm.eval_patch_size(is_lst)
        benchmarks = [b.subset(limit) for b in self._load(trainer)]
        results = evaluate(
            pl_module.net,
            benchmarks,
            dm.token_space,
            patch_size,
            self.directions,
            self.max_tokens,
            self.max_rows,
            pl_module.device,
        )
        pl_module.log_dict(scalar_logs(results), batch_size=1)
        self.last_results = results
        return results

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_steps <= 0 or trainer.state.fn != "fit":
            return
        step = trainer.global_step
        if self._last_step is not None and step - self._last_step < self.every_n_steps:
            return
        self._last_step = step
        self._run(trainer, pl_module, self.val_limit)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = self._run(trainer, pl_module, self.test_limit)
        if trainer.is_global_zero:
            restored = getattr(pl_module, "restored_step", None)
            step = trainer.global_step if restored is None else restored
            # `lst-lightning test` logs into a folder of its own (<run>/test/step_<N>/)
            out = Path(trainer.log_dir or ".")
            write_results(
                out,
                results,
                step=step,
                checkpoint="lst-lightning test",
                sets_dir=str(self._folder),  # its heuristics.json goes beside the results
            )
            rank_zero_info("\n" + markdown_table(results) + f"\nwrote {out}/results.json")
