"""Row 5: bytes that are not UTF-8 are errors naming the file and line, and an ingest with
``--on-error skip`` skips and counts the record with the Latin-1 transcript."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.speech import stages

from .stage_inputs import make_audio_folder


def _spoil_line(path: Path, lineno: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = lines[lineno - 1][:20] + b"\xff" + lines[lineno - 1][20:]
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("name", ["train.jsonl", "text_train.txt"])
def test_undecodable_corpus_file_names_file_and_line(
    corpus_copy: Path,
    make_datamodule,
    name: str,
) -> None:
    _spoil_line(corpus_copy / name, 3)
    dm = make_datamodule(corpus_copy)
    with pytest.raises(ValueError, match=rf"{name}:3: not valid UTF-8 \(byte 0xff"):
        dm.setup("fit")


def test_latin1_transcript_is_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_audio_folder(tmp_path, count=3)
    (folder / "utt1.txt").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    out = tmp_path / "ingest"
    assert stages.main(["ingest", "--out", str(out), "--folder", str(folder)]) == 1
    assert "utt1: transcript not UTF-8" in capsys.readouterr().err
    assert (
        stages.main(["ingest", "--out", str(out), "--folder", str(folder), "--on-error", "skip"])
        == 0
    )
    info = stages.read_stage_info(out)
    assert info["records"] == 2 and info["skipped"] == {"transcript not UTF-8": 1}
