"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

MLS_FIXTURE = Path(__file__).parents[2] / "shared/fixtures/mls_english_aligned_units.jsonl"


@pytest.fixture(scope="session")
def mls_fixture_path() -> Path:
    """The 10 real MLS utterances in the paper's aligned-unit format (kept outside the repo)."""
    if not MLS_FIXTURE.is_file():
        pytest.skip(
            "the MLS fixture ../shared/fixtures/mls_english_aligned_units.jsonl is absent "
            f"(looked for {MLS_FIXTURE})"
        )
    return MLS_FIXTURE


@pytest.fixture
def make_checkpoint():
    """A factory: ``make_checkpoint(path, corpus, network)`` trains ``network`` (an LST or baseline
    config) for one step on ``corpus`` and saves the checkpoint at ``path`` with the module's and
    the datamodule's hyperparameters, as a real run does."""
    import lightning as L

    from lst_lightning.lit.datamodule import SpeechTextDataModule
    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.lit.optim import OptimConfig

    def make(path: Path, corpus: Path, network) -> Path:
        dm = SpeechTextDataModule(
            data_dir=str(corpus), batch_size=2, max_tokens=256, max_patches=128
        )
        module = SpeechTextLM(
            network=network, optim=OptimConfig(warmup_steps=0), vocab_size=dm.vocab_size
        )
        trainer = L.Trainer(
            max_steps=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            accelerator="cpu",
        )
        trainer.fit(module, datamodule=dm)
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(path)
        return path

    return make
