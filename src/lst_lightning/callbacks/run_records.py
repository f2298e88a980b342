"""What every run records beyond the losses: the CLI adds this callback to each run (key ``records:``).

- **A validation at the end of fit**: the run's last step is always validated (also when
  ``max_steps`` is not a multiple of ``val_check_interval``), so the final ``val/loss`` exists.
- **Evaluation at the checkpoint's step**: ``validate`` / ``test`` of a checkpoint log at the
  checkpoint's ``global_step`` (Lightning would log at 0), so the points line up with training.
- **``val/loss`` as the HParams metric**: the TensorBoard HParams tab lists the run's
  hyperparameters against its ``val/loss`` (instead of Lightning's ``hp_metric = -1``).
- **Example documents**: once per run, the first training batch's first documents as readable
  text and speech spans (TensorBoard text ``data/example_documents``), to check what the model reads.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from ..data.stream.batch import PackedBatch

HPARAMS_METRICS = ("val/loss", "val/loss_text", "val/loss_speech")


class RunRecords(Callback):
    """See the module docstring."""

    def __init__(self, final_validation: bool = True, example_documents: int = 3) -> None:
        """
        Args:
            final_validation: validate after the last training step.
            example_documents: documents shown as text once per run (0: none).
        """
        super().__init__()
        if example_documents < 0:
            raise ValueError(f"records.example_documents must be >= 0, got {example_documents}")
        self.final_validation = final_validation
        self.example_documents = example_documents
        self._examples_written = False

    # -- fit ------------------------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if not self._examples_written and self.example_documents:
            self._examples_written = True
            self._write_examples(trainer, batch)
        last = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step
        if self.final_validation and last and not trainer.fit_loop._should_accumulate():
            # Lightning's epoch loop validates when training is about to stop
            trainer.should_stop = True

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _tensorboard(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        from lightning.fabric.utilities.logger import (
            _convert_params,
            _flatten_dict,
            _sanitize_params,
        )
        from torch.utils.tensorboard.summary import hparams

        params = dict(pl_module.hparams)
        if trainer.datamodule is not None:
            params["data"] = dict(getattr(trainer.datamodule, "hparams", {}))
        params = _sanitize_params(_flatten_dict(_convert_params(params)))
        params = {k: v for k, v in params.items() if not k.startswith("_")}
        exp, ssi, sei = hparams(params, dict.fromkeys(HPARAMS_METRICS, 0.0))
        writer = logger.experiment._get_file_writer()
        for summary in (exp, ssi, sei):
            writer.add_summary(summary)

    # -- validate / test of a checkpoint ----------------------------------------------------------
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_at_checkpoint_step(trainer, pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_at_checkpoint_step(trainer, pl_module)

    @staticmethod
    def _log_at_checkpoint_step(trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = getattr(pl_module, "restored_step", None)
        if trainer.state.fn == "fit" or step is None:
            return
        # the step Lightning's logger connector logs evaluation metrics at
        trainer.fit_loop.epoch_loop._batches_that_stepped = step

    # -- example documents ------------------------------------------------------------------------
    def _write_examples(self, trainer: L.Trainer, batch: Any) -> None:
        logger = _tensorboard(trainer)
        space = getattr(trainer.datamodule, "token_space", None)
        if logger is None or space is None or not isinstance(batch, PackedBatch):
            return
        if not trainer.is_global_zero:
            return
        text = example_documents(batch, space, self.example_documents)
        logger.experiment.add_text("data/example_documents", text, trainer.global_step)


def example_documents(batch: PackedBatch, space: Any, limit: int) -> str:
    """The first ``limit`` documents of a batch as markdown: one line per span, patch sizes of
    speech spans included."""
    from ..sample import describe

    parts = []
    tokens, doc_ids = batch.tokens.cpu(), batch.doc_ids.cpu()
    for row in range(tokens.shape[0]):
        for doc in torch.unique_consecutive(doc_ids[row]).tolist():
            if doc < 0 or len(parts) >= limit:
                continue
            ids = tokens[row][doc_ids[row] == doc].tolist()
            lines = "\n".join(f"    {line}" for line in describe(space, ids))
            parts.append(f"**document {len(parts) + 1}** ({len(ids)} tokens)\n\n{lines}")
    return "\n\n".join(parts) or "(no documents)"


def _tensorboard(trainer: L.Trainer) -> TensorBoardLogger | None:
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger
    return None
