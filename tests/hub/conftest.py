from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.corpora.build import build_generated_corpus
from lst_lightning.model import BaselineConfig, LSTConfig, TransformerConfig


@pytest.fixture(scope="session")
def hub_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated corpus, built once per test session."""
    out = tmp_path_factory.mktemp("hub_corpus") / "generated"
    build_generated_corpus(out, seed=0, num_utterances=120, num_text_docs=200)
    return out


def tiny_lst() -> LSTConfig:
    local = dict(d_model=32, n_heads=2)
    return LSTConfig(
        encoder=TransformerConfig(n_layers=1, window=16, **local),
        global_model=TransformerConfig(n_layers=2, d_model=48, n_heads=2),
        decoder=TransformerConfig(n_layers=1, window=16, **local),
    )


def tiny_baseline() -> BaselineConfig:
    return BaselineConfig(transformer=TransformerConfig(n_layers=2, d_model=48, n_heads=2))
