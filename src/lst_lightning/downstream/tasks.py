"""ASR and TTS documents built from utterances, with a loss mask over the answer span.

The paper fine-tunes on ASR and TTS but does not give the document formats; the kit uses

- ASR: ``BOS <s> units... <t> transcript... EOS`` (prompt ``BOS <s> units <t>``, answer
  ``transcript EOS``),
- TTS: ``BOS <t> text... <s> units... EOS`` (prompt ``BOS <t> text <s>``, answer ``units EOS``),

the same token space and span markers as pre-training, so a pretrained checkpoint reads them as an
ordinary two-span interleaved document. The mode marker that opens the answer belongs to the prompt:
a decoder is handed it (it fixes the answer's modality) instead of having to predict it.

Loss: only the answer span (its tokens and the closing EOS). The prompt is given at test time, so
its likelihood is not what fine-tuning should spend capacity on; and for ASR the prompt is ~10x
longer than the answer, so a whole-document loss would mostly keep training speech continuation.
:attr:`TaskDocument.loss_mask` marks the answer tokens; :meth:`TaskDocument.target_mask` is the
same mask shifted onto next-token targets (``targets[i] = tokens[i + 1]``).

Documents are built through :func:`lst_lightning.data.stream.documents.encode_plan`, so their
:class:`~lst_lightning.data.stream.documents.SpeechRun` carries the word / silence segments that the
aligned patching strategies read, exactly as pre-training documents do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lst_lightning.data.records import AlignedUtterance, AlignedWord
from lst_lightning.data.stream.documents import EncodedDocument, PlannedSpan, encode_plan
from lst_lightning.data.vocab import TokenSpace

Task = Literal["asr", "tts"]
TASKS: tuple[Task, ...] = ("asr", "tts")


@dataclass(frozen=True)
class SpeechText:
    """One utterance for a downstream task: its transcript, its units, and (when known) its words.

    ``words`` are the aligned words and silences (an :class:`AlignedUtterance`'s); for speech
    without an alignment (real recordings ingested without one) they are ``None`` and the units
    form one segment, which static patching (the evaluation default) does not need.
    """

    file_id: str
    text: str
    units: tuple[int, ...]
    words: tuple[AlignedWord, ...] | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError(f"{self.file_id}: empty transcript")
        if not self.units:
            raise ValueError(f"{self.file_id}: no speech units")
        if self.words is not None and tuple(u for w in self.words for u in w.units) != self.units:
            raise ValueError(f"{self.file_id}: the words' units are not the utterance's units")

    @classmethod
    def from_aligned(cls, utterance: AlignedUtterance) -> SpeechText:
        """The transcript (spoken words, silences dropped), every unit frame, and the words."""
        return cls(utterance.file_id, utterance.transcript, utterance.units, utterance.words)

    @property
    def segments(self) -> tuple[AlignedWord, ...]:
        """The speech span's segments: the aligned words, or one segment holding every unit."""
        if self.words is not None:
            return self.words
        return (AlignedWord(self.text, self.units),)

    @property
    def num_frames(self) -> int:
        """Unit frames (25 Hz)."""
        return len(self.units)


@dataclass(frozen=True)
class TaskDocument:
    """A task document: its tokens and speech runs, and which tokens the loss covers."""

    task: Task
    file_id: str
    document: EncodedDocument
    prompt_length: int
    """Tokens of the prompt (``BOS`` up to and including the answer's mode marker)."""

    @property
    def tokens(self) -> np.ndarray:
        return self.document.tokens

    @property
    def prompt(self) -> np.ndarray:
        """What a decoder is given: ``BOS <s> units <t>`` (ASR) or ``BOS <t> text <s>`` (TTS)."""
        return self.document.tokens[: self.prompt_length]

    @property
    def answer(self) -> np.ndarray:
        """What it must produce: the answer span and the closing EOS."""
        return self.document.tokens[self.prompt_length :]

    @property
    def loss_mask(self) -> np.ndarray:
        """``True`` at every answer token (the tokens after the prompt, EOS included)."""
        mask = np.zeros(len(self.document.tokens), dtype=bool)
        mask[self.prompt_length :] = True
        return mask

    def target_mask(self) -> np.ndarray:
        """The loss mask over next-token targets: entry ``i`` says whether predicting
        ``tokens[i + 1]`` from ``tokens[: i + 1]`` counts (length ``len(tokens) - 1``)."""
        return self.loss_mask[1:]


def asr_document(item: SpeechText, space: TokenSpace) -> TaskDocument:
    """``BOS <s> units <t> transcript EOS``; the loss covers ``transcript EOS``."""
    speech = PlannedSpan("speech", item.segments)
    text = PlannedSpan("text", (AlignedWord(item.text, ()),))
    doc = encode_plan([speech, text], space, "interleaved")
    prompt = 1 + doc.speech_runs[0].length + 1  # BOS, <s> + speech tokens, <t>
    _check_marker(doc, prompt, space.text_id, item.file_id)
    return TaskDocument("asr", item.file_id, doc, prompt)


def tts_document(item: SpeechText, space: TokenSpace) -> TaskDocument:
    """``BOS <t> text <s> units EOS``; the loss covers ``units EOS``."""
    text = PlannedSpan("text", (AlignedWord(item.text, ()),))
    speech = PlannedSpan("speech", item.segments)
    doc = encode_plan([text, speech], space, "interleaved")
    prompt = doc.speech_runs[0].start + 1  # up to and including <s>
    _check_marker(doc, prompt, space.speech_id, item.file_id)
    return TaskDocument("tts", item.file_id, doc, prompt)


def task_document(task: Task, item: SpeechText, space: TokenSpace) -> TaskDocument:
    """:func:`asr_document` or :func:`tts_document` by name."""
    if task == "asr":
        return asr_document(item, space)
    if task == "tts":
        return tts_document(item, space)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def task_documents(
    task: Task, items: Iterable[SpeechText], space: TokenSpace
) -> list[TaskDocument]:
    """One task document per utterance, in order."""
    return [task_document(task, item, space) for item in items]


def _check_marker(doc: EncodedDocument, prompt: int, marker: int, file_id: str) -> None:
    if doc.tokens[prompt - 1] != marker:  # a bug, not bad input: the layout is fixed above
        raise AssertionError(f"{file_id}: the prompt does not end in its mode marker")
