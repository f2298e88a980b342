"""Run folders that only grow: new versions for new runs, fresh folders for each evaluation.

A training run lives in ``<save_dir>/<name>/<version>/`` (TensorBoard events, ``config.yaml``,
``checkpoints/``). Nothing the kit does afterwards rewrites those files: ``fit`` without
``--ckpt_path`` on an existing run starts the next version (``run-2``, ``run-3``, ...), ``fit
--ckpt_path ...`` resumes in place and appends, and ``validate`` / ``test`` / ``eval`` of a
checkpoint write into a new folder beside the events (``<run>/validate/step_<N>/``, ...), logged at
the checkpoint's global step. TensorBoard pointed at ``<save_dir>`` shows each as its own run.
"""

from __future__ import annotations

from pathlib import Path


def has_records(folder: Path) -> bool:
    """True when ``folder`` already holds a run (events, a config or checkpoints)."""
    if not folder.is_dir():
        return False
    return any(
        p.name.startswith("events.out.tfevents") or p.name in ("config.yaml", "checkpoints")
        for p in folder.iterdir()
    )


def next_version(parent: Path, version: str) -> str:
    """``version`` if ``parent/version`` holds no run yet, else the first free ``version-<k>``."""
    if not has_records(parent / version):
        return version
    k = 2
    while has_records(parent / f"{version}-{k}"):
        k += 1
    return f"{version}-{k}"


def fresh_folder(path: Path) -> Path:
    """``path`` if it does not exist yet, else the first free ``path.<k>`` (k = 2, 3, ...)."""
    if not path.exists():
        return path
    k = 2
    while path.with_name(f"{path.name}.{k}").exists():
        k += 1
    return path.with_name(f"{path.name}.{k}")


def record_folder(run_dir: Path, stage: str, step: int) -> Path:
    """A new folder for ``stage`` (validate/test/eval) of the checkpoint at ``step``."""
    return fresh_folder(run_dir / stage / f"step_{step}")
