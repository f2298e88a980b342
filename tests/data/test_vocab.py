from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from lst_lightning.data.vocab import (
    NUM_SPECIALS,
    SpeechSpan,
    TextSpan,
    TokenSpace,
    train_text_tokenizer,
    train_unit_bpe,
)


def fixture_documents(utterances, rng):
    """Documents from every utterance: runs of words as text spans, their units as speech spans."""
    docs = []
    for utt in utterances:
        words = utt.words
        spans, i = [], 0
        text_turn = bool(rng.random() < 0.5)
        while i < len(words):
            n = int(rng.integers(1, 12))
            chunk = words[i : i + n]
            if text_turn:
                spans.append(TextSpan(" ".join(w.text for w in chunk if not w.is_silence)))
            else:
                spans.append(SpeechSpan(tuple(u for w in chunk for u in w.units)))
            text_turn, i = not text_turn, i + n
        docs.append(spans)
    return docs


def test_document_round_trip_on_fixture(mls_utterances, mls_space):
    rng = np.random.default_rng(0)
    for _ in range(3):
        for doc in fixture_documents(mls_utterances, rng):
            assert len(doc) >= 3
            ids = mls_space.encode_document(doc)
            assert mls_space.decode_document(ids) == doc


def test_layout(mls_space):
    s = mls_space
    v = s.text_vocab_size
    assert 280 <= v <= 300
    assert [s.pad_id, s.bos_id, s.eos_id, s.text_id, s.speech_id] == list(range(v, v + 5))
    assert s.unit_offset == v + NUM_SPECIALS
    assert s.vocab_size == v + NUM_SPECIALS + 501
    ids = s.encode_document([TextSpan("the"), SpeechSpan((0, 500))])
    assert ids[:2] == [s.bos_id, s.text_id]
    assert ids[-4:] == [s.speech_id, s.unit_offset, s.unit_offset + 500, s.eos_id]
    assert s.is_unit(s.unit_offset) and s.is_unit(s.vocab_size - 1)
    assert not s.is_unit(s.speech_id) and not s.is_unit(s.vocab_size)
    arr = np.array(ids)
    assert s.is_unit(arr).tolist() == s.is_unit(torch.tensor(ids)).tolist()
    assert s.is_unit(arr).sum() == 2


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "  two  spaces ",
        "tab\tnew\nline",
        "héllo wörld",
        "日本語 🎉",
        "a\u2581b ▁",
        "⁇ <unk>",
    ],
)
def test_text_round_trip_any_text(mls_space, text):
    assert mls_space.decode_text(mls_space.encode_text(text)) == text
    assert mls_space.decode_document(mls_space.encode_document([TextSpan(text)])) == [
        TextSpan(text)
    ]


def test_random_unicode_round_trip(mls_space):
    rng = np.random.default_rng(1)
    alphabet = list("abc xyz\t\n.,!?'") + [chr(c) for c in rng.integers(0x80, 0x2FFF, 200)]
    for _ in range(200):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 30))))
        assert mls_space.decode_text(mls_space.encode_text(text)) == text


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        ([], "start with BOS"),
        (["bos", "text", 5], "end with EOS"),
        (["bos", 5, "eos"], "before any <t>/<s>"),
        (["bos", "speech", 5, "eos"], "not allowed in a speech span"),
        (["bos", "text", "unit", "eos"], "not allowed in a text span"),
        (["bos", "text", "pad", "eos"], "not allowed"),
        (["bos", "text", "bos", "eos"], "not allowed"),
    ],
)
def test_malformed_documents_raise(mls_space, ids, problem):
    named = {
        "bos": mls_space.bos_id,
        "eos": mls_space.eos_id,
        "text": mls_space.text_id,
        "speech": mls_space.speech_id,
        "pad": mls_space.pad_id,
        "unit": mls_space.unit_offset,
    }
    with pytest.raises(ValueError, match=problem):
        mls_space.decode_document([named.get(i, i) for i in ids])


def test_encode_rejects_out_of_range_units(mls_space):
    with pytest.raises(ValueError, match="unit 501 is out of range"):
        mls_space.encode_document([SpeechSpan((501,))])


def test_tokenizer_training_is_deterministic_and_checks_size(mls_utterances, tmp_path):
    texts = [u.transcript for u in mls_utterances]
    a = train_text_tokenizer(texts, tmp_path / "a.model", 320)
    b = train_text_tokenizer(texts, tmp_path / "b.model", 320)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="vocab_size=200 is too small.*at least 2"):
        train_text_tokenizer(texts, tmp_path / "c.model", 200)
    assert not (tmp_path / "c.model").exists()


def test_token_space_pickles(mls_space):
    copy = pickle.loads(pickle.dumps(mls_space))
    assert copy.vocab_size == mls_space.vocab_size
    assert copy.encode_text("the little river") == mls_space.encode_text("the little river")


def test_unit_bpe_round_trip_and_frames(mls_utterances, mls_space, tmp_path):
    path = train_unit_bpe([u.units for u in mls_utterances], tmp_path / "units.model", 1000)
    space = TokenSpace(mls_space.model_path, unit_bpe_path=path)
    assert space.speech_tokenizer == "bpe" and mls_space.speech_tokenizer == "units"
    assert space.unit_offset == mls_space.unit_offset
    assert 502 <= space.num_speech_tokens <= 1000
    assert space.vocab_size == space.unit_offset + space.num_speech_tokens
    rng = np.random.default_rng(1)
    unused = (0, 500, 17)  # units absent from the fixture still encode
    total_units = total_tokens = 0
    for doc in fixture_documents(mls_utterances, rng) + [[SpeechSpan(unused)]]:
        ids = space.encode_document(doc)
        assert space.decode_document(ids) == doc
        arr = np.array(ids)
        units = sum(len(s.units) for s in doc if isinstance(s, SpeechSpan))
        assert space.speech_frames(arr).sum() == units
        assert (space.speech_frames(arr) > 0).tolist() == space.is_unit(arr).tolist()
        total_units += units
        total_tokens += int(space.is_unit(arr).sum())
    assert total_tokens < 0.8 * total_units  # the BPE shortens unit strings
    clone = pickle.loads(pickle.dumps(space))
    assert clone.encode_document([SpeechSpan(unused)]) == space.encode_document(
        [SpeechSpan(unused)]
    )
    plain = np.array(mls_space.encode_document([TextSpan("a"), SpeechSpan((3, 4))]))
    assert mls_space.speech_frames(plain).tolist() == [0, 0, 0, 0, 1, 1, 0]


def test_unit_bpe_errors(mls_space, tmp_path):
    with pytest.raises(ValueError, match="must hold <unk> and all 501 units"):
        train_unit_bpe([(1, 2, 3)], tmp_path / "u.model", 300)
    with pytest.raises(ValueError, match="without any unit sequence"):
        train_unit_bpe([()], tmp_path / "u.model", 1000)
    with pytest.raises(FileNotFoundError, match="no unit BPE model"):
        TokenSpace(mls_space.model_path, unit_bpe_path=tmp_path / "missing.model")
    small = train_unit_bpe([(1, 2, 1, 2)], tmp_path / "small.model", 40, num_units=8)
    with pytest.raises(ValueError, match="have no piece"):
        TokenSpace(mls_space.model_path, num_units=9, unit_bpe_path=small)


def test_text_piece_sizes(mls_space):
    for word in ("pleasant", "time", "naïve"):
        sizes = mls_space.text_piece_sizes(word)
        assert len(sizes) == len(mls_space.encode_text(word))
        assert sum(sizes) == len(word.encode())
