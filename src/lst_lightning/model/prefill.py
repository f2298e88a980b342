"""Read the first ``L`` prompt tokens of every row in one parallel pass instead of ``L`` steps.

ASR prompts are long (hundreds of units) and answers short, so stepping the prompt token by token
dominates decoding. :func:`prefill_lst` runs the model's modules over the common prefix of all rows
at once, as the training forward does (closed patches only: an unfinished speech patch at the end
stays open, which is what the online rule has when its last token arrives), and leaves a fresh
:class:`~.batch_stepper.BatchLSTStepper` exactly where ``L`` calls of ``feed`` would: the local
self-attention windows, every token's encoder cross-attention keys/values, each row's global
keys/values and decoder context slots (rows close different numbers of patches: the shorter rows'
tail slots hold padding patches, masked and later overwritten), the open patch's running max, and
the counts. Late-closing speech patches need no recomputation here: in the parallel pass their last
token already reads its own patch's global output. :func:`prefill_baseline` does the same for the
SpeechLLM. The tests check that decoding after a prefill gives the stepped logits and tokens.
"""

from __future__ import annotations

import torch

from .batch_cache import AlignedKV
from .batch_stepper import BatchLSTStepper, BatchSpeechLLMStepper
from .generate import StaticPatchRule, closed_patch_lengths
from .layers import Block
from .patching import (
    decoder_cross_bounds,
    encoder_cross_bounds,
    max_pool_patches,
    patch_doc_ids,
    positions_in_document,
    token_to_patch,
)
from .rope import apply_rotary


