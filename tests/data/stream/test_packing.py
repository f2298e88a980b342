from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lst_lightning.data.stream.batch import IGNORE_INDEX, PAD_DOC
from lst_lightning.data.stream.dataset import PackedDocumentDataset, load_corpus
from lst_lightning.data.stream.packing import RowPacker, collate, pack_documents


def is_unit(x):
    return np.asarray(x) >= 100


def real_pieces(row):
    """The document pieces of a row, as (tokens, patch_lengths)."""
    out = []
    n_real = int((row.doc_ids != PAD_DOC).sum())
    lengths = row.patch_lengths[row.patch_lengths > 0]
    ends = np.cumsum(lengths)
    for d in range(int(row.doc_ids.max(initial=-1)) + 1):
        idx = np.flatnonzero(row.doc_ids == d)
        assert idx.size and (np.diff(idx) == 1).all()  # contiguous
        start, stop = idx[0], idx[-1] + 1
        assert start in np.concatenate(([0], ends)) and stop in ends  # patches do not cross docs
        first, last = np.searchsorted(ends, start, side="right"), np.searchsorted(ends, stop)
        out.append((row.tokens[start:stop], lengths[first : last + 1]))
    assert (row.tokens[n_real:] == 0).all()  # pad id
    return out


def check_rows(rows, docs, mode, max_tokens, max_patches):
    batch = collate(rows, pad_multiple=None)
    batch.validate()
    p = max_tokens if mode == "tokens" else max_patches
    assert batch.tokens.shape == (len(rows), max_tokens) and batch.patch_lengths.shape == (
        len(rows),
        p,
    )
    stream, patches = [], []
    for row in rows:
        for tokens, lengths in real_pieces(row):
            stream.append(tokens)
            patches.append(lengths)
        n_real = int((row.doc_ids != PAD_DOC).sum())
        t = row.targets
        for d in range(int(row.doc_ids.max()) + 1):
            idx = np.flatnonzero(row.doc_ids == d)
            assert (t[idx[:-1]] == row.tokens[idx[1:]]).all() and t[idx[-1]] == IGNORE_INDEX
        assert (t[n_real:] == IGNORE_INDEX).all()
        assert (row.speech_targets == ((t != IGNORE_INDEX) & is_unit(t))).all()
    # every token exactly once, in order; pieces split documents only at patch boundaries
    assert np.array_equal(np.concatenate(stream), np.concatenate([d for d, _ in docs]))
    if mode == "patches":
        assert np.array_equal(
            np.concatenate(patches), np.concatenate([np.asarray(p) for _, p in docs])
        )
    else:
        assert (batch.patch_lengths <= 1).all()
        assert torch.equal((batch.patch_lengths == 1), (batch.doc_ids != PAD_DOC))


def random_docs(rng, n):
    docs = []
    for _ in range(n):
        lengths = []
        for _ in range(int(rng.integers(1, 40))):
            lengths.append(int(rng.integers(1, 5)) if rng.random() < 0.4 else 1)
        tokens = rng.integers(1, 200, size=sum(lengths))
        docs.append((tokens, lengths))
    return docs


@pytest.mark.parametrize("mode", ["patches", "tokens"])
@pytest.mark.parametrize(("max_tokens", "max_patches"), [(64, 32), (32, 32), (50, 7), (200, 100)])
def test_invariants_random_documents(mode, max_tokens, max_patches):
    docs = random_docs(np.random.default_rng(max_tokens + max_patches), 60)
    rows = list(pack_documents(docs, mode, max_tokens, max_patches, 0, is_unit))
    check_rows(rows, docs, mode, max_tokens, max_patches)
    used = [int((r.patch_lengths > 0).sum()) for r in rows]
    assert max(used) <= (max_tokens if mode == "tokens" else max_patches)
    assert all(r.num_tokens <= max_tokens for r in rows)


def test_split_at_patch_boundary_and_fill():
    packer = RowPacker("patches", max_tokens=10, max_patches=4, pad_id=0, is_unit=is_unit)
    assert packer.add(np.arange(1, 4), [1, 1, 1]) == []
    (row,) = packer.add(np.arange(101, 108), [4, 3])  # one patch slot left: the 4-token patch
    assert row.tokens.tolist() == [1, 2, 3, 101, 102, 103, 104, 0, 0, 0]
    assert row.patch_lengths.tolist() == [1, 1, 1, 4]
    assert row.doc_ids.tolist() == [0, 0, 0, 1, 1, 1, 1, PAD_DOC, PAD_DOC, PAD_DOC]
    assert row.targets.tolist()[:7] == [2, 3, IGNORE_INDEX, 102, 103, 104, IGNORE_INDEX]
    assert row.speech_patches.tolist() == [False, False, False, True]
    (row,) = packer.flush()  # the remainder is a new document piece
    assert row.tokens.tolist()[:3] == [105, 106, 107] and row.patch_lengths.tolist() == [3, 0, 0, 0]
    assert row.targets.tolist()[:3] == [106, 107, IGNORE_INDEX]
    assert packer.flush() == []


def test_long_document_spans_rows():
    packer = RowPacker("patches", max_tokens=10, max_patches=3, pad_id=0, is_unit=is_unit)
    rows = packer.add(np.arange(101, 113), [2, 2, 2, 2, 2, 2])
    assert [r.patch_lengths.tolist() for r in rows] == [[2, 2, 2], [2, 2, 2]]
    assert rows[0].targets.tolist()[:6] == [102, 103, 104, 105, 106, IGNORE_INDEX]
    assert packer.flush() == []


