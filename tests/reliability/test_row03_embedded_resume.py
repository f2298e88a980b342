"""Row 3: the embedded build, killed with ``kill -9`` after two shards, resumes on the rerun.

Both runs are the real command line (``python -m lst_lightning.data.corpora.embedded``); the first
is killed from outside, process group and synthesis workers included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lst_lightning.data.corpora.tts import espeak_available

STORY = "\n\n".join(
    [
        "The lighthouse keeper climbed the stairs every evening. He counted each step aloud.",
        "His daughter kept the log book in careful writing. She noted the wind and the ships.",
        "One winter the lamp failed during a storm. The keeper lit candles along the gallery.",
        "A fishing boat saw the little lights in time. Its crew sent a letter of thanks.",
        "The village built a new lamp in the spring. Everyone came to watch it shine at night.",
        "The daughter later became the keeper herself. She trained two helpers from the harbour.",
        "Gulls nest on the ledge below the window. Their chicks call loudly before the tide.",
        "A painter spent one summer drawing the tower. Her pictures hang in the town hall.",
    ]
)

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


def command(out: Path, story: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lst_lightning.data.corpora.embedded",
        "--out",
        str(out),
        "--text-file",
        str(story),
        "--utterances",
        "6",
        "--heldout-utterances",
        "0",
        "--shard-size",
        "2",
        "--valid-fraction",
        "0.25",
        "--voices",
        "en-us+m3",
        "en+f2",
        "--num-units",
        "16",
        "--text-vocab-size",
        "320",
        "--workers",
        "1",
    ]


def test_killed_build_resumes_from_its_shards(tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text(STORY)
    out = tmp_path / "B"
    shards = tmp_path / "B.work" / "shards"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        command(out, story),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(shards.glob("*/shard.json"))) < 2:
            assert first.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "no two shards within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in shards.glob("*/shard.json")}
    assert 2 <= len(done) < 3, done

    rerun = subprocess.run(command(out, story), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "another configuration" not in rerun.stdout, rerun.stdout
    assert "resuming the interrupted build" in rerun.stdout
    redone = [line for line in rerun.stdout.splitlines() if "synthesised shard" in line]
    assert len(redone) == 3 - len(done), rerun.stdout
    assert not (tmp_path / "B.work").exists() and (out / "train.jsonl").is_file()
    assert not (tmp_path / "B.lock").exists(), "the lock must be released"
