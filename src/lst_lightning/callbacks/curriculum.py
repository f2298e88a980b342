"""The callback that owns the patching curriculum and makes patching observable.

Lightning builds the training DataLoader once and its worker processes keep their own copy of the
dataset, so nothing a callback changes on Python objects reaches them. The datamodule instead hands
the dataset a shared-memory step counter before any worker starts; this callback writes
``trainer.global_step`` into it at ``on_train_start`` (after a checkpoint restored the step, so a
resumed run continues the schedule) and before every training batch. Each document built after that
draws static or aligned patches with the probability of that step. Every process of a multi-GPU run
has its own datamodule and callback and they all see the same ``global_step``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..data.stream.batch import PackedBatch

FRAME_RATE_HZ = 25.0
"""HuBERT units per second of speech (paper: 25 Hz, not deduplicated)."""


class CurriculumCallback(Callback):
    """Publishes the training step to the data pipeline and logs, every logged step:

    - ``patching/aligned_fraction`` and ``patching/static_fraction``: shares of the batch's
      speech-bearing documents patched aligned / static (a document counts in the row holding its
      first piece);
    - ``patching/aligned_prob``: the scheduled probability of aligned patching at this step;
    - ``patching/units_per_speech_patch``: unit frames per speech patch (for the baselines, per
      speech token: 1 for units, the mean piece length for the unit BPE);
    - ``patching/positions_per_second``: global positions spent on speech per second of speech;
    - ``patching/compression``: real tokens per global position.

    Counts are summed over all processes before the ratios are taken. The CLI always adds this
    callback (key ``curriculum``); it is harmless for static patching and the baselines.
    """

    def __init__(self, frame_rate_hz: float = FRAME_RATE_HZ) -> None:
        """``frame_rate_hz``: speech units per second, to turn frames into seconds (paper: 25)."""
        super().__init__()
        if frame_rate_hz <= 0:
            raise ValueError(f"curriculum.frame_rate_hz must be > 0, got {frame_rate_hz}")
        self.frame_rate_hz = frame_rate_hz
        self._batch_step = 0

    @staticmethod
    def _datamodule(trainer: L.Trainer) -> Any:
        dm = trainer.datamodule
        if dm is None or not callable(getattr(dm, "publish_step", None)):
            raise TypeError(
                "CurriculumCallback needs a datamodule with publish_step(step) and "
                f"aligned_probability(step) (SpeechTextDataModule); got {type(dm).__name__}"
            )
        return dm

    def _publish(self, trainer: L.Trainer) -> None:
        self._batch_step = trainer.global_step
        self._datamodule(trainer).publish_step(trainer.global_step)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._publish(trainer)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._publish(trainer)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not isinstance(batch, PackedBatch):
            return
        size = batch.tokens.shape[0]
        prob = self._datamodule(trainer).aligned_probability(self._batch_step)
        pl_module.log("patching/aligned_prob", float(prob), batch_size=size)
        stats = self.batch_statistics(batch, pl_module.device)
        stats = trainer.strategy.reduce(stats, reduce_op="sum")
        for name, value in self.ratios(stats).items():
            pl_module.log(f"patching/{name}", value, batch_size=size)

    @staticmethod
    def batch_statistics(batch: PackedBatch, device: torch.device) -> torch.Tensor:
        """``[speech_docs, aligned_docs, speech_frames, speech_patches, tokens, positions]``."""
        speech_patches = (batch.speech_patches & (batch.patch_lengths > 0)).sum()
        counted = batch.speech_docs is not None
        values = [
            batch.speech_docs.sum() if counted else 0,
            batch.aligned_docs.sum() if counted else 0,
            batch.speech_frames.sum() if counted else 0,
            speech_patches,
            batch.num_tokens,
            batch.num_patches,
        ]
        return torch.tensor([int(v) for v in values], dtype=torch.float64, device=device)

    def ratios(self, stats: torch.Tensor) -> dict[str, float]:
        """The logged ratios of summed counts; a ratio with a zero denominator is left out."""
        speech_docs, aligned_docs, frames, speech_patches, tokens, positions = stats.tolist()
        out = {}
        if speech_docs > 0:
            out["aligned_fraction"] = aligned_docs / speech_docs
            out["static_fraction"] = 1.0 - aligned_docs / speech_docs
        if speech_patches > 0 and frames > 0:
            out["units_per_speech_patch"] = frames / speech_patches
            out["positions_per_second"] = speech_patches * self.frame_rate_hz / frames
        if positions > 0:
            out["compression"] = tokens / positions
        return out
