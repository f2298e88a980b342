"""Row 12: a second run writing the same output while the first is running is refused, naming
the first; once the first is gone (``kill -9``), its stale lock is removed and the run proceeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lst_lightning.data.speech import stages

from .stage_inputs import make_audio_folder

HOLD = """
import sys, time
from lst_lightning.data.locking import output_lock
with output_lock(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_concurrent_ingest_is_refused_and_a_killed_run_does_not_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_audio_folder(tmp_path)
    out = tmp_path / "ingest"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout.readline().strip() == "holding"
        assert stages.main(["ingest", "--out", str(out), "--folder", str(folder)]) == 1
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "another run" in err, err
        assert not out.exists(), "the refused run must not touch the output"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    time.sleep(0.1)
    assert stages.main(["ingest", "--out", str(out), "--folder", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "stale lock" in captured.err and stages.stage_is_complete(out)
    assert not (tmp_path / "ingest.lock").exists()
