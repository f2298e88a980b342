"""Distributed strategies with the kit's defaults, nameable from an experiment YAML.

The model code knows nothing of parallelism: sharding and activation checkpointing are applied
from here, by Lightning, around the transformer blocks of every stack (patch encoder, global
model, patch decoder). YAML cannot spell a set of classes, hence a small subclass::

    trainer:
      strategy:
        class_path: lst_lightning.lit.strategies.BlockFSDPStrategy
        init_args: {sharding_strategy: FULL_SHARD}
"""

from __future__ import annotations

from typing import Literal

import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import MixedPrecision

from ..model.layers import Block


class BlockFSDPStrategy(FSDPStrategy):
    """Lightning's ``FSDPStrategy`` with one FSDP unit (and one activation checkpoint) per
    :class:`~lst_lightning.model.layers.Block`, as the paper trains its 1B models (FSDP, bf16).

    Mixed precision follows ``trainer.precision`` for the compute dtype of parameters, but
    gradients are reduced and buffers kept in float32: Lightning's plain FSDP precision would cast
    the RoPE frequency tables to bf16 (positions beyond a few hundred then rotate by visibly wrong
    angles) and sum gradients across hundreds of ranks in bf16.

    Args:
        sharding_strategy: ``FULL_SHARD`` (paper; parameters, gradients and optimiser state
            sharded), ``SHARD_GRAD_OP``, ``HYBRID_SHARD`` (full shard inside a node, replicas
            across nodes: less inter-node traffic) or ``NO_SHARD``.
        activation_checkpointing: recompute each block's activations in the backward pass
            (about 1/3 more compute, far less memory; needed at 4096 x 12288 tokens per row).
        state_dict_type: ``full`` (one consolidated checkpoint file, gathered on rank 0) or
            ``sharded`` (one shard per rank, faster and needed at 7B).
        cpu_offload: keep parameters and gradients on the CPU between uses.
    """

    def __init__(
        self,
        sharding_strategy: Literal[
            "FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD"
        ] = "FULL_SHARD",
        activation_checkpointing: bool = True,
        state_dict_type: Literal["full", "sharded"] = "full",
        cpu_offload: bool = False,
    ) -> None:
        super().__init__(
            auto_wrap_policy={Block},
            activation_checkpointing_policy={Block} if activation_checkpointing else None,
            sharding_strategy=sharding_strategy,
            state_dict_type=state_dict_type,
            cpu_offload=cpu_offload,
        )

    @property
    def mixed_precision_config(self) -> MixedPrecision | None:
        config = super().mixed_precision_config
        if config is None or self.mixed_precision is not None:
            return config
        return MixedPrecision(
            param_dtype=config.param_dtype,
            reduce_dtype=torch.float32,
            buffer_dtype=torch.float32,
        )
