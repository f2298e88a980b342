from __future__ import annotations

import json

import pytest

from lst_lightning.data.corpora.build import build_generated_corpus, corpus_is_complete, main


def test_cli_builds_once_and_reports(tmp_path, capsys):
    out = tmp_path / "data" / "generated"
    assert main(["--out", str(out), "--utterances", "40", "--text-docs", "60", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert f"built {out}" in printed
    assert (
        "train: 38 utterances" in printed
        and "57 text documents" in printed
        and " h at 25 Hz" in printed
    )
    assert corpus_is_complete(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["generated"]  # no temp folder left
    stats = json.loads((out / "stats.json").read_text())
    assert stats["seed"] == 5 and stats["splits"]["valid"]["utterances"] == 2
    before = (out / "train.jsonl").read_bytes()
    main(["--out", str(out), "--utterances", "40", "--text-docs", "60", "--seed", "6"])
    captured = capsys.readouterr()
    assert "already exists" in captured.out and "--force" in captured.err
    assert (out / "train.jsonl").read_bytes() == before
    main(["--out", str(out), "--utterances", "40", "--text-docs", "60", "--seed", "6", "--force"])
    assert (out / "train.jsonl").read_bytes() != before
    assert sorted(p.name for p in out.parent.iterdir()) == ["generated"]


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "train.jsonl").write_text("")
    with pytest.raises(FileExistsError, match="not a complete generated corpus"):
        build_generated_corpus(tmp_path / "x", num_utterances=10, num_text_docs=10)
    empty = tmp_path / "empty"
    empty.mkdir()
    build_generated_corpus(empty, num_utterances=10, num_text_docs=10)
    assert corpus_is_complete(empty)
