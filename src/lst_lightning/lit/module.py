"""The LightningModule that trains LST and the baselines under one recipe."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from ..data.stream.batch import IGNORE_INDEX, PackedBatch
from ..hub.checkpoint import (
    KIT_KEY,
    kit_record,
    network_from_hparams,
    read_checkpoint,
    safe_globals,
)
from ..hub.configs import from_dict
from ..model import BaselineConfig, LSTConfig, build_model
from ..model.config import TransformerConfig
from ..model.flops import batch_training_flops
from .optim import OptimConfig, build_optimizer

# Lightning's own ``load_from_checkpoint`` loads weights-only; the kit's config dataclasses are safe.
torch.serialization.add_safe_globals(safe_globals())


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss or gradient; the run stops at that step."""


def _describe(losses: dict[str, torch.Tensor]) -> str:
    """``loss=nan, loss_text=nan, loss_speech=4.21``: every loss part of a step."""
    parts = [f"{name}={float(value):.4g}" for name, value in losses.items()]
    if "loss_text" not in losses:
        parts.append("loss_text=n/a (no text targets)")
    if "loss_speech" not in losses:
        parts.append("loss_speech=n/a (no speech targets)")
    return ", ".join(parts)


def default_network() -> LSTConfig:
    return LSTConfig()


