from __future__ import annotations

import json

import pytest

from lst_lightning.data.records import (
    AlignedUtterance,
    AlignedWord,
    format_record,
    read_aligned_jsonl,
    write_aligned_jsonl,
)


def test_fixture_round_trips_byte_for_byte(mls_fixture_path, tmp_path):
    utterances = read_aligned_jsonl(mls_fixture_path)
    assert len(utterances) == 10
    out = tmp_path / "copy.jsonl"
    write_aligned_jsonl(out, utterances)
    assert out.read_bytes() == mls_fixture_path.read_bytes()


def test_fixture_contents(mls_utterances):
    first = mls_utterances[0]
    assert first.file_id == "mls_english/train/7240_6468_000000"
    assert first.words[0] == AlignedWord(
        "[SIL]", (99, 99, 99, 99, 7, 7, 7, 49, 49, 49, 38, 481, 149, 149, 140, 53)
    )
    assert first.words[0].is_silence and not first.words[1].is_silence
    assert first.transcript.startswith("in the pleasant time of pentecost by the little river kyll")
    assert "[SIL]" not in first.transcript
    assert first.num_frames == len(first.units) == sum(len(w.units) for w in first.words)
    empty = [w for u in mls_utterances for w in u.words if not w.units]
    assert len(empty) == 9  # the fixture's empty HUBERT segments survive as words without frames
    assert all(0 <= x < 501 for u in mls_utterances for x in u.units)


def test_write_is_inverse_of_read(tmp_path):
    utt = AlignedUtterance("a/b", (AlignedWord("[SIL]", ()), AlignedWord("héllo", (0, 500, 3))))
    path = tmp_path / "x.jsonl"
    write_aligned_jsonl(path, [utt, utt])
    assert read_aligned_jsonl(path) == [utt, utt]
    assert not [p for p in tmp_path.iterdir() if p.name != "x.jsonl"]  # no temp file left


GOOD = "<LST MODE SEP>TEXT hi <LST MODE SEP>HUBERT 1 2"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"file_id": "f"}), "missing key 'interleaved'"),
        (json.dumps({"interleaved": GOOD}), "missing key 'file_id'"),
        (json.dumps({"file_id": 3, "interleaved": GOOD}), "'file_id' must be a string"),
        (json.dumps({"file_id": "f", "interleaved": ""}), "no segments"),
        (json.dumps({"file_id": "f", "interleaved": "x" + GOOD}), "text before"),
        (json.dumps({"file_id": "f", "interleaved": "<LST MODE SEP>TEXT hi"}), "needs a HUBERT"),
        (
            json.dumps(
                {"file_id": "f", "interleaved": "<LST MODE SEP>HUBERT 1 <LST MODE SEP>TEXT hi"}
            ),
            "should start with 'TEXT '",
        ),
        (json.dumps({"file_id": "f", "interleaved": GOOD + " x"}), "not a canonical integer"),
        (json.dumps({"file_id": "f", "interleaved": GOOD.replace("2", "02")}), "not a canonical"),
        (json.dumps({"file_id": "f", "interleaved": GOOD.replace("2", "501")}), "out of range"),
        (json.dumps({"file_id": "f", "interleaved": GOOD.replace("hi ", "hi")}), "single space"),
    ],
)
def test_bad_lines_name_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        format_record(AlignedUtterance("ok", (AlignedWord("a", (1,)),))) + "\n" + line + "\n"
    )
    with pytest.raises(ValueError, match=problem) as info:
        read_aligned_jsonl(path)
    assert f"{path}:2" in str(info.value)


def test_num_units_bounds_the_unit_ids(tmp_path):
    path = tmp_path / "u.jsonl"
    write_aligned_jsonl(path, [AlignedUtterance("f", (AlignedWord("a", (7,)),))])
    assert read_aligned_jsonl(path, num_units=8)[0].units == (7,)
    with pytest.raises(ValueError, match=r"u.jsonl:1 \(f\): segment 1: unit 7 is out of range"):
        read_aligned_jsonl(path, num_units=7)
