"""Fixtures of the reliability suite: one small generated corpus and a short CLI fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lst_lightning.data.corpora.build import build_generated_corpus

ROOT = Path(__file__).resolve().parents[2]

SMALL_FIT = [
    "--trainer.max_steps=6",
    "--trainer.limit_val_batches=0",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--model.optim.warmup_steps=2",
    "--model.network.global_model.n_layers=1",
    "--data.loader.batch_size=2",
    "--data.packing.max_tokens=128",
    "--data.packing.max_patches=64",
]
"""A tiny_lst run of 6 steps that takes a few seconds on 2 CPU cores."""


@pytest.fixture(scope="session")
def generated_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated corpus, built once per session; copy it before changing it."""
    out = tmp_path_factory.mktemp("reliability") / "generated"
    build_generated_corpus(out, seed=0, num_utterances=120, num_text_docs=240)
    return out


@pytest.fixture
def corpus_copy(generated_corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the generated corpus that a test may damage."""
    out = tmp_path / "corpus"
    shutil.copytree(generated_corpus, out)
    return out


def cli_fit(corpus: Path, out: Path, *extra: str) -> None:
    """``lst-lightning fit`` of ``tiny_lst`` on ``corpus``, writing its run under ``out``."""
    from lst_lightning.cli import main

    main(
        [
            "fit",
            "--config",
            str(ROOT / "experiments" / "tiny_lst.yaml"),
            f"--data.corpus.data_dir={corpus}",
            f"--trainer.logger.init_args.save_dir={out}",
            *SMALL_FIT,
            *extra,
        ]
    )
