"""The embedded corpus: planning, a tiny real build (espeak-ng), determinism, resume, bad records."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lst_lightning.data.corpora.embedded import (
    EXTRA_FILES,
    HELDOUT,
    CorpusPlan,
    EmbeddedConfig,
    PlannedUtterance,
    SynthesisedUtterance,
    assemble_corpus,
    build_embedded_corpus,
    plan_corpus,
    shard_path,
    synthesize_shards,
)
from lst_lightning.data.corpora.synthetic import CORPUS_FILES
from lst_lightning.data.corpora.textsource import load_text_file
from lst_lightning.data.corpora.tts import espeak_available
from lst_lightning.data.records import format_record, read_aligned_jsonl
from lst_lightning.data.speech.align import WordTiming
from lst_lightning.data.speech.audio import RecordError
from lst_lightning.data.stream.dataset import PackedDocumentDataset, load_corpus
from lst_lightning.data.vocab import TokenSpace

needs_espeak = pytest.mark.skipif(
    not espeak_available(),
    reason="espeak-ng is not installed: run `make setup` as root or `apt-get install espeak-ng`",
)

STORY = """\
The lighthouse keeper climbed the stairs every evening at dusk. He counted each step aloud.

His daughter kept the log book in careful handwriting. She noted the wind and the ships.

One winter the lamp failed during a storm. The keeper lit candles along the gallery.

A fishing boat saw the little lights and turned away from the rocks. Its crew sent a letter of thanks.

The village built a new lamp in the spring. Everyone came to watch it shine for the first time.

The daughter later became the keeper herself. She trained two apprentices from the harbour.

Visitors still climb the same stairs today. The old log book rests in a glass case.

Gulls nest on the ledge below the window. Their chicks call loudly before the morning tide.

A painter spent one summer drawing the tower. Her pictures hang in the town hall.

The path to the lighthouse floods at high water. Walkers check the tide tables first.

In autumn the fog rolls in from the open sea. The horn sounds twice every minute.

The harbour master keeps a spare key to the door. He has never needed to use it.

Children from the school visit every June. They ask how heavy the great lens is.

The lens came from a workshop far inland. It travelled to the coast by cart and barge.

Some nights the keeper saw the northern lights. He wrote about them in long letters home.

