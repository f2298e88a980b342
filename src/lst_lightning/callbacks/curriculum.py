"""The callback that makes patching and the data mixture observable.

The curriculum itself needs no callback: the training stream patches every document for the step of
the batch it lands in, a pure function of the stream position that DataLoader workers compute on
their own (:mod:`lst_lightning.data.stream.dataset`), so the schedule works with workers, several
GPUs and gradient accumulation, and a resumed run replays it bit for bit. This callback logs what
the batches hold, and keeps the cumulative mixture counts in its checkpointed state.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..data.stream.batch import PackedBatch

FRAME_RATE_HZ = 25.0
"""HuBERT units per second of speech (paper: 25 Hz, not deduplicated)."""


MIXTURE_TAGS = ("interleaved_token_share", "speech_only_token_share", "text_token_share")
"""``mixture/<tag>``: cumulative shares of the columns of ``PackedBatch.mixture_units``."""


class CurriculumCallback(Callback):
    """Logs, every logged step:

    - ``patching/aligned_fraction`` and ``patching/static_fraction``: shares of the batch's
      speech-bearing documents patched aligned / static (a document counts in the row holding its
      first piece);
    - ``patching/aligned_prob``: the scheduled probability of aligned patching at this step;
    - ``patching/units_per_speech_patch``: unit frames per speech patch (for the baselines, per
      speech token: 1 for units, the mean piece length for the unit BPE);
    - ``patching/positions_per_second``: global positions spent on speech per second of speech;
    - ``patching/compression``: real tokens per global position;
    - ``mixture/interleaved_token_share``, ``mixture/speech_only_token_share``,
      ``mixture/text_token_share``: the shares of all training tokens so far (cumulative over the
      run, counted in baseline units like ``data.mixture``, restored on resume) that came from
      interleaved, speech-only and text-only documents. Cumulative rather than per batch because
      one batch holds a handful of documents; the realised share converges on the option.

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
        self.mixture_units = [0, 0, 0]
        """Baseline units trained on so far from interleaved, speech-only, text-only documents."""

    @staticmethod
    def _datamodule(trainer: L.Trainer) -> Any:
        dm = trainer.datamodule
        if dm is None or not callable(getattr(dm, "aligned_probability", None)):
            raise TypeError(
                "CurriculumCallback needs a datamodule with aligned_probability(step) "
                f"(SpeechTextDataModule); got {type(dm).__name__}"
            )
        return dm

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_step = trainer.global_step  # the step this batch trains (before it advances)

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
        if batch.mixture_units is not None:
            units = batch.mixture_units.sum(dim=0).to(device=pl_module.device, dtype=torch.float64)
            units = trainer.strategy.reduce(units, reduce_op="sum")
            self.mixture_units = [
                a + int(b) for a, b in zip(self.mixture_units, units.tolist(), strict=True)
            ]
            for name, value in self.mixture_shares(self.mixture_units).items():
                pl_module.log(f"mixture/{name}", value, batch_size=size)

    @staticmethod
    def mixture_shares(units: list[int]) -> dict[str, float]:
        """The ``mixture/*`` shares of cumulative counts (none while nothing was counted)."""
        total = sum(units)
        return (
            {} if total <= 0 else {t: u / total for t, u in zip(MIXTURE_TAGS, units, strict=True)}
        )

    def state_dict(self) -> dict[str, Any]:
        return {"mixture_units": list(self.mixture_units)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.mixture_units = [int(u) for u in state_dict.get("mixture_units", [0, 0, 0])]

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
