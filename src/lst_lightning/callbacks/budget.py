"""Stop training at a compute budget (FLOPs) or a data budget (tokens).

The paper compares LST with the baselines at equal compute and at equal data (DESIGN 5). Each
budget reads a cumulative counter the LightningModule keeps over all processes and restores on
resume (``flops_seen``, ``tokens_seen``), stops after the first optimiser step at which the counter
reaches the budget (so the overshoot is less than one step), and logs the value it stopped at.

In an experiment YAML::

    trainer:
      callbacks:
        - class_path: lst_lightning.callbacks.budget.ComputeBudget
          init_args: {max_flops: 1.5e15}
"""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info


class Budget(L.Callback):
    """Stops ``fit`` once ``pl_module.<counter>`` reaches ``limit``; the subclasses name both."""

    counter = ""
    """Attribute of the LightningModule holding the cumulative count over all processes."""
    unit = ""

    def __init__(self, limit: float) -> None:
        super().__init__()
        if not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"{type(self).__name__}: the budget must be > 0, got {limit}")
        self.limit = float(limit)
        self.reached_at: float | None = None
        """The counter's value when the budget stopped training (``None`` until then)."""

    def seen(self, pl_module: L.LightningModule) -> float:
        if not hasattr(pl_module, self.counter):
            raise AttributeError(
                f"{type(self).__name__} needs a `{self.counter}` counter on "
                f"{type(pl_module).__name__} (lst_lightning.lit.module.SpeechTextLM keeps one)"
            )
        value = getattr(pl_module, self.counter)
        return float(value.item() if isinstance(value, torch.Tensor) else value)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, log: bool) -> None:
        seen = self.seen(pl_module)
        # The counters are reduced over all processes, but decide together anyway so that no
        # rank stops alone.
        if not trainer.strategy.reduce_boolean_decision(seen >= self.limit, all=False):
            return
        trainer.should_stop = True
        self.reached_at = seen
        if log:
            pl_module.log(f"budget/{self.unit}_reached", seen, batch_size=1)
        rank_zero_info(
            f"{type(self).__name__}: stopping at step {trainer.global_step}: "
            f"{seen:.4g} {self.unit} seen >= budget {self.limit:.4g}"
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A run resumed past its budget does not take another step."""
        self._check(trainer, pl_module, log=False)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_) -> None:
        if trainer.fit_loop._should_accumulate():
            return  # counters move per batch, but stop only on an optimiser-step boundary
        self._check(trainer, pl_module, log=True)


class ComputeBudget(Budget):
    """Compute-controlled training: stop once the cumulative training FLOPs reach ``max_flops``.

    FLOPs are the analytic count of :mod:`lst_lightning.model.flops` (forward + backward,
    attention counted over the pairs the mask allows), summed over every process.
    """

    counter = "flops_seen"
    unit = "flops"

    def __init__(self, max_flops: float) -> None:
        super().__init__(max_flops)
        self.max_flops = max_flops


class TokenBudget(Budget):
    """Data-controlled training: stop once the real (non-padding) tokens seen reach ``max_tokens``.

    Tokens are the model's input tokens (text pieces, specials, speech units), summed over every
    process; LST and the Base SpeechLLM read the same token stream, so equal budgets mean equal
    data.
    """

    counter = "tokens_seen"
    unit = "tokens"

    def __init__(self, max_tokens: int) -> None:
        super().__init__(max_tokens)
        self.max_tokens = max_tokens


class BudgetCheckpoints(L.Callback):
    """Weights-only checkpoints at fractions of a FLOPs or token budget (default 25/50/75/100 %).

    Learning curves against compute need the model *at* given shares of the budget, not every N
    steps (systems of different cost per step reach 25 % of the FLOPs at different steps). After
    the first optimiser step at which the counter reaches ``fraction * limit`` this writes
    ``<dirpath>/budget_<percent>.ckpt`` (a file the kit's checkpoint reader loads), once per
    fraction; ``1.0`` is the budget stop itself. ``kind``: ``"flops"`` (``flops_seen``) or
    ``"tokens"`` (``tokens_seen``). ``dirpath`` defaults to ``<log_dir>/checkpoints``.
    """

    COUNTERS = {"flops": "flops_seen", "tokens": "tokens_seen"}

    def __init__(
        self,
        kind: str,
        limit: float,
        fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
        dirpath: str | None = None,
    ) -> None:
        super().__init__()
        if kind not in self.COUNTERS:
            raise ValueError(
                f"BudgetCheckpoints: kind must be one of {list(self.COUNTERS)}, got {kind!r}"
            )
        if not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"BudgetCheckpoints: the budget must be > 0, got {limit}")
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise ValueError(f"BudgetCheckpoints: fractions must be in (0, 1], got {fractions}")
        self.kind, self.limit, self.dirpath = kind, float(limit), dirpath
        self.fractions = tuple(sorted(float(f) for f in fractions))
        self.written: dict[float, int] = {}
        """fraction -> the step whose checkpoint holds it."""

    @staticmethod
    def filename(fraction: float) -> str:
        return f"budget_{round(100 * fraction):03d}.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_) -> None:
        if trainer.fit_loop._should_accumulate():
            return
        value = getattr(pl_module, self.COUNTERS[self.kind])
        seen = float(value.item() if isinstance(value, torch.Tensor) else value)
        folder = self.dirpath or f"{trainer.log_dir}/checkpoints"
        for fraction in self.fractions:
            if fraction not in self.written and seen >= fraction * self.limit:
                trainer.save_checkpoint(f"{folder}/{self.filename(fraction)}", weights_only=True)
                self.written[fraction] = trainer.global_step

    def state_dict(self) -> dict:
        return {"written": {str(k): v for k, v in self.written.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.written = {float(k): int(v) for k, v in state_dict.get("written", {}).items()}
