"""Training documents built from records: text-only, speech-only and interleaved (DESIGN section 4).

An :class:`EncodedDocument` keeps, next to its token ids, where each speech run starts, how many
tokens it spans and how its frames split into words and silences (with the words' text). Static
patching only needs the run boundaries; the aligned strategies of :mod:`.patching` (one patch per
word / silence gap / BPE piece of a word) read the segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lst_lightning.data.records import SILENCE, AlignedUtterance, AlignedWord
from lst_lightning.data.vocab import SpeechSpan, TextSpan, TokenSpace

DocumentKind = Literal["text", "speech", "interleaved"]

MIN_TEXT_WORDS = 5
MAX_TEXT_WORDS = 30
"""A text span has U{5..30} words (DESIGN section 4), capped by what is left of the utterance."""
SPEECH_TO_TEXT_WORDS = 0.5
"""A speech span has about half as many words as the text span it is paired with (ratio 1:2)."""


@dataclass(frozen=True)
class SpeechRun:
    """One ``<s> speech...`` run of a document and its aligned segments.

    ``start`` indexes the ``<s>`` token; ``length`` is the run's token count, ``<s>`` included (one
    token per unit frame plus one in the unit token space; fewer when units are re-tokenised by a
    unit BPE). ``segments`` are the frame counts of the run's words and silences in order (empty
    segments dropped), summing to the run's frame count; ``silence`` marks the silence gaps and
    ``words`` holds each segment's text (``[SIL]`` for a gap), which BPE-aligned patching splits.
    """

    start: int
    length: int
    segments: tuple[int, ...]
    silence: tuple[bool, ...]
    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.segments) == len(self.silence) == len(self.words):
            raise ValueError("a speech run needs one silence flag and one text per segment")

    @property
    def num_units(self) -> int:
        """Unit frames (25 Hz) in the run."""
        return sum(self.segments)

    @property
    def one_token_per_unit(self) -> bool:
        """True when every unit frame is its own token (the layout aligned patching needs)."""
        return self.length == 1 + self.num_units


@dataclass(frozen=True)
class EncodedDocument:
    """Token ids of one document (``BOS ... EOS``) and its speech runs."""

    tokens: np.ndarray
    speech_runs: tuple[SpeechRun, ...]
    kind: DocumentKind

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class PlannedSpan:
    """One span of an interleaving plan: the utterance words it covers, in order.

    Text spans hold only spoken words; speech spans hold words and silences with their frames
    (boundary silences already halved).
    """

    modality: Literal["text", "speech"]
    words: tuple[AlignedWord, ...]


def text_document(text: str, space: TokenSpace) -> EncodedDocument:
    """``BOS <t> bpe... EOS``."""
    tokens = space.encode_document([TextSpan(text)])
    return EncodedDocument(np.asarray(tokens, dtype=np.int64), (), "text")


def speech_document(utterance: AlignedUtterance, space: TokenSpace) -> EncodedDocument:
    """``BOS <s> units... EOS`` over every frame of the utterance, silences included."""
    return encode_plan([PlannedSpan("speech", utterance.words)], space, "speech")


def interleaved_document(
    utterance: AlignedUtterance, space: TokenSpace, rng: np.random.Generator
) -> EncodedDocument:
    """A fresh random interleaving of the utterance's text and speech (see :func:`plan_interleaving`)."""
    return encode_plan(plan_interleaving(utterance, rng), space, "interleaved")


