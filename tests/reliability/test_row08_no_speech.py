"""Row 8: a corpus whose utterances carry no speech (no units, or only ``[SIL]``) is an error
unless allowed, and duplicate ``file_id`` s are reported with the ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.data.records import (
    SILENCE,
    AlignedUtterance,
    AlignedWord,
    read_aligned_jsonl,
    write_aligned_jsonl,
)


def _rewrite(path: Path, change) -> None:
    write_aligned_jsonl(path, [change(u) for u in read_aligned_jsonl(path)])


def no_units(u: AlignedUtterance) -> AlignedUtterance:
    return AlignedUtterance(u.file_id, tuple(AlignedWord(w.text, ()) for w in u.words))


def only_silence(u: AlignedUtterance) -> AlignedUtterance:
    return AlignedUtterance(u.file_id, (AlignedWord(SILENCE, u.units),))


@pytest.mark.parametrize("change", [no_units, only_silence], ids=["0 units", "only [SIL]"])
def test_a_corpus_without_speech_is_an_error_unless_allowed(
    corpus_copy: Path,
    make_datamodule,
    change,
) -> None:
    _rewrite(corpus_copy / "train.jsonl", change)
    with pytest.raises(ValueError, match=r"train.jsonl: none of its \d+ utterances .* no speech"):
        make_datamodule(corpus_copy).setup("fit")
    allowed = make_datamodule(corpus_copy, corpus={"allow_no_speech": True})
    allowed.setup("fit")  # trains on purpose


def test_duplicate_file_ids_are_reported_with_the_ids(corpus_copy: Path, make_datamodule) -> None:
    path = corpus_copy / "train.jsonl"
    utterances = read_aligned_jsonl(path)
    write_aligned_jsonl(path, [*utterances, utterances[3], utterances[5]])
    ids = [utterances[3].file_id, utterances[5].file_id]
    with pytest.raises(ValueError, match="2 file_ids occur more than once") as error:
        make_datamodule(corpus_copy).setup("fit")
    assert all(repr(fid) in str(error.value) for fid in ids)
