"""Greedy decoding of task answers, restricted to the answer's modality, with step counts.

A fine-tuned model is handed each task document's prompt (``BOS <s> units <t>`` for ASR,
``BOS <t> text <s>`` for TTS) and continues it greedily over the **allowed ids only**: text pieces
and EOS for ASR, speech units and EOS for TTS (a modality switch mid-answer is never what the
task wants, and a restricted argmax costs nothing). Decoding stops at EOS or at a length bound
from the reference answer (``max_factor * len(answer) + max_extra``; the answer's EOS counts), so a
model that fails to stop is caught, not run forever, and counted.

Per utterance it records what the paper's Tab. 5 compares besides the error rates:

- ``global_steps``: autoregressive steps of the global model while producing the answer (LST: one
  per closed patch, so ~1/4 of the units for TTS and one per text piece for ASR; the baselines:
  one per token);
- ``context_positions``: global positions of the whole sequence (prompt + answer) the global model
  attends over at the end (LST's ASR prompt is ~4x shorter than the baseline's);
- ``decoder_steps``: tokens produced (the local decoder's steps for LST);
- ``stopped``: whether it emitted EOS within the bound.

``batch_size=1`` decodes one document at a time through the KV-cached steppers of
:mod:`lst_lightning.model.generate` (exact against the full forward, proven there); a larger one
decodes that many at once with :func:`lst_lightning.model.batch_generate.generate_batch` (the same
greedy tokens, checked by the tests; each row is cut to its own bound afterwards, which greedy
decoding makes exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lst_lightning.data.vocab import TokenSpace
from lst_lightning.downstream.tasks import Task, TaskDocument
from lst_lightning.model.baseline import SpeechLLM
from lst_lightning.model.generate import (
    LSTStepper,
    SpeechLLMStepper,
    StaticPatchRule,
    closed_patch_lengths,
)
from lst_lightning.model.lst import LST


@dataclass(frozen=True)
class Decoded:
    """One decoded answer and what it cost."""

    file_id: str
    ids: tuple[int, ...]
    """The generated tokens, EOS included when it was emitted."""
    stopped: bool
    """EOS within the length bound."""
    global_steps: int
    decoder_steps: int
    context_positions: int
    limit: int
    """The length bound it ran under."""

    @property
    def answer_ids(self) -> tuple[int, ...]:
        """The answer without its EOS."""
        return self.ids[:-1] if self.stopped else self.ids


def allowed_ids(space: TokenSpace, task: Task) -> torch.Tensor:
    """The bool mask ``[V]`` of the ids an answer may hold: text pieces (ASR) or speech tokens
    (TTS), and EOS."""
    mask = torch.zeros(space.vocab_size, dtype=torch.bool)
    if task == "asr":
        mask[: space.text_vocab_size] = True
    elif task == "tts":
        mask[space.unit_offset : space.vocab_size] = True
    else:
        raise ValueError(f"task must be 'asr' or 'tts', got {task!r}")
    mask[space.eos_id] = True
    return mask


def patch_rule(space: TokenSpace, patch_size: int | None) -> StaticPatchRule | None:
    """The online static rule of an LST (``patch_size``), ``None`` for token-level models."""
    if patch_size is None:
        return None
    return StaticPatchRule(patch_size, (space.unit_offset, space.vocab_size), space.speech_id)


def global_positions(tokens: Sequence[int], rule: StaticPatchRule | None) -> int:
    """Global positions ``tokens`` occupy: every token for a baseline; LST's static patches, an
    open speech patch at the end included."""
    if rule is None:
        return len(tokens)
    closed = closed_patch_lengths(list(tokens), rule)
    return len(closed) + int(sum(closed) < len(tokens))


def answer_limit(doc: TaskDocument, max_factor: float, max_extra: int) -> int:
    """The length bound of one answer (EOS included)."""
    return max(1, math.ceil(max_factor * len(doc.answer)) + max_extra)


@torch.no_grad()
def decode_one(
    model: LST | SpeechLLM,
    doc: TaskDocument,
    allowed: torch.Tensor,
    eos_id: int,
    limit: int,
    rule: StaticPatchRule | None = None,
) -> Decoded:
    """Greedy, restricted continuation of one task document's prompt."""
    if isinstance(model, LST):
        if rule is None:
            raise ValueError("decoding an LST needs its static patch rule")
        stepper: LSTStepper | SpeechLLMStepper = LSTStepper(model)
    elif isinstance(model, SpeechLLM):
        stepper = SpeechLLMStepper(model)
    else:
        raise TypeError(f"decode supports LST and SpeechLLM, got {type(model).__name__}")
    prompt = [int(t) for t in doc.prompt]
    for tok in prompt:
        logits = stepper.feed(tok, rule)
    blocked = ~allowed.to(logits.device)
    new: list[int] = []
    stopped = False
    while len(new) < limit:
        tok = int(logits.float().masked_fill(blocked, float("-inf")).argmax())
        new.append(tok)
        if tok == eos_id:
            stopped = True
            break
        if len(new) < limit:
            logits = stepper.feed(tok, rule)
    before = global_positions(prompt, rule)
    after = global_positions(prompt + new, rule)
    return Decoded(doc.file_id, tuple(new), stopped, after - before, len(new), after, limit)


