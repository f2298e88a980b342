"""Row 11: ``stages all`` rerun with another ``--folder`` or ``--num-units`` refuses the old output
(naming what differs) instead of skipping every stage as complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.records import read_aligned_jsonl
from lst_lightning.data.speech import stages

from .stage_inputs import make_audio_folder


def run_all(work: Path, folder: Path, num_units: int) -> int:
    return stages.main(
        ["all", "--work", str(work), "--folder", str(folder), "--num-units", str(num_units)]
        + ["--timings", f"{folder}.timings.jsonl"]
    )


def test_rerun_with_other_settings_refuses_stale_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_audio_folder(tmp_path, "first")
    second = make_audio_folder(tmp_path, "second", shift=1)
    work = tmp_path / "work"
    assert run_all(work, first, 8) == 0
    exported = (work / "aligned.jsonl").read_bytes()
    capsys.readouterr()

    assert run_all(work, first, 8) == 0  # same settings: every stage is reused
    assert capsys.readouterr().out.count("skipping") == 5

    assert run_all(work, second, 8) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "source" in err and "second" in err, err

    assert run_all(work, first, 12) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "num_units" in err, err
    assert (work / "aligned.jsonl").read_bytes() == exported  # nothing was half-redone

    # --force redoes the chain with the new settings
    assert (
        stages.main(
            ["all", "--work", str(work), "--folder", str(first), "--num-units", "12", "--force"]
            + ["--timings", f"{first}.timings.jsonl"]
        )
        == 0
    )
    assert max(u for x in read_aligned_jsonl(work / "aligned.jsonl", 12) for u in x.units) < 12
    assert stages.read_stage_info(work / "units")["num_units"] == 12
