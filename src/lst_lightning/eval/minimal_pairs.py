"""Spoken minimal pairs in the benchmark format (sWUGGY / sBLIMP style), built from held-out text.

Both kinds are built so that no surface cue other than the probed one tells the pair apart:

- Lexical (``swuggy``): a real word against a nonce word made from it by changing one letter
  (a vowel for another vowel, a consonant for another consonant, so it stays pronounceable),
  checked not to be a word of the corpus. The two have the same number of characters, and their
  renderings the same number of speech units wherever a nonce word with that property is found
  among a few tries; the remaining pairs are taken so that the real word is the shorter rendering
  as often as the nonce word (:class:`LengthBalance`). A "the shorter sequence wins" rule is then
  at chance, and the summed log-likelihood (the Zero Resource protocol's rule, the headline for
  minimal pairs) is not a length test. The *written* pairs remain a test of the training
  vocabulary by construction (the real word was seen, the nonce word never): the
  in-vocabulary heuristic solves them; :mod:`lst_lightning.eval.heuristics` reports it.
- Syntactic (``sblimp``): a window of a held-out document against the same words made
  ungrammatical by a change that keeps every character count and every capital and punctuation
  mark where it was: subject-verb agreement with a same-length verb (``was`` <-> ``are``, ``is``
  <-> ``am``), pronoun case (``she`` <-> ``her``, ``they`` <-> ``them``, ``we`` <-> ``us``), or
  two adjacent lower-case words swapped. Only bare lower-case words are changed, so spelling
  carries no cue. The phenomena are drawn in turn (the rarest available first) and the spoken
  renderings are length-balanced as for ``swuggy``. The phenomenon is part of the item id.

The items have an empty prompt: the model scores each whole candidate (spoken: ``<s>`` + units,
written: ``<t>`` + BPE), and the pair's two candidates differ only where the probe says.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

from lst_lightning.eval.render import SpeechRenderer
from lst_lightning.eval.tasks import BenchmarkItem

VOWELS = "aeiou"
CONSONANTS = "".join(c for c in string.ascii_lowercase if c not in VOWELS)
SWAPS = {
    "agreement": {"was": "are", "are": "was", "is": "am", "am": "is"},
    "case": {"she": "her", "her": "she", "they": "them", "them": "they", "we": "us", "us": "we"},
}
"""Same-length replacements that make a sentence ungrammatical (phenomenon -> word -> word)."""
PHENOMENA = ("agreement", "case", "word_order")
MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_WORDS = 12
NONCE_TRIES = 4
"""Nonce words tried per real word for one whose rendering has the real word's unit count."""


class LengthBalance:
    """Admits pairs so that the good candidate is the shorter one as often as the bad one.

    Equal lengths always pass; an unequal pair passes only while its side is not ahead, so the
    two counts never differ by more than one and "prefer the shorter" scores chance.
    """

    def __init__(self) -> None:
        self.counts = Counter({"equal": 0, "good_shorter": 0, "bad_shorter": 0})

    @staticmethod
    def side(good: int, bad: int) -> str:
        return "equal" if good == bad else "good_shorter" if good < bad else "bad_shorter"

    def admits(self, good: int, bad: int) -> bool:
        side = self.side(good, bad)
        other = {"good_shorter": "bad_shorter", "bad_shorter": "good_shorter"}.get(side)
        return other is None or self.counts[side] <= self.counts[other]

    def add(self, good: int, bad: int) -> None:
        self.counts[self.side(good, bad)] += 1


