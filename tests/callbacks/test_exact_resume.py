"""A run resumed from a mid-run checkpoint reproduces the uninterrupted run bit for bit on the CPU:
every logged value of every step after the checkpoint (loss and its split, tokens_seen, FLOPs, the
patching statistics, the curriculum probability, the cumulative mixture shares), for every patching
strategy, with and without DataLoader workers, across a pass boundary and with gradient
accumulation."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch

from lst_lightning.callbacks import CurriculumCallback
from lst_lightning.data.corpora.synthetic import generate_corpus
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.lit.module import SpeechTextLM
from lst_lightning.lit.optim import OptimConfig
from lst_lightning.model import LSTConfig, TransformerConfig

STEPS = 30
"""Optimizer steps of the uninterrupted run; a pass over the corpus is about 13 batches."""
RESUME_AT = 20
"""The checkpoint the second run resumes from: inside the second pass, mid-curriculum."""
CURRICULUM = {"start": 8, "end": 26}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume_corpus")
    generate_corpus(out, num_utterances=36, num_text_docs=24, seed=5)
    return out


class StepLosses(L.Callback):
    """Every step's loss, tokens_seen and patching counts, exactly (not through the logger)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.step = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rows.append(
            (
                self.step,
                batch_idx,
                float(outputs["loss"]),
                int(pl_module.tokens_seen),
                int(batch.aligned_docs.sum()),
                int(batch.speech_docs.sum()),
                tuple(batch.mixture_units.sum(dim=0).tolist()),
            )
        )


def fit(
    corpus: Path,
    out: Path,
    strategy: str,
    num_workers: int,
    accumulate: int,
    ckpt_path: Path | None = None,
    loader: dict | None = None,
    steps: int = STEPS,
    every: int = RESUME_AT,
) -> tuple[list[tuple], list[dict[str, str]]]:
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        mixture={"interleaved": 0.4, "speech_only": 0.2},
        patching={"strategy": strategy, "aligned_prob": 0.5, **CURRICULUM},
        packing={"max_patches": 32, "max_tokens": 96},
        loader={"batch_size": 2, "num_workers": num_workers, **(loader or {})},
    )
    torch.manual_seed(0)
    network = LSTConfig(
        vocab_size=dm.vocab_size,
        encoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=16),
        global_model=TransformerConfig(n_layers=1, d_model=32, n_heads=2),
        decoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=16),
    )
    module = SpeechTextLM(network, OptimConfig(lr=3e-3, warmup_steps=4), vocab_size=dm.vocab_size)
    recorder = StepLosses()
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        accumulate_grad_batches=accumulate,
        logger=L.pytorch.loggers.CSVLogger(out, name="log", version="v"),
        log_every_n_steps=1,
        callbacks=[
            CurriculumCallback(),
            recorder,
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=out / "ckpt",
                every_n_train_steps=every,
                save_top_k=-1,
                filename="{step}",
            ),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend on a shared CPU
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=False)
    finally:
        torch.set_num_threads(threads)
    with (out / "log" / "v" / "metrics.csv").open() as f:
        logged = [row for row in csv.DictReader(f) if row.get("train/loss")]
    return recorder.rows, logged


def check_resume_is_exact(corpus: Path, tmp_path: Path, strategy, num_workers, accumulate=1):
    full_rows, full_log = fit(corpus, tmp_path / "full", strategy, num_workers, accumulate)
    assert [r[0] for r in full_rows[::accumulate]] == list(range(STEPS))
    ckpt = tmp_path / "full" / "ckpt" / f"step={RESUME_AT}.ckpt"
    rows, log = fit(corpus, tmp_path / "resumed", strategy, num_workers, accumulate, ckpt)
    assert rows == full_rows[RESUME_AT * accumulate :]
    tail = [r for r in full_log if int(r["step"]) >= RESUME_AT]
    assert len(log) == len(tail) == (STEPS - RESUME_AT)
    # every value logged at a step, as written (repr of the float: bit for bit). Lightning's CSV
    # rows repeat a tag's last value in steps that did not log it (a text-only batch has no speech
    # loss); a resumed run starts without those stale values, so only its own values are compared.
    differ = [
        (r["step"], t, v, f.get(t))
        for r, f in zip(log, tail, strict=True)
        for t, v in r.items()
        if v != "" and v != f.get(t)
    ]
    compared = sum(v != "" for r in log for v in r.values())
    assert compared > 10 * len(log)
    assert not differ, differ[:5]
    wanted = {"train/tokens_seen", "patching/aligned_prob", "mixture/interleaved_token_share"}
    assert wanted <= set(log[0])
    assert len({r[2] for r in full_rows}) > STEPS // 2  # the loss moves: the model trains
    return full_rows


