"""A generated corpus for the callback tests, large enough that a short fit stays in epoch 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.corpora.synthetic import generate_corpus


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("callback_corpus")
    generate_corpus(out, num_utterances=240, num_text_docs=60, seed=3)
    return out