Storms have broken windows twice in a hundred years. Each time the glass was replaced by spring.
"""


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "story.txt"
    path.write_text(STORY)
    return path


def tiny_config(story: Path, **overrides) -> EmbeddedConfig:
    settings = dict(
        utterances=8,
        heldout_utterances=2,
        voices=("en-us+m3", "en+f2"),
        heldout_voice="en-gb-x-rp+f3",
        num_units=16,
        text_vocab_size=320,
        shard_size=4,
        text_file=str(story),
        valid_fraction=0.25,
    )
    settings.update(overrides)
    return EmbeddedConfig(**settings)


# -- planning (no engine needed) --------------------------------------------------------------------------


def test_plan_is_seeded_and_keeps_speech_out_of_text(story):
    paragraphs = load_text_file(story)
    plan = plan_corpus(tiny_config(story), paragraphs)
    assert plan == plan_corpus(tiny_config(story), paragraphs)
    assert plan != plan_corpus(tiny_config(story, seed=1), paragraphs)
    splits = Counter(u.split for u in plan.utterances)
    assert splits == {"train": 6, "valid": 2, HELDOUT: 2}
    for u in plan.utterances:
        assert (u.voice == "en-gb-x-rp+f3") == (u.split == HELDOUT), u
        assert u.file_id.endswith("/" + u.voice)
        assert 150 <= u.rate <= 195
    spoken = {u.text for u in plan.utterances}
    for doc in plan.text_train + plan.text_valid:
        assert not any(s in doc for s in spoken), doc
    assert len(plan.text_train) + len(plan.text_valid) >= 2
    assert [len(s) for s in plan.shards(4)] == [4, 4, 2]


def test_plan_errors_name_the_problem(story):
    paragraphs = load_text_file(story)
    with pytest.raises(ValueError, match="fewer than the 500 utterances"):
        plan_corpus(tiny_config(story, utterances=498), paragraphs)
    with pytest.raises(ValueError, match="also a training voice"):
        tiny_config(story, heldout_voice="en-us+m3")
    with pytest.raises(ValueError, match="rate_range"):
        tiny_config(story, rate_range=(50, 100))


def test_bad_records_are_skipped_and_counted_or_stop(story, tmp_path):
    """Alignment problems: counted under ``skip``, named under ``stop``."""
    rng = np.random.default_rng(0)
    config = tiny_config(story, num_units=4, text_vocab_size=300)

    def utt(file_id: str, split: str, text: str, timings: list[WordTiming]) -> SynthesisedUtterance:
        wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
        return SynthesisedUtterance(file_id, text, "en-us+m3", split, wave, timings, b"")

    good = [WordTiming("one", 0.1, 0.4), WordTiming("two", 0.5, 0.9)]
    utterances = [
        utt("a/train", "train", "one two", good),
        utt("a/valid", "valid", "one two", good),
        utt("a/mismatch", "train", "one three", good),
        utt("a/too-long", "train", "one two", [*good[:1], WordTiming("two", 0.5, 3.0)]),
    ]
    plan = CorpusPlan((), ("Some text that nobody spoke.",), ("More text.",))
    skipped: Counter = Counter()
    stats = assemble_corpus(tmp_path, config, plan, utterances, skipped, on_error="skip")
    assert stats["skipped"] == {
        "transcript does not match alignment": 1,
        "alignment longer than audio": 1,
    }
    assert stats["splits"]["train"]["utterances"] == 1
    with pytest.raises(RecordError, match="a/mismatch: transcript does not match alignment"):
        assemble_corpus(tmp_path, config, plan, utterances, Counter(), on_error="stop")


# -- a real tiny build -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(story, tmp_path_factory) -> tuple[Path, EmbeddedConfig, dict]:
    out = tmp_path_factory.mktemp("embedded") / "corpus"
    config = tiny_config(story)
    stats = build_embedded_corpus(out, config, workers=2, keep_work=True)
    return out, config, stats


@needs_espeak
def test_tiny_build_has_the_datamodule_layout(built):
    out, config, stats = built
    for name in (*CORPUS_FILES, *EXTRA_FILES):
        assert (out / name).exists(), name
    for name in ("train.jsonl", "valid.jsonl", "heldout_voice.jsonl"):
        utterances = read_aligned_jsonl(out / name, config.num_units)
        # The writer reproduces the file byte for byte.
        text = "".join(format_record(u) + "\n" for u in utterances)
        assert text == (out / name).read_text()
        for u in utterances:
            assert u.num_frames > 10
            assert u.transcript.split() == [w.text for w in u.spoken_words]
    assert stats["splits"]["train"]["utterances"] + stats["skipped"].get("word not spoken", 0) >= 5
    assert stats["splits"]["train"]["units"] > 200
    assert stats["heldout_voice"]["utterances"] == 2
    assert json.loads((out / "stats.json").read_text())["corpus"] == "embedded"
    # The kit's own pipeline reads it.
    space = TokenSpace(out / "tokenizer.model", config.num_units)
    dataset = PackedDocumentDataset(
        load_corpus(out, "train", config.num_units), space, max_tokens=256, max_patches=128
    )
    rows = list(dataset)
    assert rows and all(len(r.tokens) <= 256 for r in rows)
    # A second call finds the finished corpus and returns its statistics.
    assert build_embedded_corpus(out, config) == stats
    with pytest.raises(FileExistsError, match="another configuration"):
        build_embedded_corpus(out, tiny_config(Path(config.text_file), seed=5))


@needs_espeak
def test_heldout_voice_never_appears_in_training(built):
    out, config, _ = built
    heldout = read_aligned_jsonl(out / "heldout_voice.jsonl", config.num_units)
    assert heldout and all(u.file_id.endswith("/" + config.heldout_voice) for u in heldout)
    training = read_aligned_jsonl(out / "train.jsonl", config.num_units) + read_aligned_jsonl(
        out / "valid.jsonl", config.num_units
    )
    assert {u.file_id.rsplit("/", 1)[1] for u in training} <= set(config.voices)
    assert not {u.transcript for u in heldout} & {u.transcript for u in training}
    from datasets import load_from_disk

    audio = load_from_disk(str(out / "heldout_voice_audio"))
    assert set(audio["voice"]) == {config.heldout_voice}
    assert audio["file_id"] == [u.file_id for u in heldout]


@needs_espeak
def test_resume_rebuilds_only_the_missing_shard(built):
    out, config, _ = built
    from datasets import load_from_disk

    work = out.parent / f"{out.name}.work"
    plan = plan_corpus(config, load_text_file(config.text_file))
    before = load_from_disk(str(shard_path(work, 1))).to_dict()
    shutil.rmtree(shard_path(work, 1))
    assert synthesize_shards(plan, work, config.shard_size, workers=2) == [1]
    # A fresh process per shard: the rebuilt shard is the same, audio and timings included.
    assert load_from_disk(str(shard_path(work, 1))).to_dict() == before
    assert synthesize_shards(plan, work, config.shard_size, workers=2) == []


@needs_espeak
def test_build_is_deterministic(built, tmp_path):
    out, config, _ = built
    again = tmp_path / "again"
    build_embedded_corpus(again, config, workers=1)
    for name in (
        "train.jsonl",
        "valid.jsonl",
        "heldout_voice.jsonl",
        "text_train.txt",
        "tokenizer.model",
    ):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert not (tmp_path / "again.work").exists()  # removed once the corpus is complete


def test_planned_utterance_ids_are_unique(story):
    plan = plan_corpus(tiny_config(story), load_text_file(story))
    ids = [u.file_id for u in plan.utterances]
    assert len(ids) == len(set(ids))
    assert all(isinstance(u, PlannedUtterance) for u in plan.utterances)


@needs_espeak
def test_cli_reports_a_clear_error(built, capsys):
    from lst_lightning.data.corpora.embedded import main

    out, _, _ = built
    assert main(["--out", str(out), "--seed", "5"]) == 1
    assert "another configuration" in capsys.readouterr().err
    assert main(["--out", str(out.parent / "other"), "--voices", "en-us", "zz-nowhere"]) == 1
    assert "no voice 'zz-nowhere'" in capsys.readouterr().err