FAST = [("curriculum", 0), ("curriculum", 2), ("mixed", 2), ("static", 0)]
SLOW = [
    (s, w)
    for s in ("static", "aligned", "aligned_merged", "aligned_bpe", "mixed", "curriculum")
    for w in (0, 2)
    if (s, w) not in FAST
]


@pytest.mark.parametrize(
    "strategy,num_workers",
    FAST + [pytest.param(s, w, marks=pytest.mark.slow) for s, w in SLOW],
)
def test_resume_reproduces_the_run_bit_for_bit(small_corpus, tmp_path, strategy, num_workers):
    rows = check_resume_is_exact(small_corpus, tmp_path, strategy, num_workers)
    aligned = [r[4] for r in rows]
    if strategy == "curriculum":  # the schedule moved during the run: aligned, then static
        assert aligned[0] > 0 and sum(aligned[CURRICULUM["end"] :]) == 0


def test_resume_is_exact_with_gradient_accumulation(small_corpus, tmp_path):
    check_resume_is_exact(small_corpus, tmp_path, "curriculum", 2, accumulate=2)


def test_a_changed_loader_is_refused_or_resumed_as_a_fresh_pass(small_corpus, tmp_path):
    """Shards and steps are counted in the loader's workers and batches: a checkpoint resumed with
    another ``num_workers`` / ``batch_size`` is an error naming both values and the option, unless
    ``data.loader.resume_reshard`` asks for a fresh pass (the next epoch) from the saved step."""
    full, _ = fit(small_corpus, tmp_path / "full", "static", 0, 1, steps=8, every=4)
    ckpt = tmp_path / "full" / "ckpt" / "step=4.ckpt"
    saved = torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]
    state = saved["combined_loader"][0]
    assert (state["num_workers"], state["batch_size"]) == (0, 2)
    for change, message in (
        ({"num_workers": 2}, "data.loader.num_workers: saved 0, now 2"),
        ({"batch_size": 3}, "data.loader.batch_size: saved 2, now 3"),
    ):
        with pytest.raises(ValueError, match=message) as err:
            fit(small_corpus, tmp_path / "bad", "static", 0, 1, ckpt, change, steps=8, every=4)
        assert "data.loader.resume_reshard" in str(err.value)
    with pytest.warns(UserWarning, match="fresh pass"):
        rows, _ = fit(
            small_corpus,
            tmp_path / "reshard",
            "static",
            0,
            1,
            ckpt,
            {"num_workers": 1, "resume_reshard": True},
            steps=8,
            every=4,
        )
    assert [r[0] for r in rows] == [4, 5, 6, 7]  # from the saved step on
    assert rows != full[4:]  # a fresh pass: other batches than the uninterrupted run's


def test_a_loader_state_without_the_recorded_layout_loads_as_before(small_corpus):
    from lst_lightning.data.stream.packing import collate
    from lst_lightning.lit.datamodule import EpochDataLoader

    dm = SpeechTextDataModule(corpus={"data_dir": str(small_corpus)})
    dm.setup("fit")
    loader = EpochDataLoader(dm._train, batch_size=5, num_workers=0, collate_fn=collate)
    loader.load_state_dict({"epoch": 1, "batches": 3, "first_batch": 9})  # an older checkpoint
    assert (loader._epoch, loader._skip, loader._first_batch) == (1, 3, 9)
    with pytest.raises(ValueError, match="data.loader.batch_size: saved 2, now 5"):
        loader.load_state_dict({"epoch": 1, "batches": 3, "first_batch": 9, "batch_size": 2})
    loader.resume_reshard = True
    with pytest.warns(UserWarning, match="epoch 2"):
        loader.load_state_dict({"epoch": 1, "batches": 3, "first_batch": 9, "batch_size": 2})
    assert (loader._epoch, loader._skip, loader._first_batch) == (2, 0, 12)
