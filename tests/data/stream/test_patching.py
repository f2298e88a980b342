from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.data.records import AlignedUtterance, AlignedWord
from lst_lightning.data.stream.dataset import PackedDocumentDataset, load_corpus
from lst_lightning.data.stream.documents import (
    PlannedSpan,
    encode_plan,
    interleaved_document,
    speech_document,
)
from lst_lightning.data.stream.patching import (
    PatchingSchedule,
    aligned_bpe_patch_lengths,
    aligned_patch_lengths,
    curriculum_probability,
    patch_speech_mask,
    split_frames,
    static_patch_lengths,
    token_patch_lengths,
)
from lst_lightning.data.vocab import TokenSpace, train_unit_bpe


def utt_from(words: list[tuple[str, int]]) -> AlignedUtterance:
    """An utterance from (text, frames) pairs; ``_`` is a silence. Units count 0, 1, 2..."""
    out, next_unit = [], 0
    for text, n in words:
        out.append(
            AlignedWord("[SIL]" if text == "_" else text, tuple(range(next_unit, next_unit + n)))
        )
        next_unit += n
    return AlignedUtterance("test", tuple(out))


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


# -- aligned strategies and the schedule on the MLS fixture -----------------------------------


def unit_lengths(lengths):
    """Speech patch sizes in units: the patches of a speech document between BOS and EOS."""
    inner = list(lengths[1:-1])
    inner[0] -= 1  # the <s> joins the first patch
    return inner


def test_static_is_runs_cut_by_p_on_fixture(mls_utterances, mls_space):
    for utt in mls_utterances:
        doc = speech_document(utt, mls_space)
        for p in (4, 6, 9):
            full, rest = divmod(1 + utt.num_frames, p)
            assert static_patch_lengths(doc, p) == [1, *[p] * full, *([rest] if rest else []), 1]


def test_aligned_one_patch_per_word_and_silence(mls_utterances, mls_space):
    for utt in mls_utterances:
        doc = speech_document(utt, mls_space)
        lengths = aligned_patch_lengths(doc)
        nonempty = [w for w in utt.words if w.units]
        assert sum(lengths) == len(doc)
        assert unit_lengths(lengths) == [len(w.units) for w in nonempty]
        assert len(lengths) == 2 + sum(not w.is_silence for w in nonempty) + sum(
            w.is_silence for w in nonempty
        )


def test_merged_silence_joins_the_word_before(mls_utterances, mls_space):
    for utt in mls_utterances:
        doc = speech_document(utt, mls_space)
        separate, merged = aligned_patch_lengths(doc), aligned_patch_lengths(doc, "merged")
        assert sum(merged) == len(doc)
        nonempty = [w for w in utt.words if w.units]
        groups: list[int] = []
        for i, w in enumerate(nonempty):
            spoken_before = any(not v.is_silence for v in nonempty[:i])
            if w.is_silence or not spoken_before:
                if groups and (w.is_silence or not spoken_before):
                    groups[-1] += len(w.units)
                    continue
            groups.append(len(w.units))
        assert unit_lengths(merged) == groups
        assert len(merged) < len(separate) and max(merged) >= max(separate)
        assert len(merged) == 2 + sum(not w.is_silence for w in nonempty)


def test_merged_rules_by_hand(mls_space):
    words = [("_", 3), ("a", 2), ("_", 4), ("b", 5), ("_", 1)]
    doc = speech_document(utt_from(words), mls_space)
    # leading silence -> first word; each later silence -> the word before it
    assert aligned_patch_lengths(doc, "merged") == [1, 1 + 3 + 2 + 4, 5 + 1, 1]
    assert aligned_patch_lengths(doc) == [1, 1 + 3, 2, 4, 5, 1, 1]
    only_silence = speech_document(utt_from([("_", 3), ("_", 2)]), mls_space)
    assert aligned_patch_lengths(only_silence, "merged") == [1, 6, 1]
    # max_len cuts long patches and keeps the sum
    assert aligned_patch_lengths(doc, "merged", max_len=4) == [1, 4, 4, 2, 4, 2, 1]


def test_aligned_bpe_shares_frames_by_characters(mls_utterances, mls_space):
    assert split_frames(10, [1, 1, 2]) == [3, 2, 5]  # boundaries round(2.5)=3, round(5)=5
    assert split_frames(2, [3, 1, 1]) == [1, 1, 0]
    assert split_frames(0, [2]) == [0]
    with pytest.raises(ValueError, match="positive weights"):
        split_frames(3, [])
    doc = speech_document(utt_from([("_", 2), ("ab", 9), ("cde", 3)]), mls_space)
    sizes = {"ab": [1, 1], "cde": [2, 1]}
    lengths = aligned_bpe_patch_lengths(doc, sizes.__getitem__)
    assert lengths == [1, 1 + 2, 5, 4, 2, 1, 1]  # ab: 9 -> 5 + 4 (round 4.5 up); cde: 3 -> 2 + 1
    for utt in mls_utterances:
        doc = speech_document(utt, mls_space)
        bpe = aligned_bpe_patch_lengths(doc, mls_space.text_piece_sizes)
        separate = aligned_patch_lengths(doc)
        assert sum(bpe) == len(doc) and len(bpe) >= len(separate)


