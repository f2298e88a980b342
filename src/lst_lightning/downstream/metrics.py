"""ASR metrics: word and character error rates over normalised transcripts (torchmetrics).

Normalisation (:func:`normalize_transcript`), applied to references and hypotheses alike, so that
neither the corpus's written form nor a recogniser's formatting counts as an error:

- Unicode NFKC, then lower case;
- curly apostrophes become ``'``; an apostrophe inside a word is kept (``don't``), one at a word's
  edge is dropped;
- every other character that is not a letter or a digit (punctuation, hyphens, symbols) becomes a
  space, so ``Call-Forward`` reads ``call forward`` and ``"Who`` reads ``who``;
- runs of whitespace become one space.

- a whole number below one million written in digits is spelled out (``press 1`` -> ``press one``,
  ``1811`` -> ``one thousand eight hundred eleven``), since transcripts spell numbers and Whisper
  writes digits; other digit strings (``3.5``, ``2nd``) are left as they are.

Rates are corpus-level, as torchmetrics computes them: total edits over total reference words
(characters), not a mean of per-utterance rates. CER counts characters of the normalised text,
spaces included. An empty normalised reference is an error (the rate would divide by zero).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from torchmetrics.functional.text import char_error_rate, word_error_rate

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_NOT_WORD = re.compile(r"[^\w']|_")
_EDGE_APOSTROPHES = re.compile(r"(?<!\w)'+|'+(?!\w)")
_WHOLE_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?!\w|[.,]\d)")
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """``0 <= n < 1_000_000`` in words (``342`` -> ``three hundred forty two``)."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words covers 0..999999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_words(n % 100)
        return _ONES[n // 100] + " hundred" + rest
    rest = "" if n % 1000 == 0 else " " + number_words(n % 1000)
    return number_words(n // 1000) + " thousand" + rest


def _spell(match: re.Match) -> str:
    n = int(match.group(0).replace(",", ""))
    return f" {number_words(n)} " if n < 1_000_000 else match.group(0)


def normalize_transcript(text: str) -> str:
    """Lower case, numbers spelled, punctuation removed (see the module docstring), single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = _WHOLE_NUMBER.sub(_spell, text)
    text = _NOT_WORD.sub(" ", text)
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level WER and CER of a set of hypotheses against their references."""

    wer: float
    cer: float
    utterances: int
    reference_words: int
    reference_chars: int

    def as_percent(self) -> tuple[float, float]:
        """``(WER %, CER %)``."""
        return 100.0 * self.wer, 100.0 * self.cer


def _normalized_pairs(
    hypotheses: Sequence[str], references: Sequence[str], normalize: bool
) -> tuple[list[str], list[str]]:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("pass sequences of transcripts, not a single string")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        raise ValueError("no references to score")
    hyps = [normalize_transcript(h) if normalize else h for h in hypotheses]
    refs = [normalize_transcript(r) if normalize else r for r in references]
    for i, (raw, ref) in enumerate(zip(references, refs, strict=True)):
        if not ref.strip():
            raise ValueError(f"reference {i} is empty after normalisation: {raw!r}")
    return hyps, refs


def wer(hypotheses: Sequence[str], references: Sequence[str], normalize: bool = True) -> float:
    """Word error rate (substitutions + deletions + insertions over reference words)."""
    hyps, refs = _normalized_pairs(hypotheses, references, normalize)
    return float(word_error_rate(hyps, refs))


def cer(hypotheses: Sequence[str], references: Sequence[str], normalize: bool = True) -> float:
    """Character error rate over the normalised strings (spaces count as characters)."""
    hyps, refs = _normalized_pairs(hypotheses, references, normalize)
    return float(char_error_rate(hyps, refs))


def error_rates(
    hypotheses: Sequence[str], references: Sequence[str], normalize: bool = True
) -> ErrorRates:
    """WER and CER together, with the reference sizes they are rates of."""
    hyps, refs = _normalized_pairs(hypotheses, references, normalize)
    return ErrorRates(
        wer=float(word_error_rate(hyps, refs)),
        cer=float(char_error_rate(hyps, refs)),
        utterances=len(refs),
        reference_words=sum(len(r.split()) for r in refs),
        reference_chars=sum(len(r) for r in refs),
    )