class SpeechTextLM(L.LightningModule):
    """Next-token training of any model of the kit over packed speech-text batches.

    LST and the Base SpeechLLM go through the same loss, optimiser, schedule and logging, so a
    comparison between them differs only in the network.

    Logged every step (TensorBoard): ``train/loss`` and its split ``train/loss_text`` /
    ``train/loss_speech`` (by the modality of the target token), ``train/tokens_seen`` and
    ``train/global_positions_seen`` (cumulative over all processes, restored on resume),
    ``train/flops_seen`` (cumulative analytic training FLOPs over all processes, restored on
    resume; convention in :mod:`lst_lightning.model.flops`), ``train/speech_patch_len`` (mean
    tokens per speech patch) and the learning rate.

    A NaN or infinite loss (any part) or gradient raises :class:`NonFiniteError` at once, naming
    the step and the loss parts, before the optimiser step: the weights, and so every checkpoint,
    stay finite (the checkpoint writer refuses non-finite weights as well).

    ``flops_per_batch`` holds this process's FLOPs of the latest batch (training: forward +
    backward; validation: forward), which Lightning's ``ThroughputMonitor`` turns into FLOPs/s and
    MFU (see :class:`lst_lightning.callbacks.throughput.SpeechThroughputMonitor`).
    """

    def __init__(
        self,
        network: LSTConfig | BaselineConfig = default_network(),  # noqa: B008 - never mutated
        optim: OptimConfig = OptimConfig(),  # noqa: B008
        vocab_size: int | None = None,
        init_from: str | None = None,
    ) -> None:
        """``network``: which model and its sizes. ``optim``: the optimiser recipe.
        ``vocab_size``: size of the data's token space; linked from the datamodule by the CLI and
        overriding ``network.vocab_size`` when given. ``init_from``: warm start (see
        :mod:`lst_lightning.hub.warm_start`): a local Hugging Face Llama-style folder initialises
        the global transformer (LST) or the whole baseline, a kit checkpoint or exported folder
        the matching weights; applied when ``fit`` starts (not when resuming)."""
        super().__init__()
        network = network_from_hparams(network)
        if isinstance(optim, dict):
            optim = from_dict(optim, OptimConfig, where="optim")
        # hyperparameters as plain data (the network with its class), so that a checkpoint and
        # the logged hparams re-parse without the kit's pickled objects
        self.save_hyperparameters(
            {
                "network": to_hparams(network),
                "optim": dataclasses.asdict(optim),
                "vocab_size": vocab_size,
                "init_from": init_from,
            }
        )
        if vocab_size is not None:
            network = dataclasses.replace(network, vocab_size=vocab_size)
        self.network_config = network
        self.optim_config = optim
        self.init_from = init_from
        self.net = build_model(network)
        self.restored_step: int | None = None
        """``global_step`` of the checkpoint loaded into this module (``None`` if none): what
        validate/test of a checkpoint log at."""
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("global_positions_seen", torch.zeros((), dtype=torch.long))
        # A Python float kept in the checkpoint, not a buffer: FLOPs outgrow int64 at scale and a
        # floating buffer would be cast to bf16 by "*-true" precisions and FSDP mixed precision.
        self.flops_seen = 0.0
        self.flops_per_batch = 0
        self._last_losses: dict[str, torch.Tensor] = {}

    @property
    def is_lst(self) -> bool:
        return isinstance(self.network_config, LSTConfig)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        return self.net(batch.tokens, batch.doc_ids, batch.patch_lengths)

    def losses(self, batch: PackedBatch) -> dict[str, torch.Tensor]:
        """Mean token cross-entropy overall and per target modality (sums kept for exact means)."""
        logits = self(batch)
        nll = F.cross_entropy(
            logits.float().flatten(0, 1),
            batch.targets.flatten(),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        ).view_as(batch.targets)
        valid = batch.targets != IGNORE_INDEX
        speech = valid & batch.speech_targets
        text = valid & ~batch.speech_targets
        out = {"loss": nll.sum() / valid.sum().clamp_min(1)}
        if text.any():
            out["loss_text"] = nll[text].sum() / text.sum()
        if speech.any():
            out["loss_speech"] = nll[speech].sum() / speech.sum()
        return out

    def global_positions(self, batch: PackedBatch) -> int:
        """Steps of the global model this batch costs: patches for LST, tokens for baselines."""
        return batch.num_patches if self.is_lst else batch.num_tokens

    def batch_flops(self, batch: PackedBatch, training: bool = True) -> int:
        """Analytic FLOPs of this batch ("causal" attention convention), forward + backward when
        ``training`` else forward only."""
        flops = batch_training_flops(self.network_config, batch.doc_ids, batch.patch_lengths)
        return flops if training else flops // 3

    def training_step(self, batch: PackedBatch, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        self.flops_per_batch = self.batch_flops(batch)
        finite = all(bool(torch.isfinite(v)) for v in losses.values())
        counts = torch.tensor(
            [batch.num_tokens, self.global_positions(batch), self.flops_per_batch, int(not finite)],
            device=self.tokens_seen.device,
        )
        counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        if counts[3] > 0:  # summed over processes, so every rank stops at the same step
            raise NonFiniteError(
                f"non-finite training loss at step {self.global_step} "
                f"({_describe(losses)} on this process): stopped before the optimiser step, so the "
                "checkpoints hold the last finite state; lower model.optim.lr or check the data"
            )
        self.tokens_seen += counts[0].long()
        self.global_positions_seen += counts[1].long()
        self.flops_seen += float(counts[2])
        self._last_losses = {k: v.detach() for k, v in losses.items()}
        size = batch.tokens.shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        self.log("train/tokens_seen", self.tokens_seen.float(), batch_size=size)
        self.log("train/global_positions_seen", self.global_positions_seen.float(), batch_size=size)
        self.log("train/flops_seen", self.flops_seen, batch_size=size)
        speech = batch.speech_patches & (batch.patch_lengths > 0)
        if speech.any():
            mean_len = batch.patch_lengths[speech].float().mean()
            self.log("train/speech_patch_len", mean_len, batch_size=size)
        return losses["loss"]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop before a non-finite gradient reaches the weights (and so any checkpoint).

        Not under fp16 loss scaling, where an overflowing step is expected: its scaler skips it.
        """
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:
            return
        grads = [(n, p.grad) for n, p in self.named_parameters() if p.grad is not None]
        if not grads:
            return
        finite = torch.stack([torch.isfinite(g).all() for _, g in grads]).all()
        flag = torch.tensor(int(not finite), device=self.tokens_seen.device)
        if self.trainer.strategy.reduce(flag, reduce_op="sum") > 0:
            bad = [n for n, g in grads if not bool(torch.isfinite(g).all())]
            raise NonFiniteError(
                f"non-finite gradient at step {self.global_step} ({len(bad)} parameters on this "
                f"process, e.g. {', '.join(bad[:3]) or 'on another process'}; last losses: "
                f"{_describe(self._last_losses)}): stopped before the optimiser step, so the "
                "checkpoints hold the last finite state; lower model.optim.lr or check the data"
            )

    def validation_step(self, batch: PackedBatch, batch_idx: int) -> None:
        size = batch.tokens.shape[0]
        self.flops_per_batch = self.batch_flops(batch, training=False)
        for name, value in self.losses(batch).items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", batch_size=size, sync_dist=True)

    def test_step(self, batch: PackedBatch, batch_idx: int) -> None:
        size = batch.tokens.shape[0]
        for name, value in self.losses(batch).items():
            self.log(f"test/{name}", value, batch_size=size, sync_dist=True)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.init_from:
            self._warm_start()

    def _warm_start(self) -> None:
        from ..hub.warm_start import warm_start

        trainer = self.trainer
        if trainer.ckpt_path is not None:
            rank_zero_info(
                f"init_from {self.init_from}: skipped, resuming from {trainer.ckpt_path}"
            )
            return
        space = getattr(trainer.datamodule, "token_space", None)
        report = warm_start(self.net, self.network_config, self.init_from, space)
        rank_zero_info(report.summary())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["flops_seen"] = self.flops_seen
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        checkpoint[KIT_KEY] = kit_record(self.network_config, datamodule)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.flops_seen = float(checkpoint.get("flops_seen", 0.0))
        self.restored_step = int(checkpoint.get("global_step", 0))

    def configure_optimizers(self):
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            raise ValueError(
                f"trainer.max_steps={self.trainer.max_steps} gives the run {total} optimiser "
                "steps: the learning-rate schedule needs a finite run length, so set "
                "trainer.max_steps to a positive number of steps"
            )
        total = int(total)
        optimizer, schedule = build_optimizer(self.net, self.optim_config, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step"},
        }


def to_hparams(network: LSTConfig | BaselineConfig) -> dict[str, Any]:
    """The network as saved in hyperparameters: ``{"class_path", "init_args"}``."""
    from ..hub.configs import to_dict

    return to_dict(network)


def load_module(path: str, map_location: str | torch.device = "cpu") -> SpeechTextLM:
    """A trained :class:`SpeechTextLM` from a checkpoint, whichever network it holds, read
    weights-only (no unpickling of code; see :func:`lst_lightning.hub.checkpoint.read_checkpoint`)."""
    checkpoint = read_checkpoint(path)
    hp = checkpoint.get("hyper_parameters", {})
    network = checkpoint.get(KIT_KEY, {}).get("network", hp["network"])
    module = SpeechTextLM(
        network=network, optim=hp.get("optim", OptimConfig()), vocab_size=hp.get("vocab_size")
    )
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    return module.to(map_location)


__all__ = [
    "BaselineConfig",
    "LSTConfig",
    "NonFiniteError",
    "OptimConfig",
    "SpeechTextLM",
    "TransformerConfig",
    "load_module",
    "network_from_hparams",
]