def block_kv(
    block: Block, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys (rotated) and values ``[n, H, T, hd]`` that ``block``'s self-attention computes
    for ``x [n, T, D]`` (the block's forward does not return them)."""
    attn = block.attn
    b, t, d = x.shape
    qkv = attn.qkv(block.attn_norm(x)).view(b, t, 3, attn.n_heads, d // attn.n_heads)
    _, k, v = qkv.permute(2, 0, 3, 1, 4)
    return apply_rotary(k, rope), v


def fill_window(cache: AlignedKV, k: torch.Tensor, v: torch.Tensor) -> None:
    """Stores the last ``cache.window`` positions of ``k, v`` (a fresh cache)."""
    if len(cache):
        raise RuntimeError("prefill needs fresh caches")
    cache.append(k, v)


def late_closes(tokens: list[int], rule: StaticPatchRule) -> int:
    """How many speech patches of ``tokens`` close only when a non-unit token arrives (each costs
    the online decoder one recomputation)."""
    count = open_len = 0
    for tok in tokens:  # LSTStepper.feed's rule, counting its redecode_last calls
        unit = rule.is_unit(tok)
        if open_len and not unit:
            count += 1
            open_len = 0
        if unit or tok == rule.speech_id:
            open_len += 1
        if open_len == rule.patch_size:
            open_len = 0
    return count


@torch.no_grad()
def prefill_lst(stepper: BatchLSTStepper, prefix: list[list[int]]) -> torch.Tensor:
    """Feeds row ``i`` the tokens ``prefix[i]`` (all of one length ``L``) in one pass; returns the
    next-token logits ``[n, V]`` after them (what the ``L``-th ``feed`` returns)."""
    model, rule, device = stepper.model, stepper.rule, stepper.device
    enc, glob, dec, cfg = model.encoder, model.global_model, model.decoder, model.config
    n, length = len(prefix), len(prefix[0])
    if stepper.position or n != stepper.rows or any(len(p) != length for p in prefix):
        raise ValueError("prefill needs a fresh stepper and one prefix per row, all of one length")
    if length > stepper.capacity:
        raise ValueError(f"prefix of {length} tokens beyond the capacity {stepper.capacity}")
    closed = [closed_patch_lengths(p, rule) for p in prefix]
    num = max(len(c) for c in closed)
    if min(len(c) for c in closed) == 0:
        raise ValueError("prefill needs a closed patch in every row (prompts start with BOS)")
    tokens = torch.tensor(prefix, device=device)
    doc_ids = torch.zeros_like(tokens)
    lengths = torch.tensor([c + [0] * (num - len(c)) for c in closed], device=device)
    positions = positions_in_document(doc_ids)
    patch_index = token_to_patch(lengths, length)
    patch_docs = patch_doc_ids(lengths, doc_ids)

    # encoder (PatchEncoder.forward, keeping keys and values)
    h = enc.embed(tokens)
    rope = enc.rotary(positions)
    bounds = encoder_cross_bounds(lengths, patch_docs, cfg.cross_window_encoder)
    queries = first = None
    layers = zip(enc.layers, enc.cross, stepper.enc_self, stepper.enc_tokens, strict=True)
    for block, cross, cache, slots in layers:
        fill_window(cache, *block_kv(block, h, rope))
        h = block(h, doc_ids, rope)
        if queries is None:
            first = h
            queries = enc.init_queries(max_pool_patches(h, patch_index, num))
        queries = enc.residual * queries + cross(queries, h, *bounds)
        slots.fill(*cross.keys_values(h))
    x = enc.patch_vectors(queries)

    # global model over each row's closed patches (padding patches are another "document")
    grope = glob.stack.rotary(positions_in_document(patch_docs))
    for block, cache in zip(glob.stack.layers, stepper.global_kv, strict=True):
        k, v = block_kv(block, x, grope)
        cache.fill(k[:, :, :, None], v[:, :, :, None])
        x = block(x, patch_docs, grope)
    global_out = glob.norm(x)
    context = dec.patch_context(global_out)  # [n, P + 1, k, D], the start context last
    for cross, slots in zip(dec.cross, stepper.dec_context, strict=True):
        keys, values = cross.keys_values(context[:, :num].reshape(n, num * dec.k, -1))
        hd = keys.shape[-1]
        shape = (n, keys.shape[1], num, dec.k, hd)
        slots.fill(keys.view(shape), values.view(shape), start=1)

    # decoder (PatchDecoder.forward, keeping keys and values)
    dec_bounds = dec.context_bounds(
        decoder_cross_bounds(lengths, doc_ids, patch_docs, cfg.cross_window_decoder), num
    )
    drope = dec.rotary(positions)
    hd_ = h
    for cross, block, cache in zip(dec.cross, dec.layers, stepper.dec_self, strict=True):
        hd_ = dec.residual * hd_ + cross(hd_, context, *dec_bounds)
        fill_window(cache, *block_kv(block, hd_, drope))
        hd_ = block(hd_, doc_ids, drope)
    logits = dec.head(dec.norm(hd_[:, -1:]))[:, 0]

    # the stepper's bookkeeping, as after `length` feeds
    stepper.position = length
    stepper.last_state = h[:, -1:]
    stepper.open_max = torch.zeros_like(first[:, -1:])
    for i, c in enumerate(closed):
        starts = torch.tensor([0, *c]).cumsum(0).tolist()
        tail = starts[-1]
        stepper.closed[i] = len(c)
        stepper.open_len[i] = length - tail
        stepper.patch_starts[i] = starts[:-1] + ([tail] if tail < length else [])
        if tail < length:
            stepper.open_max[i] = first[i, tail:].amax(dim=0, keepdim=True)
        stepper.decoder_steps[i] = length + late_closes(prefix[i], rule)
    return logits


@torch.no_grad()
def prefill_baseline(stepper: BatchSpeechLLMStepper, prefix: list[list[int]]) -> torch.Tensor:
    """The baseline's prefill: one pass of the stack over the equal-length ``prefix`` rows."""
    m = stepper.model
    n, length = len(prefix), len(prefix[0])
    if stepper.position or n != stepper.rows or any(len(p) != length for p in prefix):
        raise ValueError("prefill needs a fresh stepper and one prefix per row, all of one length")
    tokens = torch.tensor(prefix, device=m.head.weight.device)
    doc_ids = torch.zeros_like(tokens)
    rope = m.stack.rotary(positions_in_document(doc_ids))
    h = m.embed(tokens)
    for block, cache in zip(m.stack.layers, stepper.caches, strict=True):
        fill_window(cache, *block_kv(block, h, rope))
        h = block(h, doc_ids, rope)
    stepper.position = length
    return m.head(m.norm(h[:, -1:]))[:, 0]
