from __future__ import annotations

import json
import string

import numpy as np
import pytest

from lst_lightning.data.corpora.synthetic import CORPUS_FILES, UnitVoice, generate_corpus
from lst_lightning.data.records import read_aligned_jsonl
from lst_lightning.data.stream.dataset import read_text_documents


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_corpus(tmp_path / name, num_utterances=20, num_text_docs=30, seed=seed)
    for f in CORPUS_FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a/train.jsonl").read_bytes() != (tmp_path / "c/train.jsonl").read_bytes()


def test_corpus_layout_and_stats(tiny_corpus):
    train = read_aligned_jsonl(tiny_corpus / "train.jsonl")
    valid = read_aligned_jsonl(tiny_corpus / "valid.jsonl")
    texts = read_text_documents(tiny_corpus / "text_train.txt")
    valid_texts = read_text_documents(tiny_corpus / "text_valid.txt")
    assert (len(train), len(valid), len(texts), len(valid_texts)) == (57, 3, 114, 6)
    stats = json.loads((tiny_corpus / "stats.json").read_text())
    assert stats["splits"]["train"]["utterances"] == 57
    assert stats["splits"]["train"]["units"] == sum(u.num_frames for u in train)
    assert stats["splits"]["valid"]["text_docs"] == 6
    sentences = {u.transcript for u in train + valid}
    assert len(sentences) == 60
    # text-only documents never repeat a synthesised sentence
    assert not any(s in doc for s in sentences for doc in texts + valid_texts)


def test_units_follow_the_letters(tiny_corpus):
    stats = json.loads((tiny_corpus / "stats.json").read_text())
    letters, silences = stats["letter_units"], set(stats["silence_units"])
    for utt in read_aligned_jsonl(tiny_corpus / "train.jsonl"):
        assert utt.words[0].is_silence and utt.words[-1].is_silence
        for i, word in enumerate(utt.words):
            assert word.is_silence == (i % 2 == 0)  # silence gaps around every word
            if word.is_silence:
                assert len(word.units) <= 3 and set(word.units) <= silences
                continue
            # collapse repeats: one unit per letter, each held 1-3 frames
            runs = [u for j, u in enumerate(word.units) if j == 0 or word.units[j - 1] != u]
            expected = [
                letters[c] for j, c in enumerate(word.text) if j == 0 or word.text[j - 1] != c
            ]
            assert runs == expected
            assert len(word.text) <= len(word.units) <= 3 * len(word.text)


def test_voice_table_is_drawn_from_the_seed():
    a, b = UnitVoice(0), UnitVoice(1)
    assert a.letter_units != b.letter_units
    units = list(a.letter_units.values()) + list(a.silence_units)
    assert len(set(units)) == 29 and all(0 <= u < 501 for u in units)
    assert set(a.letter_units) == set(string.ascii_lowercase)
    with pytest.raises(ValueError, match="cannot say"):
        a.word("don't", np.random.default_rng(0))
