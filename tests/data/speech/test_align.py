"""Word alignments: timings -> aligned records, CTC forced alignment, timings files, word checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lst_lightning.data.records import SILENCE, format_record, parse_interleaved
from lst_lightning.data.speech.align import (
    CTCAligner,
    WordTiming,
    check_words,
    ctc_word_timings,
    normalize_words,
    read_timings_jsonl,
    utterance_from_timings,
    write_timings_jsonl,
)
from lst_lightning.data.speech.audio import RecordError

from ..conftest import save_tiny_ctc_model


def test_timings_to_frames_with_leading_inner_and_trailing_silence():
    units = list(range(100, 130))  # 30 frames, 1.2 s
    timings = [WordTiming("the", 0.16, 0.40), WordTiming("cat", 0.48, 0.80)]
    utt = utterance_from_timings("u1", timings, units)
    assert [(w.text, w.units) for w in utt.words] == [
        (SILENCE, tuple(range(100, 104))),
        ("the", tuple(range(104, 110))),
        (SILENCE, tuple(range(110, 112))),
        ("cat", tuple(range(112, 120))),
        (SILENCE, tuple(range(120, 130))),
    ]
    assert utt.units == tuple(units)  # every frame in exactly one segment, order kept
    # the record round-trips through the paper's format
    assert parse_interleaved(json.loads(format_record(utt))["interleaved"], "u1") == utt


def test_zero_frame_words_overlaps_and_adjacent_words():
    units = [7] * 10
    timings = [
        WordTiming("a", 0.0, 0.12),  # frames 0..3
        WordTiming("b", 0.10, 0.12),  # overlaps a after rounding: zero frames at 3
        WordTiming("c", 0.12, 0.40),  # frames 3..10, no gap
    ]
    utt = utterance_from_timings("u", timings, units)
    assert [(w.text, len(w.units)) for w in utt.words] == [("a", 3), ("b", 0), ("c", 7)]
    assert utt.num_frames == 10


def test_units_are_kept_as_is_no_dedup():
    units = [5, 5, 5, 9, 9, 5, 5]
    utt = utterance_from_timings("u", [WordTiming("x", 0.0, 0.28)], units)
    assert utt.words[0].units == (5, 5, 5, 9, 9, 5, 5)


def test_alignment_errors_name_the_record():
    with pytest.raises(RecordError, match="rec7: alignment longer than audio"):
        utterance_from_timings("rec7", [WordTiming("x", 0.0, 2.0)], [1] * 10)
    with pytest.raises(RecordError, match="rec8: alignment out of order"):
        utterance_from_timings(
            "rec8", [WordTiming("x", 0.2, 0.3), WordTiming("y", 0.1, 0.2)], [1] * 10
        )
    # a final word within the tolerance is clipped
    utt = utterance_from_timings("ok", [WordTiming("x", 0.0, 0.44)], [1] * 10)
    assert utt.words == utt.words[:1] and len(utt.words[0].units) == 10
    with pytest.raises(ValueError, match="start <= end"):
        WordTiming("x", 0.5, 0.2)
    with pytest.raises(ValueError, match="whitespace"):
        WordTiming("two words", 0.0, 0.2)


def test_check_words_and_normalize():
    assert normalize_words("Hello, World!  Don't -- 'stop'") == ["hello", "world", "don't", "stop"]
    timings = [WordTiming("hello", 0, 0.1), WordTiming("world", 0.1, 0.2)]
    check_words("r", ["hello", "world"], timings)
    with pytest.raises(RecordError, match="r: transcript does not match alignment .*word 1"):
        check_words("r", ["hello", "there"], timings)
    with pytest.raises(RecordError, match="3 words, alignment has 2"):
        check_words("r", ["hello", "world", "again"], timings)


def test_timings_file_roundtrip_and_errors(tmp_path):
    path = tmp_path / "timings.jsonl"
    data = [("a/1", [WordTiming("hi", 0.0, 0.25)]), ("a/2", [WordTiming("yo", 0.1, 0.3)])]
    write_timings_jsonl(path, data)
    assert read_timings_jsonl(path) == dict(data)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file_id": "a", "words": [{"word": "x", "start": 0.3, "end": 0.1}]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1 \(a\): word 0"):
        read_timings_jsonl(bad)
    bad.write_text('{"file_id": "a", "words": []}\n{"file_id": "a", "words": []}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2: file_id 'a' appears twice"):
        read_timings_jsonl(bad)


# -- CTC: emissions built from a known frame labelling --------------------------------------------------

VOCAB = {"<pad>": 0, "|": 1, "a": 2, "b": 3, "c": 4, "d": 5, "e": 6}


def emissions_for(labels: list[int], classes: int = len(VOCAB), noise: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(noise)
    logits = torch.randn(len(labels), classes, generator=gen)
    logits[torch.arange(len(labels)), torch.tensor(labels)] += 8.0
    return logits


def test_ctc_recovers_known_word_timings():
    # 20 ms CTC frames. "bad" occupies frames 5..14, "ace" frames 20..31, blanks elsewhere.
    labels = [0] * 50
    for f in range(5, 9):
        labels[f] = 3
    for f in range(9, 12):
        labels[f] = 2
    for f in range(12, 15):
        labels[f] = 5
    labels[20:24], labels[24:28], labels[28:32] = [2] * 4, [4] * 4, [6] * 4
    timings = ctc_word_timings("syn", emissions_for(labels), ["bad", "ace"], VOCAB, 0.02)
    assert [t.word for t in timings] == ["bad", "ace"]
    np.testing.assert_allclose([(t.start, t.end) for t in timings], [(0.10, 0.30), (0.40, 0.64)])
    # and through the record: 25 Hz frames [round(0.1*25), round(0.3*25)) = [2, 8) etc.
    utt = utterance_from_timings("syn", timings, list(range(40)))
    assert [(w.text, w.units[:1], len(w.units)) for w in utt.words][:4] == [
        (SILENCE, (0,), 2),
        ("bad", (2,), 6),
        (SILENCE, (8,), 2),
        ("ace", (10,), 6),
    ]


def test_ctc_errors_name_the_record():
    labels = [0, 2, 0]
    with pytest.raises(RecordError, match="u9: character not in the CTC vocabulary .*'z'"):
        ctc_word_timings("u9", emissions_for(labels), ["az"], VOCAB, 0.02)
    with pytest.raises(RecordError, match="u9: CTC alignment failed"):
        ctc_word_timings("u9", emissions_for(labels), ["abcde"], VOCAB, 0.02)


def test_ctc_aligner_with_a_tiny_model():
    """A 'model' whose frames (320 samples each) read the labelling back from the waveform."""
    labels = [0] * 6 + [3] * 3 + [2] * 3 + [5] * 2 + [0] * 6

    def model(wav: torch.Tensor) -> torch.Tensor:
        frames = wav.shape[1] // 320
        codes = wav[0, : frames * 320].reshape(frames, 320)[:, 0].round().long()
        return emissions_for(codes.tolist()).unsqueeze(0)

    wav = np.repeat(np.array(labels, dtype=np.float32), 320)
    aligner = CTCAligner(model, VOCAB, frame_seconds=0.02)
    [t] = aligner("m1", wav, ["BAD"])
    assert (t.word, t.start, t.end) == ("BAD", pytest.approx(0.12), pytest.approx(0.28))


def test_ctc_aligner_from_pretrained_folder(tmp_path):
    save_tiny_ctc_model(tmp_path, VOCAB)
    aligner = CTCAligner.from_pretrained(tmp_path)
    assert aligner.frame_seconds == pytest.approx(0.02) and aligner.blank == 0
    timings = aligner("r", np.zeros(16000, dtype=np.float32), ["abc", "de"])
    assert [t.word for t in timings] == ["abc", "de"]
    assert 0 <= timings[0].start <= timings[0].end <= timings[1].start <= timings[1].end <= 1.0
