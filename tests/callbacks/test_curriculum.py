"""Every training batch is patched for its own step (with workers, gradient accumulation and DDP,
with or without the callback), a resume continues the schedule exactly, and the callback logs the
patching and mixture statistics."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from lst_lightning.callbacks import CurriculumCallback
from lst_lightning.data.stream.batch import PackedBatch
from lst_lightning.lit.datamodule import SpeechTextDataModule

SWITCH = 6
"""Curriculum with start == end == SWITCH: every document aligned before it, static from it on."""


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
    """Interleaved documents only, tiny rows: a few documents per batch, 240 utterances keep a
    short fit inside one pass."""
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


def check_switch(seen: list[tuple[int, int, int, int]]) -> None:
    """Every speech document of a batch trained before SWITCH is aligned, from SWITCH on static."""
    assert {epoch for _, epoch, _, _ in seen} == {0}, "the run must stay in one pass"
    before = [(a, s) for step, _, a, s in seen if step < SWITCH]
    after = [(a, s) for step, _, a, s in seen if step >= SWITCH]
    assert sum(s for _, s in before) > 0 and sum(s for _, s in after) > 0
    assert all(a == s for a, s in before), before
    assert all(a == 0 for a, _ in after), after


@pytest.mark.parametrize("num_workers,accumulate", [(0, 1), (2, 1), (2, 2)])
def test_every_batch_is_patched_for_its_step(speech_corpus: Path, num_workers, accumulate) -> None:
    for callbacks in ([CurriculumCallback()], []):  # the data needs no callback
        model = Recorder()
        fit = trainer(SWITCH + 8, callbacks, accumulate_grad_batches=accumulate)
        fit.fit(model, datamodule=datamodule(speech_corpus, num_workers))
        check_switch(model.seen)
        steps = [step for step, *_ in model.seen]
        assert steps == [b // accumulate for b in range((SWITCH + 8) * accumulate)]


class RankDump(L.Callback):
    """Writes each rank's recorded batches to ``<rank>.json`` (ddp_fork trains in child processes)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer, pl_module) -> None:
        (self.out / f"{trainer.global_rank}.json").write_text(json.dumps(pl_module.seen))


def test_every_rank_patches_for_the_step_under_ddp(speech_corpus: Path, tmp_path: Path) -> None:
    callbacks = [CurriculumCallback(), RankDump(tmp_path)]
    fit = trainer(SWITCH + 6, callbacks, strategy="ddp_fork", devices=2)
    fit.fit(Recorder(), datamodule=datamodule(speech_corpus, 0))
    seen = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    for rank_seen in seen:
        check_switch([tuple(x) for x in rank_seen])
    # the ranks trained on different documents (sharded), at the same steps
    assert [x[0] for x in seen[0]] == [x[0] for x in seen[1]] == list(range(SWITCH + 6))
    assert seen[0] != seen[1]


def test_resume_continues_the_schedule(speech_corpus: Path, tmp_path: Path) -> None:
    every = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=tmp_path, every_n_train_steps=SWITCH - 2, save_top_k=-1, filename="{step}"
    )
    full = Recorder()
    run = trainer(SWITCH + 5, [CurriculumCallback(), every], enable_checkpointing=True)
    run.fit(full, datamodule=datamodule(speech_corpus, 2))
    resumed = Recorder()
    second = trainer(SWITCH + 5, [CurriculumCallback()])
    ckpt = tmp_path / f"step={SWITCH - 2}.ckpt"
    second.fit(resumed, datamodule=datamodule(speech_corpus, 2), ckpt_path=ckpt)
    steps = [step for step, _, _, _ in resumed.seen]
    assert steps == list(range(SWITCH - 2, SWITCH + 5))
    assert resumed.seen == full.seen[SWITCH - 2 :]  # the same documents, patched the same way
    check_switch(full.seen)


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
    shares = [
        float(r["mixture/interleaved_token_share"])
        for r in table
        if r.get("mixture/interleaved_token_share")
    ]
    assert shares == [1.0] * 8  # this datamodule's mixture is all interleaved
    assert all(
        float(r["mixture/text_token_share"]) == 0.0
        for r in table
        if r.get("mixture/text_token_share")
    )


def test_mixture_shares_are_cumulative_and_checkpointed() -> None:
    cb = CurriculumCallback()
    assert cb.mixture_shares([0, 0, 0]) == {}
    assert cb.mixture_shares([1, 1, 2]) == {
        "interleaved_token_share": 0.25,
        "speech_only_token_share": 0.25,
        "text_token_share": 0.5,
    }
    cb.mixture_units = [3, 0, 6]
    again = CurriculumCallback()
    again.load_state_dict(cb.state_dict())
    assert again.mixture_units == [3, 0, 6]


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

    with pytest.raises(TypeError, match="aligned_probability"):
        CurriculumCallback()._datamodule(FakeTrainer())
