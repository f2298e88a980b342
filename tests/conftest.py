"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

MLS_FIXTURE = Path(__file__).parent / "fixtures" / "mls_english_aligned_units.jsonl"


@pytest.fixture(scope="session")
def mls_fixture_path() -> Path:
    """The 10 real MLS utterances in the paper's aligned-unit format (``tests/fixtures/README.md``)."""
    assert MLS_FIXTURE.is_file(), f"the MLS fixture is missing from the checkout: {MLS_FIXTURE}"
    return MLS_FIXTURE


def tiny_datamodule(
    data_dir: Path,
    *,
    max_patches: int = 32,
    max_tokens: int = 64,
    batch_size: int = 4,
    **groups,
):
    """A :class:`SpeechTextDataModule` on the corpus in ``data_dir`` with tiny rows: ``groups`` are option groups
    as mappings (``patching={"strategy": "aligned"}``, ``mixture=...``) merged over the tiny
    ``packing`` / ``loader`` defaults, or ``seed``."""
    from lst_lightning.lit.datamodule import SpeechTextDataModule

    packing = {"max_patches": max_patches, "max_tokens": max_tokens, **groups.pop("packing", {})}
    loader = {"batch_size": batch_size, **groups.pop("loader", {})}
    corpus = {"data_dir": str(data_dir), **groups.pop("corpus", {})}
    return SpeechTextDataModule(corpus=corpus, packing=packing, loader=loader, **groups)


@pytest.fixture
def make_datamodule():
    """:func:`tiny_datamodule` as a fixture, for the test packages that cannot import this file."""
    return tiny_datamodule


@pytest.fixture(scope="session")
def make_checkpoint():
    """A factory: ``make_checkpoint(path, corpus, network)`` trains ``network`` (an LST or baseline
    config) for one step on ``corpus`` and saves the checkpoint at ``path`` with the module's and
    the datamodule's hyperparameters, as a real run does; ``groups`` are datamodule option groups
    (``packing={"mode": "tokens"}``) as for :func:`tiny_datamodule`."""
    import lightning as L

    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.lit.optim import OptimConfig

    def make(path: Path, data_dir: Path, network, **groups) -> Path:
        dm = tiny_datamodule(data_dir, batch_size=2, max_tokens=256, max_patches=128, **groups)
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
