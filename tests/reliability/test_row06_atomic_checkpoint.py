"""Row 6: the disk fills up while ``last.ckpt`` is written: the previous ``last.ckpt`` stays whole.

The fault is injected where a full disk hits: every write of bytes into the run's ``last.ckpt``
stops half way with ``ENOSPC``, and (as when ``/tmp`` is another filesystem than the run folder)
a rename between two folders fails with ``EXDEV``, so a writer that stages the file elsewhere must
copy it in.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

import pytest
import torch

from .conftest import cli_fit


def _target_path(target) -> str:
    if isinstance(target, str | os.PathLike):
        return os.fspath(target)
    try:
        return os.readlink(f"/proc/self/fd/{target.fileno()}")
    except (AttributeError, OSError, io.UnsupportedOperation):
        return ""  # an in-memory buffer: not the disk


def _full_disk(monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    real_save, real_copyfile = torch.save, shutil.copyfile
    real_rename, real_replace = os.rename, os.replace

    def half_then_enospc(data: bytes, write) -> None:
        write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def save(obj, target, *args, **kwargs):
        if os.path.basename(_target_path(target)).startswith((victim, f".{victim}")):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            if isinstance(target, str | os.PathLike):
                with open(target, "wb") as f:
                    half_then_enospc(buffer.getvalue(), f.write)
            half_then_enospc(buffer.getvalue(), target.write)
        return real_save(obj, target, *args, **kwargs)

    def copyfile(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == victim:
            with open(dst, "wb") as f:
                half_then_enospc(Path(src).read_bytes(), f.write)
        return real_copyfile(src, dst, *args, **kwargs)

    def cross_device(real):
        def rename(src, dst, *args, **kwargs):
            if os.path.dirname(os.path.abspath(src)) != os.path.dirname(os.path.abspath(dst)):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst, *args, **kwargs)

        return rename

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    monkeypatch.setattr(os, "rename", cross_device(real_rename))
    monkeypatch.setattr(os, "replace", cross_device(real_replace))


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(
    generated_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every_step = ["--checkpoint.every_n_train_steps=1", "--trainer.max_steps=3"]
    cli_fit(generated_corpus, tmp_path, *every_step)
    folder = tmp_path / "tiny_lst" / "run" / "checkpoints"
    last = folder / "last.ckpt"
    good = last.read_bytes()
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 3

    with monkeypatch.context() as patch:
        _full_disk(patch, "last.ckpt")
        with pytest.raises(OSError) as failed:
            cli_fit(
                generated_corpus,
                tmp_path,
                *every_step[:1],
                "--trainer.max_steps=4",
                f"--ckpt_path={last}",
            )
    assert failed.value.errno == errno.ENOSPC
    assert last.read_bytes() == good, "a failed write must leave the previous last.ckpt intact"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 3
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
