from __future__ import annotations

import itertools
import shutil

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import lst_lightning.lit.datamodule as module
from lst_lightning.data.corpora.build import build_generated_corpus
from lst_lightning.data.stream.batch import PAD_DOC, PackedBatch
from lst_lightning.data.stream.packing import collate
from lst_lightning.lit.datamodule import SpeechTextDataModule


@pytest.fixture
def data_dir(tiny_corpus, tmp_path):
    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, out)
    return out


@pytest.mark.parametrize("packing", ["patches", "tokens"])
def test_batches_are_valid(data_dir, packing, make_datamodule):
    dm = make_datamodule(data_dir, packing={"mode": packing})
    assert dm.vocab_size == dm.token_space.vocab_size == dm.token_space.unit_offset + 501
    dm.setup("fit")
    train = list(itertools.islice(dm.train_dataloader(), 12))  # the training stream is endless
    for batches in (train, list(dm.val_dataloader())):
        assert batches
        for batch in batches:
            assert isinstance(batch, PackedBatch)
            batch.validate()
            assert batch.tokens.shape[1] == 64
            assert batch.patch_lengths.shape[1] == (32 if packing == "patches" else 64)
            assert batch.tokens.max() < dm.vocab_size


def test_builds_the_generated_corpus_when_missing(tmp_path, monkeypatch):
    calls = []

    def small_build(out, num_units, **kwargs):
        calls.append(out)
        return build_generated_corpus(out, num_utterances=20, num_text_docs=40, num_units=num_units)

    monkeypatch.setattr(module, "build_generated_corpus", small_build)
    new = {"data_dir": str(tmp_path / "new"), "build": "generated"}
    dm = SpeechTextDataModule(corpus=new)
    assert (tmp_path / "new" / "tokenizer.model").is_file() and dm.vocab_size > 501
    SpeechTextDataModule(corpus=new)
    assert len(calls) == 1


def test_missing_corpus_without_a_build_is_a_clear_error(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"data.corpus.data_dir=.*nothing does not exist.*build is .none."
    ):
        SpeechTextDataModule(corpus={"data_dir": str(tmp_path / "nothing"), "build": "none"})


def real_sum(batch: PackedBatch) -> int:
    """A fingerprint of a batch's real tokens (padding depends on how workers split the data)."""
    return int(batch.tokens[batch.doc_ids != PAD_DOC].sum())


