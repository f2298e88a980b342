"""A quiet, useful console: a progress bar in steps, a model summary with the analytic FLOPs,
and no known-harmless noise. The CLI installs all three (:func:`quiet_console`)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities import rank_zero_info

try:
    import rich  # noqa: F401  (RichProgressBar needs it)
    from lightning.pytorch.callbacks import RichProgressBar as _Bar
except ImportError:  # pragma: no cover - rich is optional
    from lightning.pytorch.callbacks import TQDMProgressBar as _Bar

NOISE = ("💡 Tip:", "Trainer already configured with model summary callbacks")
"""Console lines that advertise third-party services (Lightning's litlogger/litmodels tips), and
Lightning's note that it found the kit's own model summary."""


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(NOISE)


def quiet_console() -> None:
    """Drop Lightning's advertisement tips and the known-harmless ``LeafSpec`` deprecation warning
    (raised inside Lightning's own pytree helper with torch >= 2.10)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class StepProgressBar(_Bar):
    """Training progress as ``step N/max_steps`` (the kit's runs are step-based and their one
    endless epoch means nothing), without Lightning's ``v_num``."""

    def _get_train_description(self, current_epoch: int) -> str:
        return "Training"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        super().on_train_batch_end(trainer, pl_module, *args)
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else "?"
        description = f"step {trainer.global_step}/{total}"
        progress = getattr(self, "progress", None)
        bar_id = getattr(self, "train_progress_bar_id", None)
        if progress is not None and bar_id is not None:  # rich
            progress.update(bar_id, description=description)
        elif getattr(self, "_train_progress_bar", None) is not None:  # tqdm
            self.train_progress_bar.set_description(description)


class AnalyticModelSummary(ModelSummary):
    """Lightning's summary without its FLOPs column (a profiler count that is 0 without an example
    input and blind to flash-attn), followed after the first training batch by the kit's analytic
    training FLOPs of that batch (:mod:`lst_lightning.model.flops`)."""

    def __init__(self, max_depth: int = 1) -> None:
        super().__init__(max_depth=max_depth)
        self._reported = False

    def summarize(
        self,
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

        columns = [c for c in summary_data if c[0] != "FLOPs"]
        table = _format_summary_table(
            total_parameters, trainable_parameters, model_size, total_training_modes, 0, *columns
        )
        lines = [line for line in table.splitlines() if not line.rstrip().endswith("Total Flops")]
        rank_zero_info("\n" + "\n".join(lines))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self._reported or not self._max_depth:
            return
        self._reported = True
        flops = getattr(pl_module, "flops_per_batch", 0)
        batch = args[1] if len(args) > 1 else None
        tokens = getattr(batch, "num_tokens", 0)
        if not flops or not tokens:
            return
        positions = (
            getattr(batch, "num_patches", tokens) if getattr(pl_module, "is_lst", False) else tokens
        )
        rank_zero_info(
            f"Analytic training FLOPs (forward + backward, lst_lightning.model.flops) of the first "
            f"batch: {flops:.3g} for {tokens} tokens and {positions} global positions "
            f"({flops / tokens:.3g} per token)"
        )
