"""The generated corpus: English-like sentences with synthetic, learnable "speech" units.

It exists so that the kit's tests and its default training run need nothing from outside. Sentences
come from a small built-in grammar; each word is "spoken" letter by letter: every letter has one
fixed unit (drawn from the seed) held for 1-3 frames, and ``[SIL]`` gaps of 0-3 frames of a few
silence units sit between words and at both ends. A model can therefore learn the mapping between
text and units, which is what interleaved training is about. Text-only documents come from the
same grammar but never repeat a sentence that was synthesised. (A fuller corpus with real TTS audio
and an offline unit tokenizer is a separate, later component; this one is "the generated corpus".)

Output of :func:`generate_corpus`: ``train.jsonl`` / ``valid.jsonl`` (aligned-unit format),
``text_train.txt`` / ``text_valid.txt`` (one document a line), ``tokenizer.model`` and ``stats.json``.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    SILENCE,
    AlignedUtterance,
    AlignedWord,
    write_aligned_jsonl,
    write_text_atomic,
)
from lst_lightning.data.vocab import TokenSpace, train_text_tokenizer

FRAME_RATE_HZ = 25
NUM_SILENCE_UNITS = 3
TEXT_VOCAB_SIZE = 512
VALID_FRACTION = 0.05
CORPUS_FILES = (
    "train.jsonl",
    "valid.jsonl",
    "text_train.txt",
    "text_valid.txt",
    "tokenizer.model",
)
"""The files the datamodule reads: a corpus of your own needs these five and nothing else."""
STATS_FILE = "stats.json"
"""Written by the kit's builders beside :data:`CORPUS_FILES`: the corpus's sizes and how it was
built. Informational (training never reads it); the generated corpus's benchmark voice is rebuilt
from it."""

# -- the grammar's word lists (about 330 words, plus plurals) -------------------------------------------------
NAMES = (
    "anna peter mary john lucy tom emma david sarah james clara henry alice george rose frank "
    "ellen oliver nora samuel ruth arthur grace walter helen martin julia robert edith hugh"
).split()
PRONOUNS = "he she they we i you".split()
NOUNS = (
    "dog cat horse bird fox mouse rabbit cow sheep goat child girl boy woman man farmer king queen "
    "teacher doctor sailor baker soldier stranger neighbour friend mother father sister brother "
    "house garden river forest field road bridge castle village town window door table chair bed "
    "kitchen church school market mountain hill valley lake island ship boat cart wagon train "
    "letter book song story picture map key box basket bottle cup plate knife lamp candle coat hat "
    "shoe ring coin bell clock flower tree apple bread cake cheese soup egg fish stone rope fire "
    "storm cloud wind star moon sun morning evening winter summer"
).split()
IRREGULAR_PLURALS = {
    "child": "children",
    "woman": "women",
    "man": "men",
    "mouse": "mice",
    "sheep": "sheep",
    "fish": "fish",
    "knife": "knives",
    "wolf": "wolves",
}
ADJECTIVES = (
    "old young little big small tall short quiet loud bright dark warm cold wet dry happy sad "
    "tired hungry clever brave gentle kind strange famous poor rich busy lazy proud careful "
    "green red blue yellow white black brown gray golden silver heavy light empty full new "
    "broken clean dirty sweet bitter soft hard wild tame narrow wide deep early late lonely"
).split()
TRANSITIVE = (
    "saw found carried opened closed watched followed helped called visited painted built "
    "bought sold cleaned filled lost held kept pushed pulled washed brought took gave left "
    "loved liked missed met heard caught dropped lifted mended fed chased wanted counted "
    "remembered forgot noticed reached crossed"
).split()
INTRANSITIVE = (
    "slept laughed waited smiled sang danced ran walked cried shouted listened rested arrived "
    "stayed returned worked played stopped fell swam jumped whispered wandered hurried"
).split()
SAYING = "said thought knew believed dreamed hoped".split()
ADVERBS = (
    "slowly quickly quietly loudly happily sadly carefully suddenly softly gladly early late "
    "again together alone often"
).split()
PREPOSITIONS = "in on near under behind beside across through into over from with".split()
TIMES = (
    "one day|that night|in the morning|at dawn|after dinner|before noon|in the evening|"
    "last winter|the next day|long ago|at last|every summer"
).split("|")
CONJUNCTIONS = "and|but|because|when|while|so|until|after|before".split("|")


def _plural(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


class SentenceGrammar:
    """A tiny probabilistic grammar of plain, lower-case English sentences."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _pick(self, words: list[str] | tuple[str, ...]) -> str:
        return words[int(self.rng.integers(len(words)))]

    def _chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def noun_phrase(self) -> tuple[list[str], bool]:
        """Words of a noun phrase and whether it is plural (for "was"/"were")."""
        if self._chance(0.15):
            return [self._pick(NAMES)], False
        n_adjectives = int(self.rng.choice(3, p=[0.45, 0.4, 0.15]))
        adjectives = [self._pick(ADJECTIVES) for _ in range(n_adjectives)]
        noun = self._pick(NOUNS)
        if self._chance(0.3):
            det = self._pick(
                ("the", "some", "two", "three", "many", "these", "those", "her", "his")
            )
            return [det, *adjectives, _plural(noun)], True
        det = self._pick(("the", "the", "a", "one", "every", "this", "that", "my", "our", "her"))
        words = [*adjectives, noun]
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return [det, *words], False

    def subject(self) -> tuple[list[str], bool]:
        if self._chance(0.25):
            pronoun = self._pick(PRONOUNS)
            return [pronoun], pronoun in ("they", "we", "you")
        return self.noun_phrase()

    def clause(self, depth: int = 0) -> list[str]:
        words, plural = self.subject()
        kind = self.rng.random()
        if kind < 0.45:
            words += [self._pick(TRANSITIVE), *self.noun_phrase()[0]]
        elif kind < 0.75:
            words.append(self._pick(INTRANSITIVE))
            if self._chance(0.4):
                words.append(self._pick(ADVERBS))
        elif kind < 0.9 or depth > 0:
            words += ["were" if plural else "was", self._pick(ADJECTIVES)]
        else:
            return words + [self._pick(SAYING), "that", *self.clause(depth + 1)]
        if self._chance(0.35):
            words += [self._pick(PREPOSITIONS), *self.noun_phrase()[0]]
        return words

    def sentence(self) -> str:
        words: list[str] = []
        if self._chance(0.2):
            words += self._pick(TIMES).split()
        words += self.clause()
        if self._chance(0.35):
            words += [*self._pick(CONJUNCTIONS).split(), *self.clause()]
        return " ".join(words)


