"""Continue many documents at once: :func:`generate_batch` (batched, KV-cached, LST and baseline).

Rows need no padding: each step feeds every active row its own next token (its next prompt token
while it is still reading its prompt, else the token it just chose), so rows with prompts of
different lengths simply start answering at different steps, and every row sits at the same token
position. What differs between LST rows is the global model: :class:`~.batch_stepper.BatchLSTStepper`
runs it only for the rows that closed a patch at a step, each at its own global position. A row
that emits ``eos_id`` or reaches ``max_new_tokens`` leaves the batch. The prompt tokens that all
rows of a group share in length are read in one parallel pass first (:mod:`.prefill`; prompts are
grouped by length, so that is most of each prompt). Greedy decoding gives the
tokens of :func:`~.generate.generate` run one document at a time (up to float noise of the masked
batched attention; the tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .baseline import SpeechLLM
from .batch_stepper import BatchLSTStepper, BatchSpeechLLMStepper
from .generate import Generation, StaticPatchRule, global_positions
from .lst import LST
from .prefill import prefill_baseline, prefill_lst
from .sampling import AllowedIds, allowed_mask, check_sampling, choose_tokens


@torch.no_grad()
def generate_batch(
    model: LST | SpeechLLM,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    rule: StaticPatchRule | None = None,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
    allowed_ids: AllowedIds | None = None,
    batch_size: int = 32,
    prefill: bool = True,
) -> list[Generation]:
    """Continues every prompt; returns one :class:`~.generate.Generation` per prompt, in order.

    ``temperature=0`` is greedy; ``> 0`` samples ``softmax(logits / temperature)`` restricted to
    ``top_k`` / ``top_p`` with ``generator`` (reproducible for the same prompts, order and
    ``batch_size``). ``allowed_ids`` restricts every new token (ids, or a boolean mask ``[V]`` or
    ``[len(prompts), V]``; ``eos_id`` is always allowed): e.g. text ids for ASR, unit ids for TTS.
    A row stops after ``eos_id`` or ``max_new_tokens`` new tokens. Prompts are decoded
    ``batch_size`` at a time, grouped by length (rows of a group run for the longest one's steps).
    LST needs ``rule`` (its static patching); the baseline ignores it. ``prefill`` reads the
    common length of a group's prompts in one parallel pass (:mod:`.prefill`) instead of token by
    token (same logits up to float noise; ``False`` steps every token)."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_sampling(temperature, top_k, top_p)
    if isinstance(model, LST):
        if rule is None:
            raise ValueError("generate_batch on an LST needs a StaticPatchRule (rule=...)")
    elif isinstance(model, SpeechLLM):
        rule = None
    else:
        raise TypeError(f"generate_batch supports LST and SpeechLLM, got {type(model).__name__}")
    vocab = model.config.vocab_size
    prompts = [[int(t) for t in p] for p in prompts]
    for i, p in enumerate(prompts):
        if not p:
            raise ValueError(f"prompt {i} is empty: a prompt needs at least one token (e.g. BOS)")
        if not all(0 <= t < vocab for t in p):
            raise ValueError(f"prompt {i} holds ids outside the vocabulary [0, {vocab})")
    device = next(model.parameters()).device
    mask = allowed_mask(allowed_ids, vocab, len(prompts), eos_id, device)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: dict[int, Generation] = {}
    for start in range(0, len(order), batch_size):
        group = order[start : start + batch_size]
        group_mask = None if mask is None else mask[group]
        outs = _decode_group(
            model,
            [prompts[i] for i in group],
            max_new_tokens,
            rule,
            dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator),
            eos_id,
            group_mask,
            prefill,
        )
        results.update(zip(group, outs, strict=True))
    return [results[i] for i in range(len(prompts))]


def _decode_group(
    model: LST | SpeechLLM,
    prompts: list[list[int]],
    max_new_tokens: int,
    rule: StaticPatchRule | None,
    sampling: dict,
    eos_id: int | None,
    mask: torch.Tensor | None,
    prefill: bool,
) -> list[Generation]:
    """One batch of rows, stepped together until every row is done."""
    capacity = max(len(p) for p in prompts) + max_new_tokens
    if isinstance(model, LST):
        assert rule is not None
        stepper: BatchLSTStepper | BatchSpeechLLMStepper = BatchLSTStepper(
            model, len(prompts), capacity, rule
        )
    else:
        stepper = BatchSpeechLLMStepper(model, len(prompts))
    active = list(range(len(prompts)))
    """Stepper row ``j`` holds prompt ``active[j]``."""
    new: list[list[int]] = [[] for _ in prompts]
    prompt_steps = [0] * len(prompts)
    done: dict[int, Generation] = {}

    def finish(j: int, r: int) -> None:
        ids = new[r]
        done[r] = Generation(
            ids=ids,
            global_steps=stepper.global_steps_of(j),
            prompt_global_steps=prompt_steps[r],
            decoder_steps=stepper.decoder_steps_of(j),
            context_positions=global_positions([*prompts[r], *ids], rule),
            stopped_at_eos=bool(ids) and ids[-1] == eos_id,
        )

    t, logits = 0, None
    common = min(len(p) for p in prompts)
    if prefill and common > 1:  # read the shared length in one pass; continue at its last step
        prefix = [p[:common] for p in prompts]
        if isinstance(stepper, BatchLSTStepper):
            logits = prefill_lst(stepper, prefix)
        else:
            logits = prefill_baseline(stepper, prefix)
        t = common - 1
    while active:
        if logits is None:
            tokens = [prompts[r][t] if t < len(prompts[r]) else new[r][-1] for r in active]
            logits = stepper.feed(tokens)
        keep, ready = [], []
        for j, r in enumerate(active):
            if t == len(prompts[r]) - 1:
                prompt_steps[r] = stepper.global_steps_of(j)
            if t < len(prompts[r]) - 1:
                keep.append(j)
            elif max_new_tokens == 0:
                finish(j, r)
            else:
                ready.append(j)
        if ready:
            rows = torch.tensor(ready, device=logits.device)
            row_mask = None if mask is None else mask[[active[j] for j in ready]]
            chosen = choose_tokens(logits[rows], mask=row_mask, **sampling).tolist()
            for j, tok in zip(ready, chosen, strict=True):
                r = active[j]
                new[r].append(int(tok))
                if tok == eos_id or len(new[r]) == max_new_tokens:
                    finish(j, r)
                else:
                    keep.append(j)
        keep.sort()
        if len(keep) < len(active):
            if keep:
                stepper.select(keep)
            active = [active[j] for j in keep]
        t, logits = t + 1, None
    return [done[r] for r in range(len(prompts))]
