"""Throughput, FLOPs/s and MFU through Lightning's ``ThroughputMonitor``.

``ThroughputMonitor`` reads ``flops_per_batch`` from the LightningModule (the kit's analytic count:
profilers cannot see inside flash-attn kernels) and knows the peak FLOPs only of GPUs it
recognises; this subclass fills in the batch functions for :class:`PackedBatch` and lets the peak be
set for any device (which also gives an MFU on CPUs and unlisted GPUs).

Logged per device (``train/device/...``) and, with several devices, summed over them (``train/...``):
``batches_per_sec``, ``samples_per_sec`` (rows), ``items_per_sec`` (real tokens), ``flops_per_sec``,
``speech_seconds_per_sec`` (seconds of speech read per second, from the batches' unit frames at
25 Hz) and ``train/device/mfu`` when the peak is known (Lightning knows common NVIDIA GPUs, H100
and H200 included); the same under ``validate/`` during validation. The CLI adds this monitor to
every run (key ``throughput:``).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ThroughputMonitor

from ..data.stream.batch import PackedBatch
from .curriculum import FRAME_RATE_HZ


def batch_rows(batch: PackedBatch) -> int:
    """Samples in a batch: packed rows."""
    return int(batch.tokens.shape[0])


def batch_tokens(batch: PackedBatch) -> int:
    """Items in a batch: real (non-padding) tokens."""
    return batch.num_tokens


class SpeechThroughputMonitor(ThroughputMonitor):
    """``ThroughputMonitor`` for packed speech-text batches, with a settable peak FLOPs.

    Args:
        peak_flops: theoretical peak FLOP/s of one device at the training precision, for MFU
            (e.g. ``989e12`` for an H100 SXM in bf16 dense). ``None`` keeps Lightning's table, which
            covers common NVIDIA GPUs and leaves MFU out elsewhere.
        window_size: batches in the rolling average (Lightning's default is 100; nothing is logged
            before the window has two batches, so shorten it for short runs).
    """

    def __init__(self, peak_flops: float | None = None, window_size: int = 20) -> None:
        if peak_flops is not None and peak_flops <= 0:
            raise ValueError(f"peak_flops must be > 0 or None, got {peak_flops}")
        if window_size < 2:
            raise ValueError(f"window_size must be >= 2, got {window_size}")
        super().__init__(batch_size_fn=batch_rows, length_fn=batch_tokens, window_size=window_size)
        self.peak_flops = peak_flops
        self._speech: dict[Any, deque[tuple[float, float]]] = {}
        self._speech_seen: dict[Any, float] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.peak_flops is not None:
            self.available_flops = int(self.peak_flops)
            for throughput in self._throughputs.values():
                throughput.available_flops = self.available_flops

    def _start(self, trainer: L.Trainer) -> None:
        super()._start(trainer)
        stage = trainer.state.stage
        self._speech[stage] = deque(maxlen=self.kwargs.get("window_size", 20))
        self._speech_seen[stage] = 0.0

    def _update(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, iter_num: int
    ) -> None:
        super()._update(trainer, pl_module, batch, iter_num)
        stage = trainer.state.stage
        frames = getattr(batch, "speech_frames", None)
        if stage not in self._speech or frames is None:
            return
        self._speech_seen[stage] += float(frames.sum()) / FRAME_RATE_HZ
        self._speech[stage].append((time.perf_counter(), self._speech_seen[stage]))

    def _compute(self, trainer: L.Trainer, iter_num: int | None = None) -> None:
        super()._compute(trainer, iter_num)
        window = self._speech.get(trainer.state.stage)
        if not trainer._logger_connector.should_update_logs or not window or len(window) < 2:
            return
        (t0, s0), (t1, s1) = window[0], window[-1]
        if t1 <= t0:
            return
        rate = (s1 - s0) / (t1 - t0)
        prefix = trainer.state.stage.value
        metrics = {f"{prefix}/device/speech_seconds_per_sec": rate}
        if trainer.world_size > 1:
            metrics[f"{prefix}/speech_seconds_per_sec"] = rate * trainer.world_size
        trainer._logger_connector.log_metrics(metrics, step=iter_num)