class UnitVoice:
    """Renders words as unit frames: one fixed unit per letter, 1-3 frames each; silences between."""

    def __init__(self, seed: int, num_units: int = DEFAULT_NUM_UNITS) -> None:
        letters = string.ascii_lowercase
        if num_units < len(letters) + NUM_SILENCE_UNITS:
            raise ValueError(f"num_units={num_units} is too small for the generated voice")
        table = np.random.default_rng([seed, 1]).choice(
            num_units, size=len(letters) + NUM_SILENCE_UNITS, replace=False
        )
        self.letter_units = {c: int(u) for c, u in zip(letters, table, strict=False)}
        self.silence_units = tuple(int(u) for u in table[len(letters) :])

    def word(self, word: str, rng: np.random.Generator) -> tuple[int, ...]:
        frames: list[int] = []
        for c in word:
            if c not in self.letter_units:
                raise ValueError(f"the generated voice cannot say {c!r} (in {word!r})")
            frames += [self.letter_units[c]] * int(rng.integers(1, 4))
        return tuple(frames)

    def silence(self, rng: np.random.Generator) -> tuple[int, ...]:
        n = int(rng.integers(0, 4))
        return tuple(int(u) for u in rng.choice(self.silence_units, size=n))

    def utterance(self, file_id: str, text: str, rng: np.random.Generator) -> AlignedUtterance:
        words = [AlignedWord(SILENCE, self.silence(rng))]
        for w in text.split():
            words += [AlignedWord(w, self.word(w, rng)), AlignedWord(SILENCE, self.silence(rng))]
        return AlignedUtterance(file_id, tuple(words))