def plan_interleaving(utterance: AlignedUtterance, rng: np.random.Generator) -> list[PlannedSpan]:
    """Alternate text and speech spans over the utterance's words, starting with a random modality.

    Spans come in rounds of a text span of U{5..30} words and a speech span of half as many (odd
    counts round up or down at random, so the expectation is exactly half). When a round does not
    fit in the words left, the rest is split 2:1 between text and speech (at least one word each),
    so the 1:2 speech:text word ratio holds for short utterances too; a single word left over goes
    to the span due next. ``[SIL]`` is not text: silences are dropped from text spans; a speech span
    keeps the silences between its words and half of each boundary silence (the half next to its
    words). An utterance without spoken words becomes one speech span.
    """
    spoken = [i for i, w in enumerate(utterance.words) if not w.is_silence]
    if not spoken:
        return [PlannedSpan("speech", utterance.words)]
    text_first = bool(rng.random() < 0.5)
    counts: list[tuple[Literal["text", "speech"], int]] = []
    left = len(spoken)
    while left > 0:
        n_text = int(rng.integers(MIN_TEXT_WORDS, MAX_TEXT_WORDS + 1))
        n_speech = _round_randomly(n_text * SPEECH_TO_TEXT_WORDS, rng)
        if n_text + n_speech > left and left == 1:
            n_text, n_speech = (1, 0) if text_first else (0, 1)
        elif n_text + n_speech > left:
            n_text = _round_randomly(left * n_text / (n_text + n_speech), rng)
            n_text = min(max(n_text, 1), left - 1)
            n_speech = left - n_text
        left -= n_text + n_speech
        pair = [("text", n_text), ("speech", n_speech)]
        counts += [(m, n) for m, n in (pair if text_first else pair[::-1]) if n]
    plan: list[PlannedSpan] = []
    first = 0
    for modality, n in counts:
        chosen = spoken[first : first + n]
        first += n
        if modality == "text":
            plan.append(PlannedSpan("text", tuple(utterance.words[i] for i in chosen)))
        else:
            plan.append(PlannedSpan("speech", _speech_words(utterance, chosen[0], chosen[-1])))
    return plan


def _round_randomly(x: float, rng: np.random.Generator) -> int:
    """``floor(x)`` or ``ceil(x)`` with probabilities that make the expectation ``x``."""
    low = int(np.floor(x))
    return low + int(rng.random() < x - low)


def _speech_words(utterance: AlignedUtterance, first: int, last: int) -> tuple[AlignedWord, ...]:
    """Words ``first..last`` with their inner silences and the inner halves of the boundary gaps."""
    words = utterance.words
    before = first
    while before > 0 and words[before - 1].is_silence:
        before -= 1
    after = last + 1
    while after < len(words) and words[after].is_silence:
        after += 1
    lead = tuple(u for w in words[before:first] for u in w.units)
    trail = tuple(u for w in words[last + 1 : after] for u in w.units)
    lead, trail = lead[len(lead) - len(lead) // 2 :], trail[: len(trail) // 2]
    out = [AlignedWord(SILENCE, lead)] if lead else []
    out += words[first : last + 1]
    if trail:
        out.append(AlignedWord(SILENCE, trail))
    return tuple(out)


def encode_plan(plan: list[PlannedSpan], space: TokenSpace, kind: DocumentKind) -> EncodedDocument:
    """Encode a plan as ``BOS (<t> bpe... | <s> speech...)* EOS`` and record its speech runs."""
    tokens = [space.bos_id]
    runs = []
    for span in plan:
        if span.modality == "text":
            body: TextSpan | SpeechSpan = TextSpan(
                " ".join(w.text for w in span.words if not w.is_silence)
            )
        else:
            body = SpeechSpan(tuple(u for w in span.words for u in w.units))
        encoded = space.encode_document([body])[1:-1]
        if span.modality == "speech":
            kept = [w for w in span.words if w.units]
            runs.append(
                SpeechRun(
                    start=len(tokens),
                    length=len(encoded),
                    segments=tuple(len(w.units) for w in kept),
                    silence=tuple(w.is_silence for w in kept),
                    words=tuple(w.text for w in kept),
                )
            )
        tokens += encoded
    tokens.append(space.eos_id)
    return EncodedDocument(np.asarray(tokens, dtype=np.int64), tuple(runs), kind)