def decode_tasks(
    model: LST | SpeechLLM,
    documents: Sequence[TaskDocument],
    space: TokenSpace,
    patch_size: int | None,
    max_factor: float = 2.0,
    max_extra: int = 8,
    batch_size: int = 1,
) -> list[Decoded]:
    """Every document's answer, in order (see the module docstring). ``patch_size``: the LST's
    static patch size (``None`` for a baseline); ``batch_size``: documents decoded at once."""
    if not documents:
        return []
    tasks = {d.task for d in documents}
    if len(tasks) != 1:
        raise ValueError(f"decode one task at a time, got {sorted(tasks)}")
    task = tasks.pop()
    allowed = allowed_ids(space, task)
    rule = patch_rule(space, patch_size) if isinstance(model, LST) else None
    model.eval()
    if batch_size > 1:
        return _decode_batched(
            model, documents, allowed, space.eos_id, rule, max_factor, max_extra, batch_size
        )
    return [
        decode_one(model, d, allowed, space.eos_id, answer_limit(d, max_factor, max_extra), rule)
        for d in documents
    ]


def transcript(space: TokenSpace, decoded: Decoded) -> str:
    """An ASR answer as text."""
    return space.decode_text(list(decoded.answer_ids))


def units(space: TokenSpace, decoded: Decoded) -> tuple[int, ...]:
    """A TTS answer as unit indices (speech tokens only; EOS dropped)."""
    ids = [t for t in decoded.answer_ids if space.is_unit(t)]
    return space.decode_units(ids)


@torch.no_grad()
def _decode_batched(
    model: LST | SpeechLLM,
    documents: Sequence[TaskDocument],
    allowed: torch.Tensor,
    eos_id: int,
    rule: StaticPatchRule | None,
    max_factor: float,
    max_extra: int,
    batch_size: int,
) -> list[Decoded]:
    from lst_lightning.model.batch_generate import generate_batch

    prompts = [[int(t) for t in d.prompt] for d in documents]
    limits = [answer_limit(d, max_factor, max_extra) for d in documents]
    rows = generate_batch(
        model,
        prompts,
        max(limits),
        rule,
        eos_id=eos_id,
        allowed_ids=allowed,
        batch_size=batch_size,
    )
    out = []
    for doc, prompt, limit, row in zip(documents, prompts, limits, rows, strict=True):
        ids = list(row.ids[:limit])  # greedy: a row's tokens do not depend on its bound
        stopped = bool(ids) and ids[-1] == eos_id
        before = global_positions(prompt, rule)
        after = global_positions(prompt + ids, rule)
        out.append(
            Decoded(doc.file_id, tuple(ids), stopped, after - before, len(ids), after, limit)
        )
    return out
