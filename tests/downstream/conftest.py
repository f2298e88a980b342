"""Token spaces and utterances for the downstream tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.records import AlignedUtterance, read_aligned_jsonl
from lst_lightning.data.vocab import TokenSpace, train_text_tokenizer


@pytest.fixture(scope="session")
def mls_utterances(mls_fixture_path: Path) -> list[AlignedUtterance]:
    return read_aligned_jsonl(mls_fixture_path)


@pytest.fixture(scope="session")
def mls_space(mls_utterances, tmp_path_factory) -> TokenSpace:
    path = tmp_path_factory.mktemp("downstream_bpe") / "tokenizer.model"
    train_text_tokenizer([u.transcript for u in mls_utterances], path, vocab_size=300)
    return TokenSpace(path)
