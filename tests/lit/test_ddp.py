"""Two-process DDP on the CPU (gloo) trains exactly like one process with the same global batch,
and the FSDP strategy wraps and checkpoints every transformer block."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lst_lightning.data.stream.batch import IGNORE_INDEX
from lst_lightning.data.stream.packing import PackedRow, collate
from lst_lightning.lit.module import SpeechTextLM
from lst_lightning.lit.optim import OptimConfig
from lst_lightning.lit.strategies import BlockFSDPStrategy
from lst_lightning.model import LSTConfig, TransformerConfig
from lst_lightning.model.layers import Block

VOCAB, ROW_TOKENS, ROWS, STEPS = 61, 48, 4, 4


def make_rows(seed: int = 0) -> list[PackedRow]:
    """``ROWS`` rows with several documents, speech-like patches and the same number of targets
    per row (so the mean of per-rank mean losses is the global mean loss)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(ROWS):
        cut = 20 + 4 * r  # two documents per row, the boundary moving from row to row
        doc_ids = np.array([0] * cut + [1] * (ROW_TOKENS - cut))
        tokens = rng.integers(0, VOCAB, ROW_TOKENS)
        targets = np.roll(tokens, -1)
        targets[[cut - 1, ROW_TOKENS - 1]] = IGNORE_INDEX
        lengths = [1, 3, 4, 4] + [1] * (cut - 12) + [4, 4, 4] + [1] * (ROW_TOKENS - cut - 12)
        rows.append(
            PackedRow(
                tokens=tokens,
                targets=targets,
                doc_ids=doc_ids,
                speech_targets=tokens % 2 == 0,
                patch_lengths=np.array(lengths),
                speech_patches=np.array([length > 1 for length in lengths]),
            )
        )
    return rows


class FixedRows(L.LightningDataModule):
    def __init__(self, rows_per_batch: int) -> None:
        super().__init__()
        self.rows_per_batch = rows_per_batch

    def train_dataloader(self) -> DataLoader:
        # Lightning swaps in a DistributedSampler under DDP: rank r gets rows r, r + 2, ...
        return DataLoader(
            make_rows(), batch_size=self.rows_per_batch, collate_fn=lambda r: collate(r, None)
        )


class GlobalLoss(L.Callback):
    """Writes the loss averaged over ranks (rank 0) after every step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = trainer.strategy.reduce(outputs["loss"].detach(), reduce_op="mean")
        self.losses.append(float(loss))
        if trainer.is_global_zero:
            self.path.write_text(json.dumps({"losses": self.losses, "flops": pl_module.flops_seen}))


def tiny_module() -> SpeechTextLM:
    torch.manual_seed(0)
    network = LSTConfig(
        vocab_size=VOCAB,
        encoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=16),
        global_model=TransformerConfig(n_layers=1, d_model=64, n_heads=2),
        decoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=16),
    )
    return SpeechTextLM(network, OptimConfig(lr=1e-2, warmup_steps=1))


def train(strategy: str, devices: int, out: Path) -> dict:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_steps=STEPS,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[GlobalLoss(out)],
    )
    trainer.fit(tiny_module(), datamodule=FixedRows(ROWS // devices))
    return json.loads(out.read_text())


def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    single = train("auto", 1, tmp_path / "single.json")
    ddp = train("ddp_fork", 2, tmp_path / "ddp.json")
    assert len(single["losses"]) == len(ddp["losses"]) == STEPS
    # Same initial weights and the same global batch: the first loss agrees to rounding; the later
    # ones only if the gradients were averaged across both processes before every update.
    np.testing.assert_allclose(ddp["losses"], single["losses"], rtol=2e-5)
    assert ddp["flops"] == pytest.approx(single["flops"], rel=1e-12)
    assert single["losses"][-1] < single["losses"][0]


def test_fsdp_strategy_wraps_and_checkpoints_every_block() -> None:
    strategy = BlockFSDPStrategy()
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {Block}
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {Block}
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    plain = BlockFSDPStrategy(sharding_strategy="HYBRID_SHARD", activation_checkpointing=False)
    assert plain.sharding_strategy.name == "HYBRID_SHARD"
    assert not plain._activation_checkpointing_kwargs


def _fsdp_param_groups(rank: int, port: int, out: Path) -> None:
    import os

    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from lst_lightning.lit.optim import param_groups

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        wrapped = FullyShardedDataParallel(
            tiny_module().net,
            device_id=torch.device("cpu"),
            use_orig_params=True,  # what Lightning's FSDPStrategy uses
            auto_wrap_policy=ModuleWrapPolicy({Block}),
        )
        decay, rest = param_groups(wrapped, 0.1)
        dims = {p.dim() for p in wrapped.parameters()}
        (out / f"{rank}.json").write_text(
            json.dumps(
                {"decay": len(decay["params"]), "rest": len(rest["params"]), "dims": sorted(dims)}
            )
        )
    finally:
        dist.destroy_process_group()


def test_weight_decay_groups_survive_fsdp_flattening(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unwrapped = param_groups_of_plain_model()
    torch.multiprocessing.start_processes(
        _fsdp_param_groups, args=(port, tmp_path), nprocs=2, start_method="fork"
    )
    for rank in (0, 1):
        got = json.loads((tmp_path / f"{rank}.json").read_text())
        assert got["dims"] == [1], "FSDP flattens every parameter: p.dim() cannot decide decay"
        assert (got["decay"], got["rest"]) == unwrapped


def param_groups_of_plain_model() -> tuple[int, int]:
    from lst_lightning.lit.optim import param_groups

    decay, rest = param_groups(tiny_module().net, 0.1)
    assert decay["params"] and rest["params"]
    return len(decay["params"]), len(rest["params"])
