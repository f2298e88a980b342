"""Checkpoint files that are never half-written, never non-finite, and name themselves when bad.

Lightning's own ``TorchCheckpointIO`` writes a checkpoint into the system temporary folder and
then *moves* it into the run folder: when the two are on different filesystems (``/tmp`` on
tmpfs, runs on disk) the move is a copy, and a disk that fills up during it leaves a truncated
``last.ckpt`` in place of the good one. :class:`AtomicCheckpointIO` writes through
:func:`lst_lightning.data.records.atomic_file` instead (a temporary file beside the target, then a
rename), so a failed write leaves the previous checkpoint intact, and it refuses to write a
checkpoint whose weights are not finite. The CLI installs it on every trainer it builds
(:func:`install_atomic_checkpoint_io`).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from ..data.records import atomic_file


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or a checkpoint that must not be written."""


def nonfinite_tensors(state: dict[str, Any]) -> list[str]:
    """Names of the floating tensors of a ``state_dict`` that hold a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def read_checkpoint(
    path: str | Path,
    map_location: Any = "cpu",
    weights_only: bool | None = False,
    loader: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """``torch.load`` of a checkpoint file, with errors that name the file (a missing file, a
    truncated or corrupt one) instead of the reader's internals. ``loader`` replaces
    ``torch.load`` (Lightning's loader, for remote paths and its ``weights_only`` rules)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        if loader is not None:
            return loader(path, map_location=map_location, weights_only=weights_only)
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as e:
        if not weights_only or "Weights only load failed" not in str(e):
            raise CheckpointError(
                f"{path} ({path.stat().st_size} bytes) is not a readable checkpoint: it is "
                f"truncated or corrupt ({str(e).splitlines()[0] if str(e) else 'unpickling'})"
            ) from e
        reason = str(e).split("\n\n")[-1].strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: refusing to load: it holds objects that a weights-only load does not allow "
            f"({reason}). Checkpoints written by lst-lightning load safely; this one was written "
            "by other code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path} ({path.stat().st_size} bytes) is not a readable checkpoint: it is truncated "
            f"or corrupt ({detail})"
        ) from e


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic, finite-only writes and reads that name the file."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote storage: Lightning's fsspec path
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            raise CheckpointError(
                f"refusing to write {path}: {len(bad)} tensors of the model are not finite "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the previous "
                "checkpoint is kept"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            torch.save(checkpoint, f)

    def load_checkpoint(
        self, path: Any, map_location: Any = lambda storage, loc: storage, weights_only=None
    ) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only)
        return read_checkpoint(path, map_location, weights_only, loader=super().load_checkpoint)


def install_atomic_checkpoint_io(trainer: Any) -> None:
    """Give ``trainer``'s strategy an :class:`AtomicCheckpointIO` unless it was given another
    checkpoint plugin than Lightning's default one (that one is then left alone)."""
    strategy = trainer.strategy
    current: CheckpointIO | None = getattr(strategy, "_checkpoint_io", None)
    if current is None or type(current) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()


class FinalStepCheckpoint(ModelCheckpoint):
    """The kit's checkpoint callback (key ``checkpoint:``): Lightning's ``ModelCheckpoint`` that
    also writes ``last.ckpt`` at the step where training ends.

    Lightning 2.6 saves ``last.ckpt`` at the end of training only if it never saved one before, so
    with ``every_n_train_steps: 100`` a 150-step run, or one stopped by a FLOPs or token budget at
    step 304, left ``last.ckpt`` at step 100 (or 300): evaluation then scored a model that was not
    the trained one. Here the end of ``fit`` saves ``last.ckpt`` whenever the last save was at
    another step (not under ``fast_dev_run``; an interrupted run is ``on_exception``'s business).
    """

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_end(trainer, pl_module)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
