"""Step ``n`` documents at once, one token per row per step, for LST and the SpeechLLM baseline.

The batched counterparts of :class:`~.generate.LSTStepper` and :class:`~.generate.SpeechLLMStepper`,
with the same online static patching (:meth:`BatchLSTStepper.feed` is ``LSTStepper.feed`` for every
row). Every active row is fed one token per step, so the encoder and decoder (the local models)
advance for all rows together and their caches stay aligned. The global model does not: a row runs
it only at a step where it closes a patch. One row's speech patch may close at its 4th unit while
another row's text token closes a 1-token patch and a third row is inside a patch. So each step
runs the global model on the *subset* of rows that closed a patch, each at its own global position
(its own RoPE angle, its own slot of a padded global KV cache, an attention mask up to its own
length), and the decoder's cross-attention reads each row's own window of global outputs through a
mask. The recomputation of a late-closing speech patch's last token (``redecode_last``) is done for
exactly the rows whose patch closed late, replacing their newest decoder cache entry.

No row ever reads another row's or an unused slot: every attention over a padded cache has a mask.
Rows that finish are dropped with :meth:`select`, so the batch shrinks instead of carrying them.
"""

from __future__ import annotations

import torch

from .baseline import SpeechLLM
from .batch_cache import (
    AlignedKV,
    RowSlots,
    TokenSlots,
    aligned_attention_step,
    masked_attention,
    slot_mask,
)
from .generate import StaticPatchRule, rope_at
from .layers import Block
from .lst import LST
from .rope import apply_rotary


