"""Row 10: a corpus without ``stats.json`` trains, and ``make data`` keeps it instead of asking
the user to delete it (``stats.json`` is informational)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lst_lightning.data.corpora import embedded


def test_a_corpus_without_stats_json_is_used(corpus_copy: Path, make_datamodule) -> None:
    (corpus_copy / "stats.json").unlink()
    dm = make_datamodule(corpus_copy)  # default build: must not try to (re)build or refuse
    dm.setup("fit")
    assert next(iter(dm.train_dataloader())).tokens.numel() > 0


def test_make_data_keeps_an_embedded_corpus_without_stats_json(
    corpus_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "embedded"
    shutil.copytree(corpus_copy, out)
    (out / "stats.json").unlink()
    for name in ("heldout_voice.jsonl", "units.pt"):
        (out / name).write_bytes(b"")
    (out / "heldout_voice_audio").mkdir()
    config = embedded.EmbeddedConfig()
    (out / "build.json").write_text(
        json.dumps({"config": config.to_json(), "digest": config.digest()})
    )
    assert embedded.main(["--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "remove it" not in printed.err + printed.out
    assert (out / "train.jsonl").is_file()
