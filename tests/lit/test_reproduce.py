"""``python -m lst_lightning.reproduce`` trains, evaluates and tabulates the systems it is given."""

from __future__ import annotations

from pathlib import Path

from lst_lightning.reproduce import main

ROOT = Path(__file__).resolve().parents[2]


def test_reproduce_writes_one_row_per_system(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "reproduction.md"
    fit = [
        f"--data.corpus.data_dir={tiny_corpus}",
        "--trainer.max_steps=3",
        "--trainer.val_check_interval=3",
        "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=1",
        "--model.optim.warmup_steps=1",
        "--data.loader.batch_size=2",
        "--data.packing.max_tokens=128",
    ]
    rc = main(
        [
            "--systems", "tiny_baseline", "tiny_lst_curriculum",
            "--runs", str(tmp_path / "runs"),
            "--out", str(out),
            "--root", str(ROOT),
            "--fit-args", " ".join(fit),
            "--eval-args", "--limit 4 --sets swuggy",
        ]
    )  # fmt: skip
    assert rc == 0
    text = out.read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| Base") or line.startswith("| LST")
    ]
    assert len(rows) == 2
    assert "swuggy S->S" in text and "swuggy T->T" in text
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) > 0  # val loss was logged
        assert float(cells[5]) > 0  # FLOPs were counted
    assert (tmp_path / "runs" / "tiny_baseline" / "run" / "checkpoints" / "last.ckpt").is_file()