def aligned_block_step(
    block: Block,
    x: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    cache: AlignedKV,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """:class:`Block` for one new position per row (``rows``: recompute those rows' newest)."""
    x = x + aligned_attention_step(block.attn, block.attn_norm(x), rope, cache, rows)
    return x + block.ffn(block.ffn_norm(x))


class BatchLSTStepper:
    """``n`` LST documents stepped together: :meth:`feed` one token per row, get logits ``[n, V]``.

    ``capacity`` bounds the tokens any row will be fed (prompt + answer); global positions and
    token slots are preallocated for it."""

    def __init__(self, model: LST, rows: int, capacity: int, rule: StaticPatchRule) -> None:
        if rows < 1 or capacity < 1:
            raise ValueError(f"need rows >= 1 and capacity >= 1, got {rows}, {capacity}")
        self.model, self.rule, self.rows, self.capacity = model, rule, rows, capacity
        enc, dec, glob = model.encoder, model.decoder, model.global_model
        self.enc_self = [AlignedKV(b.attn.window) for b in enc.layers]
        self.dec_self = [AlignedKV(b.attn.window) for b in dec.layers]
        self.enc_tokens = [TokenSlots(capacity) for _ in enc.cross]
        """Per encoder layer: projected cross-attention keys/values of every fed token."""
        self.global_kv = [RowSlots(capacity) for _ in glob.stack.layers]
        """Per global layer: keys/values, row ``i``'s ``j``-th closed patch at slot ``j``."""
        self.dec_context = [RowSlots(capacity + 1) for _ in dec.cross]
        """Per decoder layer: slot 0 the learned start context, slot ``j + 1`` the ``k`` context
        vectors of the row's ``j``-th global output."""
        with torch.no_grad():
            start = dec.start.to(next(dec.parameters()).dtype)[None]
            for cross, slots in zip(dec.cross, self.dec_context, strict=True):
                keys, values = cross.keys_values(start)  # [1, H, k, hd]
                slots.allocate(rows, keys[0])
                slots.keys[:, :, 0] = keys[0]
                slots.values[:, :, 0] = values[0]
        self.position = 0
        """Tokens fed so far (the same for every row)."""
        self.closed = [0] * rows
        """Closed patches (= global steps) per row."""
        self.decoder_steps = [0] * rows
        """Decoder token steps per row (one per fed token plus one per late-patch recompute)."""
        self.open_len = [0] * rows
        self.patch_starts: list[list[int]] = [[] for _ in range(rows)]
        """Per row: the token position where each of its patches (closed, then open) starts."""
        self.open_max: torch.Tensor | None = None
        """``[n, 1, D]``: running max of the open patch's first-layer states (its query init)."""
        self.last_state: torch.Tensor | None = None
        """``[n, 1, D]``: the encoder's state of each row's newest token (the decoder's input)."""

    @property
    def device(self) -> torch.device:
        return self.model.decoder.start.device

    def global_steps_of(self, row: int) -> int:
        return self.closed[row]

    def decoder_steps_of(self, row: int) -> int:
        return self.decoder_steps[row]

    def feed(self, tokens: list[int]) -> torch.Tensor:
        """Appends ``tokens[i]`` to row ``i`` under the online static rule; returns the next-token
        logits ``[n, V]`` (what ``LSTStepper.feed`` returns, row by row)."""
        if len(tokens) != self.rows:
            raise ValueError(f"feed got {len(tokens)} tokens for {self.rows} rows")
        if self.position >= self.capacity:
            raise RuntimeError(f"more than the capacity of {self.capacity} tokens fed")
        rule = self.rule
        unit = [rule.is_unit(t) for t in tokens]
        speech = [t == rule.speech_id for t in tokens]
        late = [i for i in range(self.rows) if self.open_len[i] and not unit[i]]
        if late:  # a non-unit token (or a new <s>) ends these rows' open speech patches
            self.close_patches(late)
            self.decode(late)  # their last token now reads its own patch's global output
        self.append(tokens)
        done = [
            i
            for i in range(self.rows)
            if not (unit[i] or speech[i]) or self.open_len[i] == rule.patch_size
        ]
        if done:
            self.close_patches(done)
        return self.decode(None)

    def append(self, tokens: list[int]) -> None:
        """Runs the encoder on one more token per row; its states join each row's open patch."""
        enc = self.model.encoder
        h = enc.embed(torch.tensor(tokens, device=self.device)[:, None])
        rope = rope_at(enc.rotary, self.position, self.device)
        fresh = torch.tensor([n == 0 for n in self.open_len], device=self.device)[:, None, None]
        layers = zip(enc.layers, enc.cross, self.enc_self, self.enc_tokens, strict=True)
        for i, (block, cross, cache, slots) in enumerate(layers):
            h = aligned_block_step(block, h, rope, cache)
            if i == 0:
                prev = h if self.open_max is None else torch.maximum(self.open_max, h)
                self.open_max = torch.where(fresh, h, prev)
            slots.write(self.position, *cross.keys_values(h))
        self.last_state = h
        for i in range(self.rows):
            if self.open_len[i] == 0:
                self.patch_starts[i].append(self.position)
            self.open_len[i] += 1
        self.position += 1

    def close_patches(self, rows: list[int]) -> None:
        """Encodes the open patch of each of ``rows`` and advances the global model once for
        those rows only, each at its own global position."""
        enc, glob, dec = self.model.encoder, self.model.global_model, self.model.decoder
        if self.open_max is None or any(self.open_len[i] == 0 for i in rows):
            raise RuntimeError("close_patches called on a row with no open patch")
        idx = torch.tensor(rows, device=self.device)
        m, length = len(rows), self.position
        queries = enc.init_queries(self.open_max[idx])
        _, _, k, d = queries.shape
        # patches q - W_enc + 1 .. q of the row (q: the closing one) are a token range [lo, now)
        first = [self.patch_starts[i][max(0, self.closed[i] - enc.window + 1)] for i in rows]
        lo = torch.tensor(first, device=self.device)
        mask = slot_mask(lo, torch.full_like(lo, length), length, 1)
        for cross, slots in zip(enc.cross, self.enc_tokens, strict=True):
            out = masked_attention(
                cross.queries(queries.view(m, k, d)), *slots.read(idx, length), mask
            )
            attn = cross.proj(out.transpose(1, 2).reshape(m, k, d))
            queries = enc.residual * queries + attn.view(m, 1, k, d)
        x = enc.patch_vectors(queries)
        pos = torch.tensor([self.closed[i] for i in rows], device=self.device)
        rope = glob.stack.rotary(pos[:, None])
        for block, cache in zip(glob.stack.layers, self.global_kv, strict=True):
            x = self.global_block_step(block, x, rope, cache, idx, pos)
        context = dec.context(glob.norm(x)).view(m, dec.k, -1)
        for cross, slots in zip(dec.cross, self.dec_context, strict=True):
            slots.write(idx, pos + 1, *cross.keys_values(context))
        for i in rows:
            self.closed[i] += 1
            self.open_len[i] = 0

    def global_block_step(
        self,
        block: Block,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        cache: RowSlots,
        idx: torch.Tensor,
        pos: torch.Tensor,
    ) -> torch.Tensor:
        """One global :class:`Block` for rows ``idx``, row ``idx[i]`` at its position ``pos[i]``."""
        attn = block.attn
        m, t, d = x.shape
        h = block.attn_norm(x)
        q, k, v = attn.qkv(h).view(m, t, 3, attn.n_heads, d // attn.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, rope), apply_rotary(k, rope)
        if not cache.allocated:
            cache.allocate(self.rows, k[0])
        cache.write(idx, pos, k, v)
        lo = pos - attn.window + 1 if attn.window is not None else torch.zeros_like(pos)
        num = int(pos.max()) + 1
        mask = slot_mask(lo.clamp(min=0), pos + 1, num, 1)
        out = masked_attention(q, *cache.read(idx, num), mask)
        x = x + attn.proj(out.transpose(1, 2).reshape(m, t, d))
        return x + block.ffn(block.ffn_norm(x))

    def decode(self, rows: list[int] | None) -> torch.Tensor:
        """The decoder on each row's newest token -> logits ``[n, V]`` (``rows``: only those rows,
        recomputing their newest decoder cache entries)."""
        dec = self.model.decoder
        if self.last_state is None:
            raise RuntimeError("decode called before any token was appended")
        idx = None if rows is None else torch.tensor(rows, device=self.device)
        h = self.last_state if idx is None else self.last_state[idx]
        chosen = range(self.rows) if rows is None else rows
        closed = torch.tensor([self.closed[i] for i in chosen], device=self.device)
        # slot 0 (start context) before any global output, else the last W_dec outputs' slots
        lo = torch.where(closed > 0, (closed - dec.window + 1).clamp(min=1), 0)
        hi = torch.where(closed > 0, closed + 1, 1)
        num = int(hi.max())
        mask = slot_mask(lo, hi, num, dec.k)
        rope = rope_at(dec.rotary, self.position - 1, self.device)
        m, _, d = h.shape
        layers = zip(dec.cross, dec.layers, self.dec_self, self.dec_context, strict=True)
        for cross, block, cache, slots in layers:
            out = masked_attention(cross.queries(h), *slots.read(idx, num), mask)
            h = dec.residual * h + cross.proj(out.transpose(1, 2).reshape(m, 1, d))
            h = aligned_block_step(block, h, rope, cache, idx)
        for i in chosen:
            self.decoder_steps[i] += 1
        return dec.head(dec.norm(h))[:, 0]

    def select(self, keep: list[int]) -> None:
        """Keeps only rows ``keep`` (in that order): finished rows leave the batch."""
        idx = torch.tensor(keep, device=self.device, dtype=torch.long)
        for cache in [*self.enc_self, *self.dec_self, *self.enc_tokens]:
            cache.select(idx)
        for slots in [*self.global_kv, *self.dec_context]:
            slots.select(idx)
        for name in ("open_max", "last_state"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[idx])
        self.closed = [self.closed[i] for i in keep]
        self.decoder_steps = [self.decoder_steps[i] for i in keep]
        self.open_len = [self.open_len[i] for i in keep]
        self.patch_starts = [self.patch_starts[i] for i in keep]
        self.rows = len(keep)


class BatchSpeechLLMStepper:
    """``n`` baseline documents stepped together: every token is a global step of every row."""

    def __init__(self, model: SpeechLLM, rows: int) -> None:
        self.model, self.rows = model, rows
        self.caches = [AlignedKV(b.attn.window) for b in model.stack.layers]
        self.position = 0

    def global_steps_of(self, row: int) -> int:
        return self.position

    def decoder_steps_of(self, row: int) -> int:
        """The baseline's one stack is its decoder: one step per fed token."""
        return self.position

    def feed(self, tokens: list[int]) -> torch.Tensor:
        """Appends ``tokens[i]`` to row ``i``; returns the next-token logits ``[n, V]``."""
        if len(tokens) != self.rows:
            raise ValueError(f"feed got {len(tokens)} tokens for {self.rows} rows")
        m = self.model
        device = m.head.weight.device
        h = m.embed(torch.tensor(tokens, device=device)[:, None])
        rope = rope_at(m.stack.rotary, self.position, device)
        for block, cache in zip(m.stack.layers, self.caches, strict=True):
            h = aligned_block_step(block, h, rope, cache)
        self.position += 1
        return m.head(m.norm(h))[:, 0]

    def select(self, keep: list[int]) -> None:
        idx = torch.tensor(keep, device=self.model.head.weight.device, dtype=torch.long)
        for cache in self.caches:
            cache.select(idx)
        self.rows = len(keep)
