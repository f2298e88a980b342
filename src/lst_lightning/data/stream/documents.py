"""Training documents built from records: text-only, speech-only and interleaved (DESIGN section 4).

An :class:`EncodedDocument` keeps, next to its token ids, where each speech run starts, how many
tokens it spans and how its frames split into words and silences (with the words' text). Static
patching only needs the run boundaries; the aligned strategies of :mod:`.patching` (one patch per
word / silence gap / BPE piece of a word) read the segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lst_lightning.data.records import SILENCE, AlignedUtterance, AlignedWord
from lst_lightning.data.vocab import SpeechSpan, TextSpan, TokenSpace

DocumentKind = Literal["text", "speech", "interleaved"]
SpanModality = Literal["text", "speech"]

MIN_TEXT_WORDS = 5
MAX_TEXT_WORDS = 30
"""A text span draws U{5..30} words (DESIGN section 4), bounds narrowed for short utterances."""
TEXT_CAP_SHARE = 0.6
"""A text span holds at most ``floor(0.6 n)`` of an utterance's ``n`` spoken words (the release's
``upper_bound_by_seq_len``), so a short utterance still alternates."""
MIN_SPAN_WORDS = 2
"""No span is drawn shorter than 2 words (the release's ``min_seq``)."""
MIN_LAST_SPAN_WORDS = 3
"""A final span cut below 3 words by the end of the utterance joins the span before it."""
SPEECH_TO_TEXT_WORDS = 0.5
"""A speech span that follows a text span has half as many words, rounded down (ratio 1:2)."""


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

    modality: SpanModality
    words: tuple[AlignedWord, ...]


@dataclass(frozen=True)
class SpanBounds:
    """The word-count bounds of an utterance's spans (release rules, see :func:`span_word_counts`)."""

    text_low: int
    text_high: int

    @classmethod
    def for_words(cls, n: int) -> SpanBounds:
        """Text spans draw from U{low..high}: ``high = max(2, min(30, floor(0.6 n)))`` and
        ``low = max(2, min(5, high))``."""
        high = max(MIN_SPAN_WORDS, min(MAX_TEXT_WORDS, int(n * TEXT_CAP_SHARE)))
        return cls(max(MIN_SPAN_WORDS, min(MIN_TEXT_WORDS, high)), high)

    def speech_after_text(self, text_words: int) -> int:
        """A speech span paired with the text span before it: ``max(2, floor(t / 2))``."""
        return max(MIN_SPAN_WORDS, int(text_words * SPEECH_TO_TEXT_WORDS))

    @property
    def first_speech(self) -> tuple[int, int]:
        """The bounds of a speech span that opens the utterance (no text span to pair with):
        half the text bounds, rounded down, at least 2 each."""
        return (self.speech_after_text(self.text_low), self.speech_after_text(self.text_high))


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
    """Alternate text and speech spans over the utterance's words, as the paper's release does.

    :func:`span_word_counts` lays out the spans' spoken-word counts; then ``[SIL]`` is not text
    (silences are dropped from text spans) and a speech span keeps the silences between its words,
    a silence gap at an utterance edge whole, and ``ceil(g / 2)`` frames of a ``g``-frame gap at a
    boundary with a text span (the frames next to its words; the other half is dropped, as the
    text side has no frames). Consecutive silence segments count as one gap. An utterance without
    spoken words becomes one speech span.
    """
    words = utterance.words
    plan: list[PlannedSpan] = []
    for modality, first, last in interleaving_layout([w.is_silence for w in words], rng):
        if modality == "text":
            spoken = tuple(w for w in words[first : last + 1] if not w.is_silence)
            plan.append(PlannedSpan("text", spoken))
        else:
            plan.append(PlannedSpan("speech", _speech_words(utterance, first, last)))
    return plan


def interleaving_layout(
    silence: Sequence[bool], rng: np.random.Generator
) -> list[tuple[SpanModality, int, int]]:
    """The spans of :func:`plan_interleaving` as ``(modality, first word, last word)``: indices
    into the utterance's words (silences included), both ends spoken words; one speech span over
    every word when none is spoken. Shared by the document builder and the length profiles
    (:mod:`lst_lightning.data.stream.lengths`), which need only the silence flags and draw the
    same numbers from ``rng``."""
    spoken = [i for i, is_silence in enumerate(silence) if not is_silence]
    if not spoken:
        return [("speech", 0, len(silence) - 1)]
    layout: list[tuple[SpanModality, int, int]] = []
    first = 0
    for modality, n in span_word_counts(len(spoken), rng):
        layout.append((modality, spoken[first], spoken[first + n - 1]))
        first += n
    return layout


def speech_span_edges(silence: Sequence[bool], first: int, last: int) -> tuple[int, int]:
    """``(before, after)``: the silence gaps next to a speech span over words ``first..last`` are
    words ``before..first - 1`` and ``last + 1..after - 1`` (consecutive silences are one gap)."""
    before = first
    while before > 0 and silence[before - 1]:
        before -= 1
    after = last + 1
    while after < len(silence) and silence[after]:
        after += 1
    return before, after


def span_word_counts(n: int, rng: np.random.Generator) -> list[tuple[SpanModality, int]]:
    """The modality and spoken-word count of each span of an ``n``-word utterance.

    The release's rules (``_get_word_type_length`` in ``neillu23/lst``; DESIGN section 4):

    - the first span's modality is a fair coin; spans alternate;
    - a text span draws U{low..high} words with ``high = max(2, min(30, floor(0.6 n)))`` and
      ``low = max(2, min(5, high))`` (:class:`SpanBounds`);
    - a speech span after a text span of ``t`` words has ``max(2, floor(t / 2))`` words; a speech
      span that opens the utterance draws U{max(2, floor(low / 2))..max(2, floor(high / 2))};
    - spans are drawn until they cover ``n`` words and the last is cut to fit; a last span left
      with fewer than 3 words joins the span before it (so no span has 1 word unless ``n == 1``,
      and a text span exceeds ``high`` only by such a merge, by at most 2).
    """
    if n < 1:
        raise ValueError(f"an interleaving needs at least one spoken word, got {n}")
    bounds = SpanBounds.for_words(n)
    modality: SpanModality = "text" if rng.random() < 0.5 else "speech"
    spans: list[tuple[SpanModality, int]] = []
    covered = 0
    while covered < n:
        if modality == "text":
            count = int(rng.integers(bounds.text_low, bounds.text_high + 1))
        elif spans:  # after a text span
            count = bounds.speech_after_text(spans[-1][1])
        else:
            low, high = bounds.first_speech
            count = int(rng.integers(low, high + 1))
        spans.append((modality, count))
        covered += count
        modality = "speech" if modality == "text" else "text"
    last_modality, last = spans[-1]
    spans[-1] = (last_modality, last - (covered - n))
    if len(spans) > 1 and spans[-1][1] < MIN_LAST_SPAN_WORDS:
        (kind, count), (_, rest) = spans[-2], spans.pop()
        spans[-1] = (kind, count + rest)
    return spans


def _speech_words(utterance: AlignedUtterance, first: int, last: int) -> tuple[AlignedWord, ...]:
    """Words ``first..last`` with their inner silences and the boundary gaps around them: whole at
    an utterance edge, else the ``ceil(g / 2)`` frames next to the words."""
    words = utterance.words
    before, after = speech_span_edges([w.is_silence for w in words], first, last)
    lead = tuple(u for w in words[before:first] for u in w.units)
    trail = tuple(u for w in words[last + 1 : after] for u in w.units)
    if before > 0:  # a text span comes before: keep the half next to the first word
        lead = lead[len(lead) // 2 :]
    if after < len(words):  # a text span follows
        trail = trail[: len(trail) - len(trail) // 2]
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
