"""The benchmark format and the loaders of public releases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from datasets import Dataset

from lst_lightning.eval.tasks import (
    BenchmarkItem,
    from_hellaswag_rows,
    from_spoken_pairs,
    from_storycloze_rows,
    read_benchmark,
    write_benchmark,
)


def test_round_trip_and_errors_name_file_line_and_problem(tmp_path, benchmarks):
    items = benchmarks["storycloze"].items
    path = tmp_path / "story.jsonl"
    write_benchmark(path, items)
    again = read_benchmark(path, num_units=501)
    assert again.items == items and again.name == "story"
    bad = items[1].to_json() | {"label": 5}
    path.write_text(json.dumps(items[0].to_json()) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"story.jsonl:2 \(storycloze/0001\): label 5 is not in"):
        read_benchmark(path)
    path.write_text('{"id": "a", "label": 0, "prompt": 3}\n')
    with pytest.raises(ValueError, match=r":1: 'prompt' must be a string"):
        read_benchmark(path)
    spoken = items[0].to_json() | {"ending_units": [[1, 2], [600]]}
    path.write_text(json.dumps(spoken) + "\n")
    with pytest.raises(ValueError, match=r"outside \[0, 501\)"):
        read_benchmark(path, num_units=501)


def test_hf_storycloze_and_hellaswag_rows():
    story = Dataset.from_list(
        [
            {
                "story_id": "s1",
                **{f"input_sentence_{k}": f"Sentence {k}." for k in range(1, 5)},
                "sentence_quiz1": "Bad end.",
                "sentence_quiz2": "Good end.",
                "answer_right_ending": 2,
            }
        ]
    )
    bench = from_storycloze_rows(story)
    item = bench.items[0]
    assert item.prompt == "Sentence 1. Sentence 2. Sentence 3. Sentence 4."
    assert item.endings == ("Bad end.", "Good end.") and item.label == 1
    assert bench.directions() == ("T->T",)
    swag = Dataset.from_list([{"ind": 7, "ctx": "A man ", "endings": list("abcd"), "label": "3"}])
    h = from_hellaswag_rows(swag).items[0]
    assert (h.id, h.prompt, h.label, h.num_choices) == ("hellaswag/7", "A man", 3, 4)
    with pytest.raises(ValueError, match="row 0: missing field 'ctx'"):
        from_hellaswag_rows([{"endings": ["a", "b"], "label": "0"}])


def test_spoken_pairs_split_at_the_shared_prompt(tmp_path):
    rate = 16_000
    prompt = np.full(rate // 2, 0.1, dtype=np.float32)
    sf.write(tmp_path / "a_correct.wav", np.concatenate([prompt, np.full(800, 0.5)]), rate)
    # The other file at 8 kHz: read back resampled to 16 kHz.
    sf.write(tmp_path / "a_incorrect.wav", np.concatenate([prompt[::2], np.full(800, -0.5)]), 8000)

    def tokenizer(wav: np.ndarray, sr: int) -> np.ndarray:
        # one unit per 400 samples: 1 for quiet, 2 for loud, 3 for negative
        frames = wav[: len(wav) // 400 * 400].reshape(-1, 400).mean(1)
        return np.where(frames < -0.2, 3, np.where(frames > 0.3, 2, 1)).astype(np.int64)

    bench = from_spoken_pairs(tmp_path, tokenizer, name="ssc")
    item = bench.items[0]
    assert item.prompt_units == (1,) * 20 and item.prompt is None
    correct = item.ending_units[item.label]
    wrong = item.ending_units[1 - item.label]
    assert set(correct) == {2} and len(correct) == 2
    assert wrong[-3:] == (3, 3, 3) and len(wrong) in (4, 5)  # the join frame may blur
    assert bench.directions() == ("S->S",)
    (tmp_path / "b_correct.wav").write_bytes((tmp_path / "a_correct.wav").read_bytes())
    with pytest.raises(FileNotFoundError, match="no matching b_incorrect.wav"):
        from_spoken_pairs(tmp_path, tokenizer)


def test_items_need_two_endings_and_consistent_forms():
    with pytest.raises(ValueError, match="at least 2 endings"):
        BenchmarkItem("x", "p", ("a",), 0).validate()
    with pytest.raises(ValueError, match="2 written endings but 1 spoken"):
        BenchmarkItem("x", "p", ("a", "b"), 0, (1,), ((1,),)).validate()
