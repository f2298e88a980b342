"""The curriculum callback drives the patching of documents built in worker processes, continues
after a resume, and logs the patching statistics."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from lst_lightning.callbacks import CurriculumCallback
from lst_lightning.data.stream.batch import PackedBatch
from lst_lightning.lit.datamodule import SpeechTextDataModule

SWITCH = 6
"""Curriculum with start == end == SWITCH: every document aligned before it, static from it on."""
LAG = 8
"""Batches built before the switch that may still arrive after it (2 workers x prefetch 2, plus a
row being filled)."""


class Recorder(L.LightningModule):
    """Records, per training batch, the step and how many speech documents were patched aligned."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, int, int, int]] = []

    def training_step(self, batch: PackedBatch, batch_idx: int) -> torch.Tensor:
        self.seen.append(
            (
                self.trainer.global_step,
                self.current_epoch,
                int(batch.aligned_docs.sum()),
                int(batch.speech_docs.sum()),
            )
        )
        return self.weight * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def datamodule(corpus: Path, num_workers: int, **patching) -> SpeechTextDataModule:
    return SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        mixture={"interleaved": 1.0},
        patching={"strategy": "curriculum", "start": SWITCH, "end": SWITCH, **patching},
        packing={"max_patches": 32, "max_tokens": 64},
        loader={"batch_size": 2, "num_workers": num_workers},
    )


def trainer(max_steps: int, callbacks: list, **kwargs) -> L.Trainer:
    options = {"logger": False, "enable_checkpointing": False, **kwargs}
    return L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
        **options,
    )


def test_workers_follow_the_published_step(speech_corpus: Path) -> None:
    results = {}
    for name, callbacks in (("callback", [CurriculumCallback()]), ("none", [])):
        model = Recorder()
        trainer(SWITCH + LAG + 8, callbacks).fit(model, datamodule=datamodule(speech_corpus, 2))
        assert {epoch for _, epoch, _, _ in model.seen} == {0}, "the run must stay in one epoch"
        results[name] = model.seen
    for seen in results.values():  # probability 1 before the switch: every speech doc aligned
        before = [(a, s) for step, _, a, s in seen if step < SWITCH]
        assert before and all(a == s for a, s in before) and sum(s for _, s in before) > 0
    after = [(a, s) for step, _, a, s in results["callback"] if step >= SWITCH + LAG]
    assert sum(s for _, s in after) > 0 and all(a == 0 for a, _ in after)
    # Without the callback the workers never learn that the step moved.
    stale = [(a, s) for step, _, a, s in results["none"] if step >= SWITCH + LAG]
    assert all(a == s for a, s in stale) and sum(s for _, s in stale) > 0


def test_resume_continues_the_schedule(speech_corpus: Path, tmp_path: Path) -> None:
    first = trainer(SWITCH, [CurriculumCallback()])
    model = Recorder()
    first.fit(model, datamodule=datamodule(speech_corpus, 2))
    assert all(a == s for _, _, a, s in model.seen)
    ckpt = tmp_path / "at_switch.ckpt"
    first.save_checkpoint(ckpt)

    resumed = Recorder()
    second = trainer(SWITCH + 5, [CurriculumCallback()])
    second.fit(resumed, datamodule=datamodule(speech_corpus, 2), ckpt_path=ckpt)
    steps = [step for step, _, _, _ in resumed.seen]
    assert steps == list(range(SWITCH, SWITCH + 5))
    # From the first resumed batch on, documents are patched for step >= SWITCH: all static.
    assert sum(s for *_, s in resumed.seen) > 0
    assert all(a == 0 for _, _, a, _ in resumed.seen)


def test_logs_patching_statistics(speech_corpus: Path, tmp_path: Path) -> None:
    model = Recorder()
    dm = datamodule(speech_corpus, 0, start=0.25, end=0.75)
    fit = trainer(
        8,
        [CurriculumCallback()],
        logger=L.pytorch.loggers.CSVLogger(tmp_path, name="log", version="v"),
        log_every_n_steps=1,
    )
    fit.fit(model, datamodule=dm)
    assert (dm.schedule.curriculum_start, dm.schedule.curriculum_end) == (2, 6)
    rows = (tmp_path / "log" / "v" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    table = [dict(zip(header, r.split(","), strict=True)) for r in rows[1:]]
    probs = [float(r["patching/aligned_prob"]) for r in table if r.get("patching/aligned_prob")]
    assert probs == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    for tag in (
        "patching/aligned_fraction",
        "patching/static_fraction",
        "patching/units_per_speech_patch",
        "patching/positions_per_second",
        "patching/compression",
    ):
        assert any(r.get(tag) for r in table), f"{tag} not logged"
    fractions = [
        float(r["patching/aligned_fraction"]) for r in table if r["patching/aligned_fraction"]
    ]
    assert fractions[0] == 1.0 and fractions[-1] == 0.0


def test_ratios_of_counts() -> None:
    cb = CurriculumCallback(frame_rate_hz=25.0)
    # 4 speech docs, 1 aligned, 100 frames in 25 speech patches, 300 tokens in 150 positions
    stats = torch.tensor([4, 1, 100, 25, 300, 150], dtype=torch.float64)
    assert cb.ratios(stats) == {
        "aligned_fraction": 0.25,
        "static_fraction": 0.75,
        "units_per_speech_patch": 4.0,
        "positions_per_second": 6.25,
        "compression": 2.0,
    }
    assert cb.ratios(torch.tensor([0, 0, 0, 0, 10, 10], dtype=torch.float64)) == {
        "compression": 1.0
    }
    with pytest.raises(ValueError, match="frame_rate_hz"):
        CurriculumCallback(frame_rate_hz=0)


def test_needs_a_publishing_datamodule() -> None:
    class Plain(L.LightningDataModule):
        pass

    class FakeTrainer:
        datamodule = Plain()

    with pytest.raises(TypeError, match="publish_step"):
        CurriculumCallback()._datamodule(FakeTrainer())
