"""Length profiles: the epoch plan's lengths without reading the records, exact, cached once."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from lst_lightning.data.sources.arrow import SpeechRecords, TextRecords
from lst_lightning.data.sources.cache import cached_arrow
from lst_lightning.data.stream import lengths as lengths_module
from lst_lightning.data.stream.dataset import (
    INTERLEAVED,
    SPEECH,
    TEXT,
    Corpus,
    PackedDocumentDataset,
    load_corpus,
)
from lst_lightning.data.stream.lengths import UtteranceLengths, build_profile, cached_profile
from lst_lightning.data.vocab import TokenSpace

pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def mls_dataset(mls_utterances, mls_space) -> PackedDocumentDataset:
    texts = tuple(u.transcript for u in mls_utterances)
    return PackedDocumentDataset(Corpus(tuple(mls_utterances), texts), mls_space, seed=3)


def test_profile_lengths_equal_the_documents_in_every_epoch(mls_dataset, tiny_corpus, tiny_space):
    """The profile's interleaved and speech-only lengths are those of the documents the builder
    makes, for every utterance, in several epochs (different interleavings), on two corpora."""
    tiny = PackedDocumentDataset(load_corpus(tiny_corpus, "train"), tiny_space, seed=1)
    checked = 0
    for ds in (mls_dataset, tiny):
        assert ds.length_profiles()[0].additive.all()  # the kit's tokenizers add up per word
        for epoch in range(4):
            ds.set_epoch(epoch)
            for u in range(len(ds.corpus.utterances)):
                built = len(ds.build_document(0, INTERLEAVED, u))
                assert ds.interleaved_length(u) == ds.measured_interleaved_length(u) == built
                assert ds.speech_length(u) == len(ds.build_document(0, SPEECH, u))
                checked += 1
    assert checked > 200


def test_an_utterance_that_does_not_add_up_is_measured_from_its_record(mls_dataset):
    """Where a tokenizer's text spans are not sums of their words, the profile says so and the
    dataset measures that utterance from the record instead (here: every utterance flagged)."""
    profile = mls_dataset.length_profiles()[0]
    flagged = UtteranceLengths(
        profile.offsets, profile.words, profile.frames, np.zeros_like(profile.additive)
    )
    assert flagged.interleaved_length(0, np.random.default_rng(0)) is None
    ds = PackedDocumentDataset(mls_dataset.corpus, mls_dataset.space, seed=3)
    ds._profiles = [flagged]
    for u in range(len(ds.corpus.utterances)):
        assert ds.interleaved_length(u) == len(ds.build_document(0, INTERLEAVED, u))


def test_a_non_additive_tokenizer_is_caught_when_the_profile_is_built(mls_utterances, mls_space):
    """A tokenizer whose text of several words is not the sum of its words (here: one that
    counts characters of the whole string) gets its utterances flagged, not mis-measured."""

    class WholeStringSpace:
        def encode_text(self, text: str) -> list[int]:
            return [0] * (len(text) // 3)

    profile = build_profile(mls_utterances[:10], WholeStringSpace())  # type: ignore[arg-type]
    assert not profile.additive.all()


def test_a_memory_mapped_source_is_measured_once_and_plans_as_in_memory(tmp_path, tiny_corpus):
    """Arrow records get their profile and text lengths from the cache folder, built once (a
    second dataset does not measure again), memory-mapped, pickled as the folder; the plan and
    the documents equal the in-memory corpus's."""
    space = TokenSpace(tiny_corpus / "tokenizer.model")
    copy = tmp_path / "corpus"
    copy.mkdir()
    for name in ("train.jsonl", "text_train.txt"):
        (copy / name).write_bytes((tiny_corpus / name).read_bytes())
    corpus = Corpus(
        SpeechRecords(cached_arrow(copy / "train.jsonl")),
        TextRecords(cached_arrow(copy / "text_train.txt")),
    )
    cache = tmp_path / "lengths"
    arrow = PackedDocumentDataset(corpus, space, seed=4, lengths_cache=cache)
    memory = PackedDocumentDataset(load_corpus(copy, "train"), space, seed=4)
    for epoch in range(3):
        arrow.set_epoch(epoch)
        memory.set_epoch(epoch)
        assert arrow.epoch_plan() == memory.epoch_plan()
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # utterances + text documents
    profile = arrow.length_profiles()[0]
    assert isinstance(profile.words.base, np.memmap) or profile.folder is not None
    assert len(pickle.dumps(profile)) < 1000  # the folder travels, not the arrays
    assert np.array_equal(pickle.loads(pickle.dumps(profile)).words, profile.words)
    texts = arrow.text_length_tables()[0]
    assert texts is not None
    assert [arrow.text_length(i) for i in range(5)] == [memory.text_length(i) for i in range(5)]

    def no_second_pass(*args, **kwargs):
        raise AssertionError("measured again")

    again = PackedDocumentDataset(corpus, space, seed=4, lengths_cache=cache)
    original = lengths_module.build_profile, lengths_module.text_lengths
    try:
        lengths_module.build_profile = lengths_module.text_lengths = no_second_pass
        again.set_epoch(2)
        assert again.epoch_plan() == memory.epoch_plan()
    finally:
        lengths_module.build_profile, lengths_module.text_lengths = original


def test_a_stale_or_half_built_cache_folder(tmp_path, mls_utterances, mls_space):
    """A folder an interrupted build left (no ``source.json``) is rebuilt; a finished folder whose
    row count no longer matches is an error naming the folder."""
    source = {"path": "somewhere", "rows": 5}
    profile = cached_profile(mls_utterances[:5], mls_space, tmp_path, source)
    folder = Path(profile.folder)
    (folder / "source.json").unlink()
    (folder / "offsets.npy").write_bytes(b"garbage")  # the half-written leftover
    rebuilt = cached_profile(mls_utterances[:5], mls_space, tmp_path, source)
    assert len(rebuilt) == 5 and (folder / "source.json").is_file()
    with pytest.raises(ValueError, match=f"{folder}.*5 rows.*has 4"):
        cached_profile(mls_utterances[:4], mls_space, tmp_path, source)


def test_text_kind_plan_entries_use_the_cached_lengths(tmp_path, tiny_corpus):
    """Text documents in the plan meet the share with the cached lengths (the sum of the chosen
    documents' lengths is what select_mixture aimed for, within one document)."""
    space = TokenSpace(tiny_corpus / "tokenizer.model")
    corpus = Corpus(
        SpeechRecords(cached_arrow(tiny_corpus / "train.jsonl")),
        TextRecords(cached_arrow(tiny_corpus / "text_train.txt")),
    )
    ds = PackedDocumentDataset(corpus, space, seed=0, lengths_cache=tmp_path)
    plan = ds.epoch_plan()
    text = sum(ds.text_length(i) for k, i in plan if k == TEXT)
    speech = sum(ds.interleaved_length(i) for k, i in plan if k == INTERLEAVED)
    longest = max(ds.text_length(i) for i in range(len(corpus.texts)))
    assert abs(text - speech * 2) <= longest