def test_no_one_token_heads():
    """A row with one free token is closed rather than given a piece without any target."""
    packer = RowPacker("tokens", max_tokens=10, max_patches=10, pad_id=0, is_unit=is_unit)
    packer.add(np.arange(1, 10), [1] * 9)
    (row,) = packer.add(np.arange(20, 25), [1] * 5)
    assert row.tokens.tolist() == [*range(1, 10), 0]
    (row,) = packer.flush()
    assert row.tokens.tolist()[:5] == list(range(20, 25))


def test_packing_rejects_bad_lengths():
    packer = RowPacker("patches", 8, 4, 0, is_unit)
    with pytest.raises(ValueError, match="sum to the document length"):
        packer.add(np.arange(5), [2, 2])
    with pytest.raises(ValueError, match="exceeds max_tokens"):
        packer.add(np.arange(9), [9])
    with pytest.raises(ValueError, match="packing mode"):
        RowPacker("bytes", 8, 4, 0, is_unit)


@pytest.mark.parametrize("mode", ["patches", "tokens"])
def test_real_documents(mode, tiny_corpus, tiny_space):
    corpus = load_corpus(tiny_corpus, "train")
    ds = PackedDocumentDataset(
        corpus,
        tiny_space,
        speech_only_fraction=0.2,
        packing=mode,
        max_tokens=128,
        max_patches=48,
    )
    docs = [(d.tokens, ds.patch_document(i, d)[0]) for i, d in enumerate(ds.documents())]
    rows = list(ds)
    assert np.array_equal(
        np.concatenate([r.tokens[r.doc_ids != PAD_DOC] for r in rows]),
        np.concatenate([d for d, _ in docs]),
    )
    batch = collate(rows)
    assert batch.speech_patches.any() and batch.speech_targets.any()
    if mode == "patches":
        assert (batch.patch_lengths > 1).any() and batch.patch_lengths.max() <= 4


@pytest.mark.parametrize("mode", ["patches", "tokens"])
def test_collate_cuts_columns_that_are_padding_in_every_row(mode):
    docs = random_docs(np.random.default_rng(5), 6)
    rows = list(pack_documents(docs, mode, 400, 300, 0, is_unit))
    full = collate(rows, pad_multiple=None)
    cut = collate(rows, pad_multiple=16)
    real_tokens = int((full.doc_ids != PAD_DOC).sum(dim=1).max())
    real_patches = int((full.patch_lengths > 0).sum(dim=1).max())
    assert cut.tokens.shape[1] == -(-real_tokens // 16) * 16 < full.tokens.shape[1]
    assert cut.patch_lengths.shape[1] == -(-real_patches // 16) * 16 < full.patch_lengths.shape[1]
    t, p = cut.tokens.shape[1], cut.patch_lengths.shape[1]
    assert torch.equal(cut.tokens, full.tokens[:, :t])
    assert torch.equal(cut.targets, full.targets[:, :t])
    assert torch.equal(cut.patch_lengths, full.patch_lengths[:, :p])
    assert (full.doc_ids[:, t:] == PAD_DOC).all() and (full.patch_lengths[:, p:] == 0).all()


def test_row_counters_count_each_document_once():
    packer = RowPacker("patches", max_tokens=8, max_patches=8, pad_id=0, is_unit=is_unit)
    speech = np.array([1, 2, 100, 101, 102, 103, 104, 105, 106, 3])  # 7 units, split over rows
    text = np.array([1, 5, 6, 3])
    rows = packer.add(speech, [1, 1, 4, 3, 1], aligned=True)
    rows += packer.add(text, [1, 1, 1, 1], aligned=True)  # no speech: never counted
    rows += packer.add(speech, [1, 1, 4, 3, 1], aligned=False)
    rows += packer.flush()
    batch = collate(rows, pad_multiple=None)
    assert batch.speech_docs.sum() == 2 and batch.aligned_docs.sum() == 1
    assert batch.speech_frames.sum() == 14
    assert batch.speech_frames.tolist() == [int(is_unit(r.tokens).sum()) for r in rows]
    assert batch.speech_docs.tolist()[0] == batch.aligned_docs.tolist()[0] == 1
    trimmed = collate(rows, pad_multiple=4)
    assert torch.equal(trimmed.speech_frames, batch.speech_frames)
    frames = RowPacker(
        "tokens", 16, 16, 0, is_unit, speech_frames=lambda ids: 3 * is_unit(ids).astype(np.int64)
    )
    (row,) = frames.add(speech, []) + frames.flush()
    assert row.speech_frames == 21 and row.speech_docs == 1 and row.aligned_docs == 0


def test_validate_counters(tiny_corpus, tiny_space):
    ds = PackedDocumentDataset(load_corpus(tiny_corpus, "train"), tiny_space, max_tokens=64)
    batch = collate(list(ds)[:4])
    batch.validate()
    bad = dataclasses.replace(batch, aligned_docs=batch.speech_docs + 1)
    with pytest.raises(ValueError, match="aligned_docs cannot exceed speech_docs"):
        bad.validate()
    with pytest.raises(ValueError, match="speech_frames has shape"):
        dataclasses.replace(batch, speech_frames=batch.speech_frames[:1]).validate()
    with pytest.raises(ValueError, match="speech_docs has shape None"):
        dataclasses.replace(batch, speech_docs=None).validate()
    dataclasses.replace(batch, speech_docs=None, aligned_docs=None, speech_frames=None).validate()
    assert batch.to("cpu").speech_frames is not None
