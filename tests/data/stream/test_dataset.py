from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from lst_lightning.data.stream.batch import PAD_DOC
from lst_lightning.data.stream.dataset import (
    INTERLEAVED,
    SPEECH,
    TEXT,
    PackedDocumentDataset,
    load_corpus,
    mixture_counts,
    read_text_documents,
)
from lst_lightning.data.stream.packing import collate


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return load_corpus(tiny_corpus, "train")


def make(corpus, space, **kwargs):
    kwargs = {"max_tokens": 96, "max_patches": 40, **kwargs}
    return PackedDocumentDataset(corpus, space, **kwargs)


def fingerprint(rows):
    return [r.tokens.tobytes() + r.patch_lengths.tobytes() for r in rows]


def real_tokens(rows):
    return Counter(np.concatenate([r.tokens[r.doc_ids != PAD_DOC] for r in rows]).tolist())


def test_deterministic_given_seed_and_epoch(corpus, tiny_space):
    a, b = make(corpus, tiny_space, seed=1), make(corpus, tiny_space, seed=1)
    assert fingerprint(a) == fingerprint(b)
    a.set_epoch(1)
    assert fingerprint(a) != fingerprint(b)
    b.set_epoch(1)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(make(corpus, tiny_space, seed=2)) != fingerprint(
        make(corpus, tiny_space, seed=1)
    )


def test_new_interleaving_every_epoch(corpus, tiny_space):
    ds = make(corpus, tiny_space, interleaved_fraction=1.0)
    patterns = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        docs = ds.documents()
        by_utt = {
            i: doc.tokens.tobytes() for (_, i), doc in zip(ds.epoch_plan(), docs, strict=True)
        }
        patterns.append([by_utt[i] for i in range(len(corpus.utterances))])
    changed = sum(a != b for a, b in zip(*patterns, strict=True))
    # at least the starting modality is redrawn for each utterance (probability 1/2 to change)
    assert changed > len(corpus.utterances) / 4


@pytest.mark.parametrize("packing", ["patches", "tokens"])
def test_workers_shard_documents_without_duplicates(corpus, tiny_space, packing):
    ds = make(corpus, tiny_space, packing=packing, speech_only_fraction=0.1)
    ds.set_epoch(2)
    single = list(ds)
    batches = list(DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=2))
    multi = Counter()
    for batch in batches:
        batch.validate()
        multi.update(batch.tokens[batch.doc_ids != PAD_DOC].tolist())
    assert multi == real_tokens(single)
    assert multi.total() == sum(len(d) for d in ds.documents())


def test_mixture(corpus, tiny_space):
    assert mixture_counts(300, 600, 1 / 3, 0.0) == (300, 0, 600)
    assert mixture_counts(300, 100, 1 / 3, 0.0) == (50, 0, 100)
    assert mixture_counts(300, 100, 0.5, 0.25) == (200, 100, 100)
    assert mixture_counts(300, 0, 0.5, 0.5) == (150, 150, 0)
    assert mixture_counts(0, 10, 0.0, 0.0) == (0, 0, 10)
    with pytest.raises(ValueError, match="no utterances"):
        mixture_counts(0, 10, 0.5, 0.0)
    with pytest.raises(ValueError, match="text-only documents but the corpus has none"):
        mixture_counts(10, 0, 0.5, 0.0)
    with pytest.raises(ValueError, match="interleaved \\+ speech_only <= 1"):
        mixture_counts(10, 10, 0.8, 0.3)
    ds = make(corpus, tiny_space, interleaved_fraction=0.25, speech_only_fraction=0.25)
    kinds = Counter(kind for kind, _ in ds.epoch_plan())
    assert kinds[INTERLEAVED] + kinds[SPEECH] == kinds[TEXT] == len(corpus.utterances)
    assert {d.kind for d in ds.documents()} == {"text", "speech", "interleaved"}


def test_bad_text_document_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("one\n\nthree\n")
    with pytest.raises(ValueError, match=f"{path}:2: empty text document"):
        read_text_documents(path)
