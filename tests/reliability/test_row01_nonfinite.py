"""Row 1: a diverging run (``--model.optim.lr 1e6``) stops at once, naming the step and the loss
parts, and its checkpoints hold only finite tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .conftest import cli_fit


def _finite(checkpoint: Path) -> bool:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def test_divergence_stops_with_the_step_and_loss_parts_and_keeps_a_finite_checkpoint(
    generated_corpus: Path, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match=r"non-finite .* at step \d+") as stopped:
        cli_fit(
            generated_corpus,
            tmp_path,
            "--model.optim.lr=1e6",
            "--trainer.max_steps=20",
            "--checkpoint.every_n_train_steps=1",
        )
    message = str(stopped.value)
    assert "loss_text" in message and "loss_speech" in message, message
    checkpoints = sorted((tmp_path / "tiny_lst" / "run" / "checkpoints").glob("*.ckpt"))
    assert checkpoints, "the last good checkpoint must be kept"
    for path in checkpoints:
        assert _finite(path), f"{path.name} holds non-finite tensors"
    step = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["global_step"]
    assert step < 20, "training must stop at the first non-finite step, not run to the end"