def _split_counts(n: int) -> tuple[int, int]:
    """(train, valid) sizes: 5% held out, at least one of each where there are two or more."""
    if n < 2:
        return n, 0
    valid = min(n - 1, max(1, round(n * VALID_FRACTION)))
    return n - valid, valid


def generate_corpus(
    out_dir: str | Path,
    num_utterances: int,
    num_text_docs: int,
    seed: int = 0,
    num_units: int = DEFAULT_NUM_UNITS,
    text_vocab_size: int = TEXT_VOCAB_SIZE,
) -> dict:
    """Write the generated corpus into ``out_dir`` (created if needed); return its statistics.

    ``num_utterances`` and ``num_text_docs`` count train and valid together (5% valid). The output
    depends only on the arguments: the same seed gives the same bytes in every file.
    """
    if num_utterances < 1 or num_text_docs < 0:
        raise ValueError("need num_utterances >= 1 and num_text_docs >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grammar = SentenceGrammar(np.random.default_rng([seed, 2]))
    voice = UnitVoice(seed, num_units)
    audio_rng = np.random.default_rng([seed, 3])
    doc_rng = np.random.default_rng([seed, 4])
    seen: set[str] = set()

    def fresh_sentence() -> str:
        for _ in range(1000):
            s = grammar.sentence()
            if s not in seen:
                seen.add(s)
                return s
        raise RuntimeError("the grammar ran out of new sentences")

    utterances = []
    for i in range(num_utterances):
        text = " ".join(fresh_sentence() for _ in range(1 + int(doc_rng.random() < 0.3)))
        utterances.append(voice.utterance(f"generated/{i:06d}", text, audio_rng))
    texts = [
        " ".join(fresh_sentence() for _ in range(int(doc_rng.integers(1, 5))))
        for _ in range(num_text_docs)
    ]
    n_utt_train, _ = _split_counts(num_utterances)
    n_text_train, _ = _split_counts(num_text_docs)
    splits = {
        "train": (utterances[:n_utt_train], texts[:n_text_train]),
        "valid": (utterances[n_utt_train:], texts[n_text_train:]),
    }
    for name, (utts, docs) in splits.items():
        write_aligned_jsonl(out / f"{name}.jsonl", utts)
        write_text_atomic(out / f"text_{name}.txt", "".join(d + "\n" for d in docs))
    train_utts, train_texts = splits["train"]
    train_text_tokenizer(
        [u.transcript for u in train_utts] + train_texts, out / "tokenizer.model", text_vocab_size
    )
    space = TokenSpace(out / "tokenizer.model", num_units)
    stats = {
        "corpus": "generated",
        "seed": seed,
        "num_units": num_units,
        "frame_rate_hz": FRAME_RATE_HZ,
        "text_vocab_size": space.text_vocab_size,
        "vocab_size": space.vocab_size,
        "letter_units": voice.letter_units,
        "silence_units": list(voice.silence_units),
        "splits": {name: split_stats(utts, docs, space) for name, (utts, docs) in splits.items()},
    }
    write_text_atomic(out / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats


def split_stats(utterances: list[AlignedUtterance], texts: list[str], space: TokenSpace) -> dict:
    """Sizes of one split, for ``stats.json`` and the build log."""
    units = sum(u.num_frames for u in utterances)
    transcript_tokens = sum(len(space.encode_text(u.transcript)) for u in utterances)
    text_tokens = sum(len(space.encode_text(t)) for t in texts)
    return {
        "utterances": len(utterances),
        "words": sum(len(u.spoken_words) for u in utterances),
        "units": units,
        "seconds": units / FRAME_RATE_HZ,
        "transcript_tokens": transcript_tokens,
        "text_docs": len(texts),
        "text_words": sum(len(t.split()) for t in texts),
        "text_tokens": text_tokens,
        "tokens": units + transcript_tokens + text_tokens,
    }
