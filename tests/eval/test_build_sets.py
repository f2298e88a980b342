"""The embedded sets: held-out sources, distractors, determinism, spoken renderings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lst_lightning.eval.build_sets import (
    build_sets,
    held_out_documents,
    sets_are_built,
    story_items,
)
from lst_lightning.eval.minimal_pairs import PHENOMENA, SWAPS, LengthBalance, ungrammatical
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
            assert any(f"{item.prompt} {true}" in d for d in held_out)
            assert f"{item.prompt} {true}" not in train
            lengths = {len(e.split()) for e in item.endings}
            assert len(lengths) == 1 and len(set(item.endings)) == choices
            if name != "topic":
                assert len({e.split()[0] for e in item.endings}) == 1


def _shape(text: str) -> str:
    """The capitals and punctuation in order: what a spelling cue could use."""
    return "".join(c for c in text if not c.islower() and c != " ")


def test_minimal_pairs_have_no_length_or_spelling_cue(benchmarks, eval_corpus, sets_dir):
    known = set((eval_corpus / "text_train.txt").read_text().split())
    manifest = json.loads((sets_dir / "manifest.json").read_text())["sets"]
    for name in ("swuggy", "sblimp"):
        bench = benchmarks[name]
        shorter = {"good": 0, "bad": 0}
        for item in bench.items:
            good, bad = item.endings[item.label], item.endings[1 - item.label]
            assert item.prompt == "" and item.prompt_units == ()
            assert good != bad and len(good) == len(bad) and _shape(good) == _shape(bad)
            g, b = len(item.ending_units[item.label]), len(item.ending_units[1 - item.label])
            if g != b:
                shorter["good" if g < b else "bad"] += 1
        # "the shorter rendering wins" is at chance: the two sides differ by at most one pair
        assert abs(shorter["good"] - shorter["bad"]) <= 1, (name, shorter)
        lengths = manifest[name]["spoken_lengths"]
        assert (
            lengths["good_shorter"] == shorter["good"] and lengths["bad_shorter"] == shorter["bad"]
        )
    for item in benchmarks["swuggy"].items:
        real, nonce = item.endings[item.label], item.endings[1 - item.label]
        assert sum(a != b for a, b in zip(real, nonce, strict=True)) == 1
        assert nonce not in known
    phenomena = {item.id.split("/")[1] for item in benchmarks["sblimp"].items}
    assert phenomena <= set(PHENOMENA) and len(phenomena) >= 2
    for item in benchmarks["sblimp"].items:
        good, bad = item.endings[item.label].split(), item.endings[1 - item.label].split()
        assert len(good) == len(bad)
        changed = [(a, b) for a, b in zip(good, bad, strict=True) if a != b]
        kind = item.id.split("/")[1]
        if kind == "word_order":
            assert sorted(good) == sorted(bad) and len(changed) == 2
        else:
            assert len(changed) == 1 and SWAPS[kind][changed[0][0]] == changed[0][1]


def test_length_balance_and_ungrammatical_keep_counts():
    balance = LengthBalance()
    admitted = []
    for good, bad in [(3, 4), (3, 5), (5, 5), (2, 6), (6, 2), (7, 3), (1, 9)]:
        if balance.admits(good, bad):
            balance.add(good, bad)
            admitted.append((good, bad))
    assert admitted == [(3, 4), (5, 5), (6, 2), (7, 3), (1, 9)]
    rng = np.random.default_rng(0)
    words = "Then she was , they said , seen by us".split()
    for prefer in (["agreement"], ["case"], ["word_order"]):
        kind, bad = ungrammatical(words, rng, prefer)
        assert kind == prefer[0] and len(" ".join(bad)) == len(" ".join(words))
        assert _shape(" ".join(bad)) == _shape(" ".join(words))
    assert ungrammatical(["Yes,", "Sir."], rng) is None  # nothing bare and lower-case to change


def test_story_sets_take_several_passages_per_document(eval_corpus, tmp_path):
    docs = held_out_documents(eval_corpus)
    items = story_items("storycloze", docs, 10_000, np.random.default_rng(0))
    sources = [next(i for i, d in enumerate(docs) if f"{it.prompt} " in d) for it in items]
    assert len(items) > len(set(sources))  # some document gave more than one item
    assert len({it.prompt for it in items}) == len(items)


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


def test_sets_of_an_older_construction_count_as_not_built(sets_dir, tmp_path):
    assert sets_are_built(sets_dir)
    for f in sets_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest | {"version": 1}))
    assert not sets_are_built(tmp_path)
