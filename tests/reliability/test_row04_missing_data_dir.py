"""Row 4: a ``data_dir`` that does not exist (a typo) is an error naming it, not a new corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.corpora import build, embedded
from lst_lightning.lit import datamodule


def test_a_mistyped_data_dir_is_an_error_and_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    def no_build(out, *args, **kwargs):
        built.append(str(out))
        raise AssertionError(f"a corpus was built into {out}")

    monkeypatch.setattr(embedded, "build_embedded_corpus", no_build)
    monkeypatch.setattr(datamodule, "build_generated_corpus", no_build)
    typo = tmp_path / "data" / "embeded"
    with pytest.raises(FileNotFoundError) as error:
        datamodule.SpeechTextDataModule(corpus={"data_dir": str(typo)})
    assert str(typo) in str(error.value) and "--data.corpus.build" in str(error.value)
    assert not built and not typo.exists()

    # an explicit build is honoured
    monkeypatch.setattr(datamodule, "build_generated_corpus", build.build_generated_corpus)
    dm = datamodule.SpeechTextDataModule(corpus={"data_dir": str(typo), "build": "generated"})
    assert dm.vocab_size > 0 and (typo / "train.jsonl").is_file()