def _pair(
    item_id: str,
    good: str,
    bad: str,
    rng: np.random.Generator,
    units: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> BenchmarkItem:
    label = int(rng.integers(2))
    endings = (good, bad) if label == 0 else (bad, good)
    if units is None:
        return BenchmarkItem(item_id, "", endings, label)
    spoken = units if label == 0 else (units[1], units[0])
    return BenchmarkItem(item_id, "", endings, label, (), spoken)


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
    documents: Sequence[str],
    known_words: set[str],
    count: int,
    rng: np.random.Generator,
    renderer: SpeechRenderer | None = None,
) -> tuple[list[BenchmarkItem], dict]:
    """Up to ``count`` real/nonce word pairs from the words of ``documents`` (3+ letters a-z),
    spoken too when a ``renderer`` is given, and the length statistics of the spoken pairs."""
    vocab = sorted({w for d in documents for w in d.split() if len(w) >= 3 and _is_az(w)})
    rng.shuffle(vocab)
    balance = LengthBalance()
    items: list[BenchmarkItem] = []
    for word in vocab:
        if len(items) == count:
            break
        item_id = f"swuggy/{len(items):04d}"
        if renderer is None:
            nonce = nonce_word(word, known_words, rng)
            if nonce is not None:
                items.append(_pair(item_id, word, nonce, rng))
            continue
        good = renderer.render(word)
        tried: list[tuple[str, tuple[int, ...]]] = []
        for _ in range(NONCE_TRIES):
            nonce = nonce_word(word, known_words | {t for t, _ in tried}, rng)
            if nonce is None:
                break
            tried.append((nonce, renderer.render(nonce)))
            if len(tried[-1][1]) == len(good):
                tried = tried[-1:]
                break
        if not tried:
            continue
        nonce, bad = tried[0]
        if balance.admits(len(good), len(bad)):
            balance.add(len(good), len(bad))
            items.append(_pair(item_id, word, nonce, rng, (good, bad)))
    return items, dict(balance.counts) if renderer is not None else {}


def _is_az(word: str) -> bool:
    return bool(word) and all(c in string.ascii_lowercase for c in word)


def ungrammatical(
    words: list[str], rng: np.random.Generator, prefer: Sequence[str] = PHENOMENA
) -> tuple[str, list[str]] | None:
    """(phenomenon, perturbed words): the first phenomenon of ``prefer`` the words allow.

    Only bare lower-case words change, and every replacement has the same length, so the two
    sequences have the same characters in count, capitals and punctuation in place.
    """
    for phenomenon in prefer:
        if phenomenon == "word_order":
            at = [
                i
                for i in range(len(words) - 1)
                if _is_az(words[i]) and _is_az(words[i + 1]) and words[i] != words[i + 1]
            ]
            if at:
                i = at[int(rng.integers(len(at)))]
                return phenomenon, words[:i] + [words[i + 1], words[i]] + words[i + 2 :]
            continue
        table = SWAPS[phenomenon]
        at = [i for i, w in enumerate(words) if w in table]
        if at:
            i = at[int(rng.integers(len(at)))]
            return phenomenon, words[:i] + [table[words[i]]] + words[i + 1 :]
    return None


def syntactic_pairs(
    documents: Sequence[str],
    count: int,
    rng: np.random.Generator,
    renderer: SpeechRenderer | None = None,
) -> tuple[list[BenchmarkItem], dict]:
    """Up to ``count`` grammatical/ungrammatical pairs from windows of ``documents`` (several per
    document, not overlapping), spoken too when a ``renderer`` is given; and the statistics."""
    windows = []
    for d, doc in enumerate(documents):
        words = doc.split()
        for lo in range(0, len(words) - MIN_SENTENCE_WORDS + 1, MAX_SENTENCE_WORDS):
            windows.append((d, lo))
    order = rng.permutation(len(windows))
    balance = LengthBalance()
    made: Counter = Counter({p: 0 for p in PHENOMENA})
    items: list[BenchmarkItem] = []
    for k in order:
        if len(items) == count:
            break
        d, lo = windows[int(k)]
        words = documents[d].split()[lo : lo + MAX_SENTENCE_WORDS]
        n = int(rng.integers(MIN_SENTENCE_WORDS, len(words) + 1))
        prefer = sorted(PHENOMENA, key=lambda p: (made[p], PHENOMENA.index(p)))
        perturbed = ungrammatical(words[:n], rng, prefer)
        if perturbed is None:
            continue
        phenomenon, bad_words = perturbed
        good, bad = " ".join(words[:n]), " ".join(bad_words)
        item_id = f"sblimp/{phenomenon}/{len(items):04d}"
        if renderer is None:
            items.append(_pair(item_id, good, bad, rng))
        else:
            good_units, bad_units = renderer.render(good), renderer.render(bad)
            if not balance.admits(len(good_units), len(bad_units)):
                continue
            balance.add(len(good_units), len(bad_units))
            items.append(_pair(item_id, good, bad, rng, (good_units, bad_units)))
        made[phenomenon] += 1
    stats = {"phenomena": dict(made)}
    if renderer is not None:
        stats["spoken_lengths"] = dict(balance.counts)
    return items, stats
