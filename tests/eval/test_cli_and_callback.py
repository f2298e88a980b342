"""``python -m lst_lightning.eval`` on a checkpoint, and the Lightning callback at test time."""

from __future__ import annotations

import json

import lightning as L
import torch

from lst_lightning.callbacks.eval_callback import BenchmarkEvalCallback
from lst_lightning.eval.__main__ import main
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.lit.module import SpeechTextLM

from .conftest import tiny_lst_config


def test_cli_writes_json_markdown_and_tensorboard(
    tmp_path, eval_corpus, sets_dir, capsys, make_checkpoint
):
    """The checkpoint is laid out like the CLI's: <run>/checkpoints/last.ckpt."""
    ckpt = make_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.ckpt", eval_corpus, tiny_lst_config(0)
    )
    rc = main(["--ckpt", str(ckpt), "--limit", "3", "--sets", "topic", "swuggy"])
    assert rc == 0
    out_dir = tmp_path / "run" / "eval" / "step_1"
    doc = json.loads((out_dir / "results.json").read_text())
    rows = {(r["benchmark"], r["direction"]) for r in doc["results"]}
    assert rows == {("topic", d) for d in ("S->S", "T->T", "S->T", "T->S")} | {
        ("swuggy", "S->S"),
        ("swuggy", "T->T"),
    }
    assert doc["headline_rule"] == "per_char" and doc["step"] == 1 and doc["patch_size"] == 4
    table = (out_dir / "results.md").read_text()
    assert "| topic | S->T |" in table and "| swuggy | T->T |" in table
    assert "No-model heuristics" in table and "best no-model heuristic" in table
    assert list(out_dir.glob("events.out.tfevents.*")), "TensorBoard events beside the results"
    assert not list((tmp_path / "run").glob("events.out.tfevents.*")), "wrote into the run"
    printed = capsys.readouterr().out
    assert "| benchmark | direction | headline |" in printed
    assert main(["--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert main(["--ckpt", str(ckpt), "--sets", "nope"]) == 2
    assert "no benchmark named nope" in capsys.readouterr().err


class _TestableData(SpeechTextDataModule):
    def test_dataloader(self):
        return self.val_dataloader()


def test_callback_logs_and_writes_results_at_test_time(tmp_path, eval_corpus, sets_dir):
    torch.manual_seed(0)
    dm = _TestableData(
        corpus={"data_dir": str(eval_corpus)},
        packing={"max_tokens": 256, "max_patches": 128},
        loader={"batch_size": 2},
    )
    module = SpeechTextLM(network=tiny_lst_config(dm.vocab_size), vocab_size=dm.vocab_size)
    callback = BenchmarkEvalCallback(sets=["storycloze"], directions=["S->S", "T->S"], test_limit=4)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        callbacks=[callback],
        limit_test_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        logger=L.pytorch.loggers.CSVLogger(tmp_path, name="csv", version="v"),
    )
    [metrics] = trainer.test(module, datamodule=dm)
    assert {"eval/storycloze/s2s/per_char", "eval/storycloze/t2s/sum"} <= set(metrics)
    assert [(r.benchmark, r.direction, r.items) for r in callback.last_results] == [
        ("storycloze", "S->S", 4),
        ("storycloze", "T->S", 4),
    ]
    results = tmp_path / "csv" / "v" / "results.json"  # the test run's own log folder
    assert json.loads(results.read_text())["results"][0]["items"] == 4
    assert "No-model heuristics" in results.with_name("results.md").read_text()