def test_average_aligned_patch_lengths_on_fixture(mls_utterances, mls_space):
    """The averages the README reports for the fixture (units per speech patch, <s> excluded)."""
    words = [len(w.units) for u in mls_utterances for w in u.words if w.units and not w.is_silence]
    gaps = [len(w.units) for u in mls_utterances for w in u.words if w.units and w.is_silence]
    per = {"separate": [], "merged": [], "bpe": [], "static": []}
    for utt in mls_utterances:
        doc = speech_document(utt, mls_space)
        per["separate"] += unit_lengths(aligned_patch_lengths(doc))
        per["merged"] += unit_lengths(aligned_patch_lengths(doc, "merged"))
        per["bpe"] += unit_lengths(aligned_bpe_patch_lengths(doc, mls_space.text_piece_sizes))
        per["static"] += unit_lengths(static_patch_lengths(doc, 4))
    mean = {k: sum(v) / len(v) for k, v in per.items()}
    frames = sum(u.num_frames for u in mls_utterances)
    assert mean["separate"] == frames / (len(words) + len(gaps))
    assert mean["merged"] == frames / len(words) > mean["separate"]
    assert mean["static"] < 4 < mean["separate"] and mean["bpe"] < mean["separate"]
    print(
        f"\nMLS fixture, units per patch: word {sum(words) / len(words):.2f}, silence "
        f"{sum(gaps) / len(gaps):.2f}, aligned {mean['separate']:.2f}, merged "
        f"{mean['merged']:.2f}, aligned-bpe {mean['bpe']:.2f}, static(4) {mean['static']:.2f}"
    )


def test_aligned_needs_one_token_per_unit(mls_utterances, mls_space, tmp_path):
    train_unit_bpe([u.units for u in mls_utterances], tmp_path / "u.model", 600)
    space = TokenSpace(mls_space.model_path, unit_bpe_path=tmp_path / "u.model")
    doc = speech_document(mls_utterances[0], space)
    assert sum(static_patch_lengths(doc, 4)) == len(doc)
    with pytest.raises(ValueError, match="one token per unit frame"):
        aligned_patch_lengths(doc)


def test_curriculum_probability_exact():
    t1, t2 = 100, 300
    assert curriculum_probability(0, t1, t2) == curriculum_probability(99, t1, t2) == 1.0
    assert curriculum_probability(t1, t1, t2) == 1.0
    assert curriculum_probability(200, t1, t2) == 0.5
    assert curriculum_probability(250, t1, t2) == 0.25
    assert curriculum_probability(t2, t1, t2) == 0.0
    assert curriculum_probability(10**6, t1, t2) == 0.0
    assert [curriculum_probability(s, 5, 5) for s in (4, 5, 6)] == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="start <= end"):
        curriculum_probability(0, 3, 2)
    schedule = PatchingSchedule("curriculum", curriculum_start=t1, curriculum_end=t2)
    assert schedule.aligned_probability(200) == 0.5
    assert PatchingSchedule("mixed", aligned_prob=0.3).aligned_probability(10**6) == 0.3
    assert PatchingSchedule("static").aligned_probability(0) == 0.0
    assert PatchingSchedule("aligned_bpe").aligned_probability(0) == 1.0
    with pytest.raises(ValueError, match="patching must be one of"):
        PatchingSchedule("dynamic")


@pytest.mark.parametrize(
    "step,expected", [(0, 1.0), (150, 0.75), (200, 0.5), (250, 0.25), (400, 0.0)]
)
def test_drawn_fraction_matches_the_probability(tiny_corpus, tiny_space, step, expected):
    corpus = load_corpus(tiny_corpus, "train")
    schedule = PatchingSchedule("curriculum", curriculum_start=100, curriculum_end=300)
    ds = PackedDocumentDataset(
        corpus, tiny_space, interleaved_fraction=1.0, patching=schedule, max_tokens=512
    )
    doc = ds.documents()[0]
    assert ds.aligned_probability(step) == expected
    n = 2000
    draws = [ds.patch_document(position, doc, step) for position in range(n)]
    aligned = sum(a for _, a in draws)
    assert abs(aligned / n - expected) <= 4 * (expected * (1 - expected) / n) ** 0.5 + 1e-12
    for lengths, a in draws[:50]:  # the flag says which patches the document got
        assert lengths == (
            aligned_patch_lengths(doc, max_len=512) if a else static_patch_lengths(doc, 4)
        )
