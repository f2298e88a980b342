"""A small generated corpus, its token space and embedded benchmark sets (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lst_lightning.data.corpora.synthetic import generate_corpus
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.eval.build_sets import build_sets
from lst_lightning.eval.render import GeneratedVoiceRenderer
from lst_lightning.eval.tasks import Benchmark, load_benchmarks
from lst_lightning.model import LSTConfig
from lst_lightning.model.config import TransformerConfig

SET_ITEMS = 24


@pytest.fixture(scope="session")
def eval_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_corpus")
    generate_corpus(out, num_utterances=100, num_text_docs=2000, seed=3)
    return out


@pytest.fixture(scope="session")
def eval_space(eval_corpus: Path) -> TokenSpace:
    return TokenSpace(eval_corpus / "tokenizer.model")


@pytest.fixture(scope="session")
def sets_dir(eval_corpus: Path) -> Path:
    out = eval_corpus / "eval"
    build_sets(eval_corpus, out, GeneratedVoiceRenderer.from_corpus(eval_corpus), items=SET_ITEMS)
    return out


@pytest.fixture(scope="session")
def benchmarks(sets_dir: Path) -> dict[str, Benchmark]:
    return {b.name: b for b in load_benchmarks(sets_dir)}


def tiny_lst_config(vocab_size: int) -> LSTConfig:
    """A very small LST (a few hundred thousand parameters) for fast CPU tests."""
    return LSTConfig(
        vocab_size=vocab_size,
        encoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=64),
        global_model=TransformerConfig(n_layers=1, d_model=64, n_heads=2),
        decoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2, window=64),
        queries_per_patch=2,
    )


@pytest.fixture()
def seeded() -> None:
    torch.manual_seed(0)
