"""Small corpora and token spaces reused across the data tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.corpora.synthetic import generate_corpus
from lst_lightning.data.records import AlignedUtterance, read_aligned_jsonl
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


def save_tiny_ctc_model(folder: Path, vocab: dict[str, int]) -> Path:
    """A randomly initialised, very small ``Wav2Vec2ForCTC`` saved as a local model folder with
    its ``vocab.json`` (what a user's CTC aligner folder holds), for the CTC alignment paths."""
    import json

    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    return folder