class Recorder(L.LightningModule):
    """Records a fingerprint of every training batch; learns nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch: PackedBatch, batch_idx: int) -> torch.Tensor:
        self.seen.setdefault(self.current_epoch, []).append(real_sum(batch))
        return self.weight * 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_epoch_gets_a_new_pattern_under_lightning(data_dir, num_workers, make_datamodule):
    dm = make_datamodule(
        data_dir,
        mixture={"interleaved": 0.5},
        loader={"num_workers": num_workers, "endless": False},
    )
    model = Recorder()
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    assert sorted(model.seen) == [0, 1, 2]
    assert len({tuple(v) for v in model.seen.values()}) == 3
    # and epoch e reproduces what the dataset gives for epoch e on its own
    dm._train.set_epoch(1)
    plain = DataLoader(dm._train, batch_size=4, collate_fn=collate)
    if num_workers == 0:
        assert [real_sum(b) for b in plain] == model.seen[1]
    else:  # workers interleave their batches, so compare the totals
        assert sum(real_sum(b) for b in plain) == sum(model.seen[1])


@pytest.mark.parametrize(
    "patching", ["static", "aligned", "aligned_merged", "aligned_bpe", "mixed", "curriculum"]
)
def test_every_patching_strategy_gives_valid_batches(data_dir, patching, make_datamodule):
    dm = make_datamodule(
        data_dir,
        max_tokens=96,
        mixture={"interleaved": 1.0},
        patching={"strategy": patching, "start": 5, "end": 10},
    )
    dm.setup("fit")
    batches = list(itertools.islice(dm.train_dataloader(), 4))  # steps 0-3
    for train in batches:
        train.validate()
    aligned = torch.cat([b.aligned_docs for b in batches])
    speech = torch.cat([b.speech_docs for b in batches])
    expect_aligned = patching != "static"  # steps < 5: curriculum probability 1; mixed draws
    if patching == "mixed":
        assert 0 < aligned.sum() < speech.sum()
    else:
        assert torch.equal(aligned, speech * expect_aligned)
    for batch in dm.val_dataloader():  # validation is always static
        assert batch.aligned_docs.sum() == 0 and batch.patch_lengths.max() <= 4


def test_curriculum_bounds(data_dir):
    corpus = {"data_dir": str(data_dir)}
    dm = SpeechTextDataModule(corpus=corpus, patching={"strategy": "curriculum"})
    with pytest.raises(ValueError, match="fraction of trainer.max_steps"):
        dm.schedule  # noqa: B018 - no trainer, so max_steps is unknown
    schedule = dm.resolve_schedule(300)
    assert (schedule.curriculum_start, schedule.curriculum_end) == (100, 200)
    assert schedule.aligned_probability(150) == 0.5
    steps = SpeechTextDataModule(
        corpus=corpus, patching={"strategy": "curriculum", "start": 5, "end": 9}
    )
    assert steps.aligned_probability(7) == 0.5 and steps.aligned_probability(9) == 0.0
    with pytest.raises(ValueError, match="must not come after"):
        SpeechTextDataModule(
            corpus=corpus, patching={"strategy": "curriculum", "start": 9, "end": 5}
        )
    with pytest.raises(ValueError, match=r"data.patching.end=1.5 is a fraction"):
        SpeechTextDataModule(corpus=corpus, patching={"end": 1.5})
    with pytest.raises(ValueError, match="data.patching.strategy must be one of"):
        SpeechTextDataModule(corpus=corpus, patching={"strategy": "dynamic"})
    with pytest.raises(ValueError, match="has no effect with data.packing.mode='tokens'"):
        SpeechTextDataModule(
            corpus=corpus, packing={"mode": "tokens"}, patching={"strategy": "mixed"}
        )
    with pytest.raises(ValueError, match="data.corpus.speech_tokenizer must be one of"):
        SpeechTextDataModule(corpus={**corpus, "speech_tokenizer": "chars"})
    with pytest.raises(ValueError, match=r"data.patching has no option curriculum_end"):
        SpeechTextDataModule(corpus=corpus, patching={"curriculum_end": 5})
    with pytest.raises(ValueError, match=r"data.loader.batch_size must be an integer >= 1"):
        SpeechTextDataModule(corpus=corpus, loader={"batch_size": 0})


def test_bpe_speechllm_data(data_dir, make_datamodule):
    bpe = {"speech_tokenizer": "bpe"}
    dm = make_datamodule(data_dir, packing={"mode": "tokens"}, corpus=bpe)
    cached = data_dir / "unit_bpe_1000.model"
    assert dm.token_space.speech_tokenizer == "bpe" and cached.is_file()
    units = make_datamodule(data_dir, packing={"mode": "tokens"})
    assert dm.vocab_size == units.token_space.unit_offset + dm.token_space.num_speech_tokens
    stamp = cached.stat().st_mtime_ns
    again = make_datamodule(data_dir, packing={"mode": "tokens"}, corpus=bpe)
    assert again.vocab_size == dm.vocab_size and cached.stat().st_mtime_ns == stamp  # cached
    dm.setup("fit")
    frames = tokens = 0
    for batch in itertools.islice(dm.train_dataloader(), 20):
        batch.validate()
        assert batch.tokens.max() < dm.vocab_size
        frames += int(batch.speech_frames.sum())
        tokens += int(dm.token_space.is_unit(batch.tokens).sum())
    assert 0 < tokens < frames  # each speech token stands for more than one unit frame on average
    # the mixture is counted in units, so the unit-BPE baseline trains on the same documents
    units.setup("fit")
    assert dm._train.epoch_plan() == units._train.epoch_plan()
    with pytest.raises(ValueError, match="needs one token per unit frame"):
        make_datamodule(data_dir, corpus=bpe, patching={"strategy": "aligned"}).setup("fit")


class StepRecorder(Recorder):
    """Records the fingerprint of the batch of every optimiser step."""

    def __init__(self) -> None:
        super().__init__()
        self.by_step: dict[int, int] = {}

    def training_step(self, batch: PackedBatch, batch_idx: int) -> torch.Tensor:
        self.by_step[self.global_step] = real_sum(batch)
        return self.weight * 0.0


def fit_steps(dm, tmp_path, max_steps, ckpt_path=None) -> StepRecorder:
    model = StepRecorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        callbacks=[
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=tmp_path, every_n_train_steps=5, save_top_k=-1, filename="{step}"
            )
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_stream_is_endless_and_resumes_mid_epoch_exactly(
    data_dir, tmp_path, num_workers, make_datamodule
):
    def loader():
        return make_datamodule(data_dir, loader={"num_workers": num_workers})

    dm = make_datamodule(data_dir)
    dm.setup("fit")
    per_epoch = sum(1 for _ in DataLoader(dm._train, batch_size=4, collate_fn=collate))
    steps = per_epoch + 8  # crosses a pass boundary, which an endless stream must not end on
    full = fit_steps(loader(), tmp_path / "full", steps)
    assert sorted(full.by_step) == list(range(steps))
    resumed = fit_steps(loader(), tmp_path / "resumed", steps, tmp_path / "full" / "step=5.ckpt")
    assert sorted(resumed.by_step) == list(range(5, steps))
    assert [resumed.by_step[s] for s in range(5, steps)] == [
        full.by_step[s] for s in range(5, steps)
    ]


def test_loader_state_places_the_pass_in_the_run(data_dir, make_datamodule):
    """The checkpointed stream position sets the dataset's pass and first batch before workers
    start; a checkpoint written before the position was saved is placed by the global step."""
    dm = make_datamodule(data_dir)
    dm.setup("fit")
    loader = module.EpochDataLoader(dm._train, lambda: 7, batch_size=4, collate_fn=collate)
    loader.load_state_dict({"epoch": 1, "batches": 2, "first_batch": 17})
    next(iter(loader))
    assert (dm._train.epoch, dm._train.first_batch) == (1, 17)
    old = module.EpochDataLoader(
        dm._train, lambda: 7, accumulate=2, batch_size=4, collate_fn=collate
    )
    old.load_state_dict({"epoch": 0, "batches": 3})
    next(iter(old))
    assert (dm._train.epoch, dm._train.first_batch, dm._train.accumulate) == (0, 11, 2)
    assert dm._train.step_of_row(8, worker=1, num_workers=2) == (11 + 2 * 2 + 1) // 2
