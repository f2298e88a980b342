"""Build the embedded benchmark sets from a corpus' held-out text, offline and deterministically.

``python -m lst_lightning.eval.build_sets --corpus data/embedded --out data/embedded/eval``

Sources are the held-out documents only (``text_valid.txt`` and the transcripts of
``valid.jsonl``), so no item was seen in training. A story item cuts a document into a prompt and
its real continuation of a few words; distractor endings have the same number of words and come
from other documents:

- ``storycloze`` (2 endings): the distractor starts with the same word as the real ending, so the
  join is equally plausible and the model must follow the prompt further than one word;
- ``topic`` (2 endings, Topic-StoryCloze style): the distractor is a span at a random place of a
  random other document, so it is off-topic and usually breaks the sentence at the join;
- ``hellaswag`` (4 endings): a longer prompt and ending, three same-first-word distractors;
- ``swuggy`` and ``sblimp``: spoken minimal pairs (see :mod:`lst_lightning.eval.minimal_pairs`),
  length-balanced in their spoken form and without character-count or spelling cues.

A document gives several items (one per passage of ``MAX_PROMPT_WORDS`` + ending words), so a few
hundred held-out documents give the ~600 items per set that separate systems. After the sets,
the no-model heuristics (:mod:`lst_lightning.eval.heuristics`) are scored on them and written to
``heuristics.json``; a set that a heuristic solves better than chance by more than 2 standard
errors is flagged in the manifest and in every results table.

Every set is written in the written and the spoken form: the prompt and every ending rendered
separately by a :class:`~lst_lightning.eval.render.SpeechRenderer` (the corpus' generated voice,
or TTS in a held-out voice + the unit tokenizer). A ``manifest.json`` records how each set was made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lst_lightning.data.records import iter_aligned_jsonl, write_text_atomic
from lst_lightning.eval.heuristics import HEURISTICS_FILE, heuristics_report, write_heuristics
from lst_lightning.eval.minimal_pairs import lexical_pairs, syntactic_pairs
from lst_lightning.eval.render import (
    GeneratedVoiceRenderer,
    SpeechRenderer,
    TTSRenderer,
    speak_item,
)
from lst_lightning.eval.tasks import BenchmarkItem, write_benchmark

STORY_SETS = {
    # name: (choices, min prompt words, ending words low..high, same first word)
    "storycloze": (2, 6, (4, 8), True),
    "topic": (2, 6, (4, 8), False),
    "hellaswag": (4, 8, (6, 10), True),
}
SET_DESCRIPTIONS = {
    "storycloze": "real continuation vs a same-first-word span of another document (2-way)",
    "topic": "real continuation vs a random span of another document (2-way, Topic-StoryCloze style)",
    "hellaswag": "real continuation vs three same-first-word spans of other documents (4-way)",
    "swuggy": "real word vs one-letter nonce word, spoken lengths matched (lexical minimal pairs)",
    "sblimp": "grammatical vs same-length agreement / case / word-order change (syntactic pairs)",
}
ALL_SETS = tuple(SET_DESCRIPTIONS)
DEFAULT_ITEMS = {"storycloze": 600, "topic": 600, "hellaswag": 500, "swuggy": 600, "sblimp": 600}
"""Items per set: enough to separate systems (at chance the binomial standard error is 2.0
points for 600 two-way items and 1.9 for 500 four-way ones, so a 95% interval is about +-4)."""
SETS_VERSION = 2
"""Version of the construction; sets written by another version count as not built (version 1:
100/200 items, length- and spelling-cued minimal pairs, order-dependent renderings)."""
MAX_PROMPT_WORDS = 24
"""Prompts are cut at most this many words into a document (spoken, about 300 units)."""


def held_out_documents(corpus_dir: str | Path) -> list[str]:
    """``text_valid.txt`` lines then ``valid.jsonl`` transcripts, without duplicates."""
    corpus = Path(corpus_dir)
    docs: list[str] = []
    text_path = corpus / "text_valid.txt"
    if text_path.is_file():
        docs += [line.strip() for line in text_path.read_text(encoding="utf-8").splitlines()]
    utt_path = corpus / "valid.jsonl"
    if utt_path.is_file():
        docs += [u.transcript for u in iter_aligned_jsonl(utt_path)]
    docs = list(dict.fromkeys(d for d in docs if d))
    if not docs:
        raise FileNotFoundError(f"no held-out text in {corpus} (text_valid.txt / valid.jsonl)")
    return docs


def known_words(corpus_dir: str | Path, documents: Sequence[str]) -> set[str]:
    """Every word of the training text and of ``documents``: nonce words must avoid them."""
    words = {w for d in documents for w in d.split()}
    train = Path(corpus_dir) / "text_train.txt"
    if train.is_file():
        words |= set(train.read_text(encoding="utf-8").split())
    return words


def passages(documents: Sequence[list[str]], span: int) -> list[tuple[int, int]]:
    """``(document, first word)`` of consecutive, non-overlapping ``span``-word passages (the last
    one of a document may be shorter): several items per document, none sharing words."""
    return [(d, lo) for d, words in enumerate(documents) for lo in range(0, len(words), span)]


def story_items(
    name: str, documents: Sequence[str], count: int, rng: np.random.Generator
) -> list[BenchmarkItem]:
    """Up to ``count`` items of story set ``name``, one per passage of a held-out document (each
    passage at most ``MAX_PROMPT_WORDS`` + the longest ending long, so a document gives several);
    distractors come from other documents."""
    choices, min_prompt, (lo, hi), same_first = STORY_SETS[name]
    split = [d.split() for d in documents]
    starts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for d, words in enumerate(split):
        for pos in range(1, len(words)):
            starts[words[pos]].append((d, pos))
    sources = passages(split, MAX_PROMPT_WORDS + hi)
    items: list[BenchmarkItem] = []
    for k in rng.permutation(len(sources)):
        if len(items) == count:
            break
        d, first = sources[int(k)]
        words = split[d][first : first + MAX_PROMPT_WORDS + hi]
        m = int(rng.integers(lo, hi + 1))
        if len(words) < min_prompt + m:
            continue
        cut = int(rng.integers(min_prompt, min(len(words) - m, MAX_PROMPT_WORDS) + 1))
        ending = words[cut : cut + m]
        if same_first:
            pool = [(e, p) for e, p in starts[ending[0]] if e != d and p + m <= len(split[e])]
        else:
            pool = [(e, 0) for e in range(len(split)) if e != d and len(split[e]) > m]
        picked: list[list[str]] = []
        used_docs = {d}
        for j in rng.permutation(len(pool)):
            e, p = pool[int(j)]
            if e in used_docs:
                continue
            if not same_first:
                p = int(rng.integers(1, len(split[e]) - m + 1))
            span = split[e][p : p + m]
            if span != ending and span not in picked:
                picked.append(span)
                used_docs.add(e)
            if len(picked) == choices - 1:
                break
        if len(picked) < choices - 1:
            continue
        label = int(rng.integers(choices))
        endings = [" ".join(s) for s in picked]
        endings.insert(label, " ".join(ending))
        items.append(
            BenchmarkItem(f"{name}/{len(items):04d}", " ".join(words[:cut]), tuple(endings), label)
        )
    return items


def build_sets(
    corpus_dir: str | Path,
    out_dir: str | Path,
    renderer: SpeechRenderer,
    seed: int = 0,
    items: int | None = None,
    sets: Sequence[str] = ALL_SETS,
    with_heuristics: bool = True,
) -> dict:
    """Write ``<set>.jsonl`` for each set, ``heuristics.json`` (the no-model baselines, see
    :mod:`lst_lightning.eval.heuristics`) and ``manifest.json`` (last); return the manifest."""
    unknown = [s for s in sets if s not in SET_DESCRIPTIONS]
    if unknown:
        raise ValueError(f"unknown set {', '.join(unknown)}; choose from {', '.join(ALL_SETS)}")
    if items is not None and items < 1:
        raise ValueError(f"items must be >= 1, got {items}")
    docs = held_out_documents(corpus_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "corpus": str(corpus_dir),
        "renderer": renderer.name,
        "version": SETS_VERSION,
        "seed": seed,
        "held_out_documents": len(docs),
        "sets": {},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # renders are tiny: extra threads only contend (10x slower on 2 cores)
    try:
        for i, name in enumerate(sets):
            rng = np.random.default_rng([seed, i, sum(map(ord, name))])
            count = items or DEFAULT_ITEMS[name]
            stats: dict = {}
            if name in STORY_SETS:
                spoken = [
                    speak_item(item, renderer) for item in story_items(name, docs, count, rng)
                ]
            elif name == "swuggy":
                known = known_words(corpus_dir, docs)
                spoken, lengths = lexical_pairs(docs, known, count, rng, renderer)
                stats = {"spoken_lengths": lengths}
            else:
                spoken, stats = syntactic_pairs(docs, count, rng, renderer)
            if not spoken:
                raise ValueError(f"{corpus_dir}: the held-out text is too short to build {name}")
            write_benchmark(out / f"{name}.jsonl", spoken)
            manifest["sets"][name] = {
                "description": SET_DESCRIPTIONS[name],
                "items": len(spoken),
                "choices": spoken[0].num_choices,
                **stats,
            }
    finally:
        torch.set_num_threads(threads)
    if with_heuristics:
        report = heuristics_report(corpus_dir, out, sets)
        write_heuristics(out, report)
        for name, rows in report["sets"].items():
            manifest["sets"][name]["heuristics"] = {
                f"{r['form']}: {r['heuristic']}": round(r["accuracy"], 4) for r in rows
            }
            manifest["sets"][name]["flagged"] = [
                f"{r['form']}: {r['heuristic']}" for r in rows if r["flagged"]
            ]
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def sets_are_built(out_dir: str | Path, sets: Sequence[str] = ALL_SETS) -> bool:
    """Whether ``out_dir`` holds ``sets``, written by this :data:`SETS_VERSION` of the builder."""
    manifest = Path(out_dir) / "manifest.json"
    if not manifest.is_file():
        return False
    doc = json.loads(manifest.read_text())
    if doc.get("version") != SETS_VERSION:
        return False  # built by an older construction: rebuild
    listed = doc.get("sets", {})
    return all(s in listed and (Path(out_dir) / f"{s}.jsonl").is_file() for s in sets)


def make_renderer(
    corpus_dir: str | Path,
    kind: str = "auto",
    voice: str | None = None,
    unit_tokenizer: str | None = None,
) -> SpeechRenderer:
    """``generated`` (the corpus' own voice), ``tts`` (held-out voice + unit tokenizer) or ``auto``
    (generated when ``stats.json`` says so, else tts)."""
    stats_path = Path(corpus_dir) / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    if kind == "auto":
        kind = "generated" if stats.get("corpus") == "generated" else "tts"
    if kind == "generated":
        return GeneratedVoiceRenderer.from_corpus(corpus_dir)
    if kind != "tts":
        raise ValueError(f"renderer must be auto, generated or tts, got {kind!r}")
    if voice is None and stats.get("corpus") == "embedded":
        from lst_lightning.data.corpora.embedded import HELDOUT_VOICE

        voice = HELDOUT_VOICE  # the speaker no training utterance uses
    tokenizer = unit_tokenizer
    if tokenizer is None and (Path(corpus_dir) / "units.pt").is_file():
        tokenizer = "units.pt"  # the embedded corpus' fitted unit tokenizer
    if not voice or not tokenizer:
        raise ValueError(
            f"the tts renderer needs a held-out voice and a unit tokenizer for {corpus_dir}: "
            "pass --voice and --unit-tokenizer"
        )
    tok_path = Path(tokenizer)
    if not tok_path.is_absolute():
        tok_path = Path(corpus_dir) / tok_path
    return TTSRenderer.from_files(voice, tok_path, num_units=stats.get("num_units"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/embedded", help="corpus folder")
    parser.add_argument("--out", default=None, help="output folder (default: <corpus>/eval)")
    parser.add_argument("--renderer", default="auto", choices=("auto", "generated", "tts"))
    parser.add_argument("--voice", default=None, help="tts: the held-out voice")
    parser.add_argument("--unit-tokenizer", default=None, help="tts: unit tokenizer file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--items",
        type=int,
        default=None,
        help="items per set (default: 600 per 2-way set, 500 for hellaswag)",
    )
    parser.add_argument("--sets", nargs="+", default=list(ALL_SETS), choices=ALL_SETS)
    parser.add_argument("--force", action="store_true", help="rebuild even if the sets exist")
    args = parser.parse_args(argv)
    out = Path(args.out or Path(args.corpus) / "eval")
    if sets_are_built(out, args.sets) and not args.force:
        print(f"{out} already holds {', '.join(args.sets)} (pass --force to rebuild)")
        return 0
    start = time.perf_counter()
    try:
        renderer = make_renderer(args.corpus, args.renderer, args.voice, args.unit_tokenizer)
        manifest = build_sets(args.corpus, out, renderer, args.seed, args.items, args.sets)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # EspeakMissing: the tts renderer without espeak-ng
        if type(e).__name__ != "EspeakMissing":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"built {out} in {time.perf_counter() - start:.1f} s with {manifest['renderer']}")
    for name, info in manifest["sets"].items():
        print(f"  {name}: {info['items']} items, {info['choices']} choices: {info['description']}")
        if info.get("flagged"):
            print(f"    a no-model heuristic beats chance by > 2 SE: {', '.join(info['flagged'])}")
    print(f"no-model heuristics: {out / HEURISTICS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
