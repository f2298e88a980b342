from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.corpora.build import build_generated_corpus


@pytest.fixture(scope="session")
def small_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated corpus, built once per test session (seconds)."""
    out = tmp_path_factory.mktemp("corpus") / "generated"
    build_generated_corpus(out, seed=0, num_utterances=120, num_text_docs=240)
    return out
