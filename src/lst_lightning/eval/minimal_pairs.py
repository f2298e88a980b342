"""Spoken minimal pairs in the benchmark format (sWUGGY / sBLIMP style), built from held-out text.

- Lexical (``swuggy``): a real word against a nonce word made from it by changing one letter
  (a vowel for another vowel, a consonant for another consonant, so it stays pronounceable) and
  checked not to be a word of the corpus.
- Syntactic (``sblimp``): the start of a held-out document against the same words made
  ungrammatical: subject-verb agreement flipped (``was`` <-> ``were``) where the span has one, else
  two adjacent different words swapped. The phenomenon is part of the item id.

The items have an empty prompt: the model scores each whole candidate (spoken: ``<s>`` + units,
written: ``<t>`` + BPE), and the pair's two candidates differ only where the probe says.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from lst_lightning.eval.tasks import BenchmarkItem

VOWELS = "aeiou"
CONSONANTS = "".join(c for c in string.ascii_lowercase if c not in VOWELS)
AGREEMENT = {"was": "were", "were": "was"}
MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_WORDS = 12


def _pair(item_id: str, good: str, bad: str, rng: np.random.Generator) -> BenchmarkItem:
    label = int(rng.integers(2))
    endings = (good, bad) if label == 0 else (bad, good)
    return BenchmarkItem(item_id, "", endings, label)


def nonce_word(word: str, known: set[str], rng: np.random.Generator, tries: int = 30) -> str | None:
    """``word`` with one letter replaced by another of its class, not in ``known``; None if none."""
    for _ in range(tries):
        i = int(rng.integers(len(word)))
        c = word[i]
        pool = VOWELS if c in VOWELS else CONSONANTS if c in CONSONANTS else ""
        if not pool:
            continue
        new = pool[int(rng.integers(len(pool)))]
        candidate = word[:i] + new + word[i + 1 :]
        if new != c and candidate not in known:
            return candidate
    return None


def lexical_pairs(
    documents: Sequence[str], known_words: set[str], count: int, rng: np.random.Generator
) -> list[BenchmarkItem]:
    """Up to ``count`` real/nonce word pairs from the words of ``documents`` (3+ letters a-z)."""
    vocab = sorted({w for d in documents for w in d.split() if len(w) >= 3 and _is_az(w)})
    rng.shuffle(vocab)
    items: list[BenchmarkItem] = []
    for word in vocab:
        if len(items) == count:
            break
        nonce = nonce_word(word, known_words, rng)
        if nonce is not None:
            items.append(_pair(f"swuggy/{len(items):04d}", word, nonce, rng))
    return items


def _is_az(word: str) -> bool:
    return all(c in string.ascii_lowercase for c in word)


def ungrammatical(words: list[str], rng: np.random.Generator) -> tuple[str, list[str]] | None:
    """(phenomenon, perturbed words): agreement flipped if possible, else an adjacent swap."""
    agreement = [i for i, w in enumerate(words) if w in AGREEMENT]
    if agreement:
        i = agreement[int(rng.integers(len(agreement)))]
        return "agreement", words[:i] + [AGREEMENT[words[i]]] + words[i + 1 :]
    swaps = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    if not swaps:
        return None
    i = swaps[int(rng.integers(len(swaps)))]
    return "word_order", words[:i] + [words[i + 1], words[i]] + words[i + 2 :]


def syntactic_pairs(
    documents: Sequence[str], count: int, rng: np.random.Generator
) -> list[BenchmarkItem]:
    """Up to ``count`` grammatical/ungrammatical pairs from the starts of ``documents``."""
    order = rng.permutation(len(documents))
    items: list[BenchmarkItem] = []
    for d in order:
        if len(items) == count:
            break
        words = documents[int(d)].split()
        if len(words) < MIN_SENTENCE_WORDS:
            continue
        n = int(rng.integers(MIN_SENTENCE_WORDS, min(MAX_SENTENCE_WORDS, len(words)) + 1))
        perturbed = ungrammatical(words[:n], rng)
        if perturbed is None:
            continue
        phenomenon, bad = perturbed
        good = " ".join(words[:n])
        items.append(_pair(f"sblimp/{phenomenon}/{len(items):04d}", good, " ".join(bad), rng))
    return items
