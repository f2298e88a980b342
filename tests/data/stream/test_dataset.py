from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from lst_lightning.data.corpora.build import corpus_is_complete
from lst_lightning.data.stream.batch import PAD_DOC
from lst_lightning.data.stream.dataset import (
    INTERLEAVED,
    SPEECH,
    TEXT,
    PackedDocumentDataset,
    load_corpus,
    read_text_documents,
    select_mixture,
)
from lst_lightning.data.stream.packing import collate
from lst_lightning.data.vocab import TokenSpace


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


def shares(inter, speech, texts, lengths):
    i_len, s_len, t_len = lengths
    totals = np.array([i_len[inter].sum(), s_len[speech].sum(), t_len[texts].sum()], dtype=float)
    return totals / totals.sum()


@pytest.mark.parametrize(
    "interleaved,speech_only,num_texts",
    [(1 / 3, 0.0, 600), (0.5, 0.25, 600), (1 / 3, 0.0, 40), (0.2, 0.3, 40), (0.0, 0.4, 600)],
)
def test_select_mixture_meets_the_token_shares(interleaved, speech_only, num_texts):
    rng = np.random.default_rng(0)
    i_len = rng.integers(30, 90, 300)
    s_len = i_len * 3 + rng.integers(0, 20, 300)  # speech-only is longer than interleaved
    t_len = rng.integers(50, 300, num_texts)
    utt, txt = rng.permutation(300), rng.permutation(num_texts)
    inter, speech, texts = select_mixture(
        utt, i_len.__getitem__, s_len.__getitem__, txt, t_len.__getitem__, interleaved, speech_only
    )
    assert not set(inter) & set(speech)  # one document per utterance at most
    got = shares(inter, speech, texts, (i_len, s_len, t_len))
    np.testing.assert_allclose(
        got, [interleaved, speech_only, 1 - interleaved - speech_only], atol=0.01
    )
    if len(texts) < num_texts:  # text is abundant: every utterance is used
        assert len(inter) + len(speech) == 300
    else:  # text is scarce: all of it is used and the utterances are cut back
        assert len(inter) + len(speech) < 300


def test_select_mixture_edges():
    ones = [1] * 10
    get = ones.__getitem__
    as_lists = lambda picked: tuple(x.tolist() for x in picked)  # noqa: E731
    assert as_lists(select_mixture(range(10), get, get, range(10), get, 0.0, 0.0)) == (
        [],
        [],
        list(range(10)),
    )
    assert as_lists(select_mixture(range(10), get, get, range(10), get, 1.0, 0.0)) == (
        list(range(10)),
        [],
        [],
    )
    with pytest.raises(ValueError, match="no utterances"):
        select_mixture([], get, get, range(10), get, 0.5, 0.0)
    with pytest.raises(ValueError, match="text-only documents but the corpus has none"):
        select_mixture(range(10), get, get, [], get, 0.5, 0.0)
    with pytest.raises(ValueError, match="interleaved \\+ speech_only <= 1"):
        select_mixture(range(10), get, get, range(10), get, 0.8, 0.3)


def epoch_shares(ds) -> np.ndarray:
    units = np.sum([r.mixture_units for r in ds], axis=0).astype(float)
    return units / units.sum()


@pytest.mark.parametrize("packing", ["patches", "tokens"])
def test_realised_token_shares_of_an_epoch(corpus, tiny_space, packing):
    """Counted from the packed rows, the epoch's token shares are the options'; LST and baseline
    packing get the same documents."""
    plans = {}
    for inter, speech in ((1 / 3, 0.0), (0.25, 0.25)):
        ds = make(
            corpus,
            tiny_space,
            packing=packing,
            interleaved_fraction=inter,
            speech_only_fraction=speech,
        )
        got = epoch_shares(ds)
        np.testing.assert_allclose(got, [inter, speech, 1 - inter - speech], atol=0.02)
        plans[inter] = ds.epoch_plan()
    kinds = Counter(kind for kind, _ in plans[0.25])
    assert kinds[INTERLEAVED] and kinds[SPEECH] and kinds[TEXT]
    other = make(corpus, tiny_space, packing="tokens" if packing == "patches" else "patches")
    assert other.epoch_plan() == plans[1 / 3]
    # the same utterance's interleaved document has the length the selection counted
    ds = make(corpus, tiny_space)
    for position, (kind, index) in enumerate(ds.epoch_plan()[:30]):
        doc = ds.build_document(position, kind, index)
        length = {
            INTERLEAVED: ds.interleaved_length,
            SPEECH: ds.speech_length,
            TEXT: ds.text_length,
        }
        assert len(doc) == length[kind](index)


def test_bad_text_document_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("one\n\nthree\n")
    with pytest.raises(ValueError, match=f"{path}:2: empty text document"):
        read_text_documents(path)


EMBEDDED = Path(__file__).resolve().parents[3] / "data" / "embedded"


@pytest.mark.slow
@pytest.mark.parametrize("packing", ["patches", "tokens"])
def test_default_mixture_on_the_embedded_corpus_is_a_third_of_the_tokens(packing):
    """The paper's mixture (4.3, Tab. 13): 1/3 of one epoch's baseline units interleaved."""
    if not corpus_is_complete(EMBEDDED):
        pytest.skip(f"the embedded corpus is not built at {EMBEDDED} (make data)")
    corpus = load_corpus(EMBEDDED, "train")
    space = TokenSpace(EMBEDDED / "tokenizer.model")
    ds = PackedDocumentDataset(corpus, space, packing=packing, max_tokens=768, max_patches=256)
    interleaved, speech, text = epoch_shares(ds)
    assert interleaved == pytest.approx(1 / 3, abs=0.02)
    assert speech == 0 and text == pytest.approx(2 / 3, abs=0.02)
