"""Row 13: ``make train EXP=nope`` stops at once naming the file and listing the experiments,
before any set-up or data step runs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["train", "validate"])
def test_unknown_experiment_is_an_immediate_error(target: str) -> None:
    # -n: were the check missing, make would only print the setup and data commands
    done = subprocess.run(
        ["make", "-n", target, "EXP=nope", "CKPT=x"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0, done.stdout
    assert "experiments/nope.yaml" in done.stderr and "tiny_lst" in done.stderr, done.stderr
    assert "pip install" not in done.stdout and "embedded" not in done.stdout, done.stdout
