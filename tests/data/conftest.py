"""Small corpora and token spaces reused across the data tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.records import AlignedUtterance, read_aligned_jsonl
from lst_lightning.data.synthetic import generate_corpus
from lst_lightning.data.vocab import TokenSpace, train_text_tokenizer


@pytest.fixture(scope="session")
def mls_utterances(mls_fixture_path: Path) -> list[AlignedUtterance]:
    return read_aligned_jsonl(mls_fixture_path)


@pytest.fixture(scope="session")
def mls_space(mls_utterances, tmp_path_factory) -> TokenSpace:
    """A BPE trained on the fixture transcripts; 300 is near the floor that byte fallback allows."""
    path = tmp_path_factory.mktemp("mls_bpe") / "tokenizer.model"
    train_text_tokenizer([u.transcript for u in mls_utterances], path, vocab_size=300)
    return TokenSpace(path)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A generated corpus small enough to build in well under a second."""
    out = tmp_path_factory.mktemp("generated")
    generate_corpus(out, num_utterances=60, num_text_docs=120, seed=7)
    return out


@pytest.fixture(scope="session")
def tiny_space(tiny_corpus: Path) -> TokenSpace:
    return TokenSpace(tiny_corpus / "tokenizer.model")
