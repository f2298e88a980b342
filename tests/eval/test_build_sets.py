"""The embedded sets: held-out sources, distractors, determinism, spoken renderings."""

from __future__ import annotations

import numpy as np
import pytest

from lst_lightning.eval.build_sets import build_sets, held_out_documents
from lst_lightning.eval.render import GeneratedVoiceRenderer, TTSRenderer, speak_item
from lst_lightning.eval.tasks import BenchmarkItem


def test_story_items_come_from_held_out_text_with_matched_distractors(eval_corpus, benchmarks):
    held_out = held_out_documents(eval_corpus)
    train = (eval_corpus / "text_train.txt").read_text()
    for name, choices in (("storycloze", 2), ("topic", 2), ("hellaswag", 4)):
        bench = benchmarks[name]
        assert len(bench.items) == 24 and bench.num_choices == choices
        labels = [item.label for item in bench.items]
        assert len(set(labels)) > 1  # the correct ending is not always in the same place
        for item in bench.items:
            true = item.endings[item.label]
            assert any(d.startswith(f"{item.prompt} {true}") for d in held_out)
            assert f"{item.prompt} {true}" not in train
            lengths = {len(e.split()) for e in item.endings}
            assert len(lengths) == 1 and len(set(item.endings)) == choices
            if name != "topic":
                assert len({e.split()[0] for e in item.endings}) == 1


def test_minimal_pairs(benchmarks, eval_corpus):
    known = set((eval_corpus / "text_train.txt").read_text().split())
    for item in benchmarks["swuggy"].items:
        real, nonce = item.endings[item.label], item.endings[1 - item.label]
        assert item.prompt == "" and item.prompt_units == ()
        assert (
            len(real) == len(nonce) and sum(a != b for a, b in zip(real, nonce, strict=True)) == 1
        )
        assert nonce not in known
    for item in benchmarks["sblimp"].items:
        good, bad = item.endings[item.label].split(), item.endings[1 - item.label].split()
        assert good != bad and len(good) == len(bad)
        if "/agreement/" in item.id:
            assert {a for a, b in zip(good, bad, strict=True) if a != b} <= {"was", "were"}
        else:
            assert sorted(good) == sorted(bad)


def test_build_is_deterministic_and_spoken_form_is_the_corpus_voice(
    eval_corpus, sets_dir, tmp_path
):
    renderer = GeneratedVoiceRenderer.from_corpus(eval_corpus)
    build_sets(eval_corpus, tmp_path, renderer, items=24)
    for name in ("storycloze", "sblimp", "manifest"):
        ext = "json" if name == "manifest" else "jsonl"
        a, b = (tmp_path / f"{name}.{ext}").read_text(), (sets_dir / f"{name}.{ext}").read_text()
        if name == "manifest":
            a, b = a.replace(str(tmp_path), ""), b.replace(str(sets_dir), "")
        assert a == b
    letters = renderer.voice.letter_units
    silences = set(renderer.voice.silence_units)
    units = renderer.render("the dog")
    squeezed = [
        u for i, u in enumerate(units) if u not in silences and (i == 0 or units[i - 1] != u)
    ]
    assert squeezed == [letters[c] for c in "thedog"]
    assert renderer.render("the dog") == units


def test_tts_renderer_renders_prompt_and_endings_separately():
    calls = []

    def synthesize(text: str, voice: str):
        calls.append((text, voice))
        return np.full(640 * len(text), 0.1, dtype=np.float32), []

    def tokenizer(wav, sr):
        assert sr == 16_000
        return np.arange(len(wav) // 640, dtype=np.int64) % 7

    renderer = TTSRenderer("held-out", tokenizer, synthesize=synthesize, num_units=501)
    item = speak_item(BenchmarkItem("x", "ab", ("cde", "f"), 0), renderer)
    assert calls == [("ab", "held-out"), ("cde", "held-out"), ("f", "held-out")]
    assert item.prompt_units == (0, 1) and item.ending_units == ((0, 1, 2), (0,))
    bad = TTSRenderer("v", lambda w, sr: np.array([900]), synthesize=synthesize, num_units=501)
    with pytest.raises(ValueError, match=r"outside \[0, 501\)"):
        bad.render("a")
