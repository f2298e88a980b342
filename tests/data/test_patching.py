from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.documents import PlannedSpan, encode_plan, interleaved_document
from lst_lightning.data.patching import patch_speech_mask, static_patch_lengths, token_patch_lengths


@pytest.fixture
def doc_and_bpe(mls_utterances, mls_space):
    """<speech: [SIL](16 frames) + "in"(2)> <text: "the"> <speech: "pleasant"(8)> <speech: empty>."""
    words = mls_utterances[0].words
    assert [(w.text, len(w.units)) for w in (words[0], words[1], words[3], words[5])] == [
        ("[SIL]", 16),
        ("in", 2),
        ("the", 3),
        ("pleasant", 8),
    ]
    plan = [
        PlannedSpan("speech", words[0:2]),
        PlannedSpan("text", (words[3],)),
        PlannedSpan("speech", (words[5],)),
        PlannedSpan("speech", ()),
    ]
    return encode_plan(plan, mls_space, "interleaved"), len(mls_space.encode_text("the"))


def test_static_lengths_exact(doc_and_bpe):
    doc, k = doc_and_bpe
    assert len(doc) == 1 + 19 + 1 + k + 9 + 1 + 1
    assert static_patch_lengths(doc, 4) == [1, 4, 4, 4, 4, 3, 1, *[1] * k, 4, 4, 1, 1, 1]
    assert static_patch_lengths(doc, 9) == [1, 9, 9, 1, 1, *[1] * k, 9, 1, 1]
    assert static_patch_lengths(doc, 1) == [1] * len(doc) == token_patch_lengths(doc)
    for p in range(1, 25):
        lengths = static_patch_lengths(doc, p)
        assert sum(lengths) == len(doc) and min(lengths) >= 1 and max(lengths) <= p


def test_speech_mask(doc_and_bpe, mls_space):
    doc, k = doc_and_bpe
    lengths = static_patch_lengths(doc, 4)
    mask = patch_speech_mask(doc.tokens, lengths, mls_space.is_unit).tolist()
    # the empty speech span's lone <s> holds no unit
    assert mask == [False, *[True] * 5, False, *[False] * k, True, True, True, False, False]


def test_patches_never_cross_runs(mls_utterances, mls_space):
    rng = np.random.default_rng(0)
    for utt in mls_utterances:
        doc = interleaved_document(utt, mls_space, rng)
        lengths = static_patch_lengths(doc, 4)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        for start, n in zip(starts, lengths, strict=True):
            piece = doc.tokens[start : start + n]
            if n > 1:  # a multi-token patch is <s>+units or units only
                assert mls_space.is_unit(piece[1:]).all()
                assert piece[0] == mls_space.speech_id or mls_space.is_unit(piece[0])


def test_bad_patch_size(doc_and_bpe):
    with pytest.raises(ValueError, match="patch size must be >= 1"):
        static_patch_lengths(doc_and_bpe[0], 0)
