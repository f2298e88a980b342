"""Incremental generation with KV caches for :class:`LST` and the :class:`SpeechLLM` baseline.

DESIGN 2.5: the global model advances once per *closed* patch and the decoder emits tokens one by
one. A step-by-step LST keeps five kinds of cache: the encoder's and the decoder's local
self-attention keys/values (at most ``window`` per layer, the sliding window); the global
transformer's keys/values (one entry per closed patch); per encoder layer, the projected
cross-attention keys/values of the tokens of the open patch and of the last ``W_enc - 1`` closed
patches (a closing patch's ``k`` queries attend to them); and per decoder layer, the projected
keys/values of the ``k`` context vectors of the last ``W_dec`` global outputs (every token
attends to them). The open patch's first-layer token states are kept for the max-pool that
initialises its queries.

Static patching online (the rule of ``lst_lightning.data.stream.patching.static_patch_lengths``, decided
as tokens arrive): an ``<s>`` opens a speech patch, units extend it, and it closes after ``p``
tokens (the ``<s>`` counts) or when a non-unit token arrives; every non-unit token is a closed
1-token patch. A unit with no open patch (e.g. right after a full patch) opens a new one. So at a
unit inside an unfinished patch the logits read the last *closed* patch, which is what the full
forward computes when given the closed patches only (:func:`closed_patch_lengths`).

Everything here runs one document at a time (batch of 1), and is the reference that the batched
decoder (:mod:`.batch_stepper`, :func:`~.batch_generate.generate_batch`) is tested against. Uses the
modules' parameters directly and leaves their ``forward`` untouched.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .attention import SelfAttention
from .baseline import SpeechLLM
from .layers import Block
from .lst import LST
from .rope import Rotary, apply_rotary
from .sampling import AllowedIds, allowed_mask, check_sampling, choose_tokens


@dataclass
class StaticPatchRule:
    """The static(p) patch boundaries decided token by token at generation time."""

    patch_size: int
    """``p``: tokens per speech patch, the ``<s>`` included. Paper: 4 (ablations 6, 9)."""
    unit_range: tuple[int, int]
    """Half-open id range ``[lo, hi)`` of the speech tokens (``Vocab.unit_offset, vocab_size``)."""
    speech_id: int
    """The ``<s>`` id that opens a speech run (``Vocab.speech_id``)."""

    def __post_init__(self) -> None:
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        lo, hi = self.unit_range
        if not 0 <= lo < hi:
            raise ValueError(
                f"unit_range must be a non-empty [lo, hi) range, got {self.unit_range}"
            )
        if lo <= self.speech_id < hi:
            raise ValueError(f"speech_id {self.speech_id} lies inside unit_range {self.unit_range}")

    def is_unit(self, token: int) -> bool:
        return self.unit_range[0] <= token < self.unit_range[1]


def closed_patch_lengths(tokens: list[int], rule: StaticPatchRule) -> list[int]:
    """Lengths of the patches of ``tokens`` that are closed under ``rule`` (an open speech patch at
    the end is left out). Reference for the step-by-step path; see the module docstring."""
    lengths: list[int] = []
    open_len = 0
    for tok in tokens:
        if rule.is_unit(tok) and open_len:
            open_len += 1
        elif rule.is_unit(tok) or tok == rule.speech_id:
            if open_len:
                lengths.append(open_len)
            open_len = 1
        else:
            if open_len:
                lengths.append(open_len)
            open_len = 0
            lengths.append(1)
        if open_len == rule.patch_size:
            lengths.append(open_len)
            open_len = 0
    return lengths


@dataclass
class KVCache:
    """Keys and values ``[1, H, n, hd]`` of one self-attention layer; keeps the last ``window``."""

    window: int | None
    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = k if self.keys is None else torch.cat([self.keys, k], dim=2)
        values = v if self.values is None else torch.cat([self.values, v], dim=2)
        if self.window is not None:
            keys, values = keys[:, :, -self.window :], values[:, :, -self.window :]
        self.keys, self.values = keys, values
        return keys, values

    def pop(self) -> None:
        """Drops the newest entry (to recompute it)."""
        if self.keys is not None:
            self.keys, self.values = self.keys[:, :, :-1], self.values[:, :, :-1]

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]


def attention_step(
    attn: SelfAttention, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache
) -> torch.Tensor:
    """One new token ``x [1, 1, D]`` attends to itself and the cached keys (already windowed)."""
    b, t, d = x.shape
    q, k, v = attn.qkv(x).view(b, t, 3, attn.n_heads, d // attn.n_heads).permute(2, 0, 3, 1, 4)
    q, k = apply_rotary(q, rope), apply_rotary(k, rope)
    keys, values = cache.append(k, v)
    out = F.scaled_dot_product_attention(q, keys, values)
    return attn.proj(out.transpose(1, 2).reshape(b, t, d))


def block_step(
    block: Block, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache
) -> torch.Tensor:
    """:class:`Block` for one new position, reading and extending ``cache``."""
    x = x + attention_step(block.attn, block.attn_norm(x), rope, cache)
    return x + block.ffn(block.ffn_norm(x))


def rope_at(
    rotary: Rotary, position: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    return rotary(torch.tensor([[position]], device=device))


def concat_kv(
    entries: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values ``[1, H, n_i, hd]`` joined along the position axis."""
    return torch.cat([k for k, _ in entries], dim=2), torch.cat([v for _, v in entries], dim=2)


@dataclass
class PatchWindowCache:
    """Projected cross-attention keys and values ``[1, H, n, hd]``, one entry per patch, keeping
    the last ``window`` patches (the cross-attention window)."""

    window: int
    entries: deque[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=deque)

    def push(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        if self.window < 1:
            return
        self.entries.append((keys, values))
        while len(self.entries) > self.window:
            self.entries.popleft()

    def keys_values(
        self, extra: list[tuple[torch.Tensor, torch.Tensor]] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached entries, oldest first, followed by ``extra``, concatenated."""
        return concat_kv([*self.entries, *extra])

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class LSTState:
    """Everything an LST needs to continue one document: caches, the open patch, the context."""

    enc_caches: list[KVCache]
    dec_caches: list[KVCache]
    global_caches: list[KVCache]
    enc_cross: list[PatchWindowCache]
    """Per encoder layer: cross-attention keys/values of the last ``W_enc - 1`` closed patches."""
    dec_cross: list[PatchWindowCache]
    """Per decoder layer: cross-attention keys/values of the last ``W_dec`` global outputs."""
    position: int = 0
    global_steps: int = 0
    open_first: list[torch.Tensor] = field(default_factory=list)
    """First-layer states of the open patch's tokens (max-pooled into its queries)."""
    open_cross: list[list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    """Per encoder layer: cross-attention keys/values of the open patch's tokens."""
    last_token_state: torch.Tensor | None = None


class LSTStepper:
    """Step-by-step LST: :meth:`append` a token, :meth:`close_patch` when its patch is complete,
    then :meth:`logits` for the next token. :meth:`feed` applies a :class:`StaticPatchRule`."""

    def __init__(self, model: LST) -> None:
        self.model = model
        enc, dec, glob = model.encoder, model.decoder, model.global_model
        self.state = LSTState(
            enc_caches=[KVCache(b.attn.window) for b in enc.layers],
            dec_caches=[KVCache(b.attn.window) for b in dec.layers],
            global_caches=[KVCache(b.attn.window) for b in glob.stack.layers],
            enc_cross=[PatchWindowCache(enc.window - 1) for _ in enc.cross],
            dec_cross=[PatchWindowCache(dec.window) for _ in dec.cross],
            open_cross=[[] for _ in enc.cross],
        )
        self.open_len = 0

    @property
    def device(self) -> torch.device:
        return self.model.decoder.start.device

    def append(self, token: int) -> None:
        """Runs the encoder on one more token; its states join the open patch."""
        enc, s = self.model.encoder, self.state
        h = enc.embed(torch.tensor([[token]], device=self.device))
        rope = rope_at(enc.rotary, s.position, self.device)
        layers = zip(enc.layers, enc.cross, s.enc_caches, s.open_cross, strict=True)
        for i, (block, cross, cache, open_kv) in enumerate(layers):
            h = block_step(block, h, rope, cache)
            if i == 0:
                s.open_first.append(h)
            open_kv.append(cross.keys_values(h))
        s.last_token_state = h
        s.position += 1
        self.open_len += 1

    def close_patch(self) -> None:
        """Encodes the open patch into one global position and advances the global model once."""
        enc, glob, dec, s = (
            self.model.encoder,
            self.model.global_model,
            self.model.decoder,
            self.state,
        )
        if not s.open_first:
            raise RuntimeError("close_patch called with no open patch")
        queries = enc.init_queries(torch.cat(s.open_first, dim=1).amax(dim=1, keepdim=True))
        _, _, k, d = queries.shape
        for cross, window, open_kv in zip(enc.cross, s.enc_cross, s.open_cross, strict=True):
            keys, values = window.keys_values(open_kv)
            attn = cross.attend(cross.queries(queries.view(1, k, d)), keys, values)
            queries = enc.residual * queries + attn.view(1, 1, k, d)
            window.push(*concat_kv(open_kv))
        x = enc.patch_vectors(queries)
        rope = rope_at(glob.stack.rotary, s.global_steps, self.device)
        for block, cache in zip(glob.stack.layers, s.global_caches, strict=True):
            x = block_step(block, x, rope, cache)
        context = dec.context(glob.norm(x)).view(1, dec.k, -1)
        for cross, window in zip(dec.cross, s.dec_cross, strict=True):
            window.push(*cross.keys_values(context))
        s.global_steps += 1
        s.open_first = []
        s.open_cross = [[] for _ in s.open_cross]
        self.open_len = 0

    def logits(self) -> torch.Tensor:
        """Next-token logits ``[V]`` after the last appended token (runs the decoder once)."""
        dec, s = self.model.decoder, self.state
        if s.last_token_state is None:
            raise RuntimeError("logits called before any token was appended")
        h = s.last_token_state
        rope = rope_at(dec.rotary, s.position - 1, self.device)
        layers = zip(dec.cross, dec.layers, s.dec_caches, s.dec_cross, strict=True)
        for cross, block, cache, window in layers:
            if len(window):
                keys, values = window.keys_values()
            else:  # no global output of this document yet: the learned start context
                keys, values = cross.keys_values(dec.start.to(h.dtype)[None])
            h = dec.residual * h + cross.attend(cross.queries(h), keys, values)
            h = block_step(block, h, rope, cache)
        return dec.head(dec.norm(h))[0, 0]

    def redecode_last(self) -> None:
        """Recomputes the decoder's cached states of the last token after its patch closed late.

        A speech patch shorter than ``p`` closes only when the next token arrives, after the
        decoder already ran on its last token reading the previous global outputs. In the full
        forward that token reads the patch's own global output (it closes the patch), and later
        tokens self-attend to its decoder states: so its decoder keys/values are replaced."""
        for cache in self.state.dec_caches:
            cache.pop()
        self.logits()

    def feed(self, token: int, rule: StaticPatchRule) -> torch.Tensor:
        """Appends ``token`` with the online static rule and returns the next-token logits."""
        unit, speech = rule.is_unit(token), token == rule.speech_id
        if self.open_len and not unit:
            self.close_patch()  # a non-unit token (or a new <s>) ends the open speech patch
            self.redecode_last()
        self.append(token)
        if not (unit or speech) or self.open_len == rule.patch_size:
            self.close_patch()
        return self.logits()


class SpeechLLMStepper:
    """Step-by-step baseline: one cached decoder step per token (every token is a global step)."""

    def __init__(self, model: SpeechLLM) -> None:
        self.model = model
        self.caches = [KVCache(b.attn.window) for b in model.stack.layers]
        self.position = 0
        self.global_steps = 0

    def feed(self, token: int, rule: StaticPatchRule | None = None) -> torch.Tensor:
        """Appends ``token`` and returns the next-token logits ``[V]``; ``rule`` is accepted (and
        ignored) so both steppers share one signature."""
        m = self.model
        device = m.head.weight.device
        h = m.embed(torch.tensor([[token]], device=device))
        rope = rope_at(m.stack.rotary, self.position, device)
        for block, cache in zip(m.stack.layers, self.caches, strict=True):
            h = block_step(block, h, rope, cache)
        self.position += 1
        self.global_steps += 1
        return m.head(m.norm(h))[0, 0]


@torch.no_grad()
def teacher_forced_logits(model: LST, tokens: list[int], patch_lengths: list[int]) -> torch.Tensor:
    """Logits ``[T, V]`` of ``tokens`` computed step by step with the given patch boundaries (a
    patch closes at its last token); equals ``model(tokens, doc_ids, patch_lengths)`` of one
    document. Used to prove the cached path exact."""
    if sum(patch_lengths) != len(tokens) or min(patch_lengths, default=1) < 1:
        raise ValueError(f"patch_lengths {patch_lengths} do not tile {len(tokens)} tokens")
    ends = set(torch.tensor(patch_lengths).cumsum(0).tolist())
    stepper = LSTStepper(model)
    out = []
    for i, tok in enumerate(tokens):
        stepper.append(tok)
        if i + 1 in ends:
            stepper.close_patch()
        out.append(stepper.logits())
    return torch.stack(out)


@dataclass
class Generation:
    """Result of :func:`generate` and of each row of
    :func:`~lst_lightning.model.batch_generate.generate_batch`."""

    ids: list[int]
    """The new tokens (the prompt excluded), up to and including EOS when it was emitted."""
    global_steps: int
    """Global-model steps taken (prompt included); the last new token is never fed back. LST: one
    per closed patch; the baseline: one per fed token."""
    prompt_global_steps: int
    """Of which while reading the prompt."""
    decoder_steps: int = 0
    """Local decoder token steps (prompt included): LST runs its patch decoder once per fed token,
    plus once more for the last token of each speech patch that closed late (see
    :meth:`LSTStepper.redecode_last`); the baseline's one stack is its decoder, one step per fed
    token (so this equals its global steps). Counted the same when a prompt is read in one parallel
    pass (:mod:`.prefill`): these are the steps of the autoregressive computation."""
    context_positions: int = 0
    """Global positions of the whole document ``prompt + ids`` under the rule, an unfinished
    speech patch at the end counted as one (:func:`global_positions`): the global sequence length
    it ends with. The baseline: its token count."""
    stopped_at_eos: bool = False
    """True when ``eos_id`` was emitted; False when ``max_new_tokens`` was reached first."""

    @property
    def answer_global_steps(self) -> int:
        """Global steps taken after the prompt (while feeding back the new tokens)."""
        return self.global_steps - self.prompt_global_steps

    @property
    def hit_limit(self) -> bool:
        """True when decoding stopped at ``max_new_tokens`` without an EOS."""
        return not self.stopped_at_eos


def global_positions(tokens: list[int], rule: StaticPatchRule | None) -> int:
    """Global positions of ``tokens``: closed patches plus one for an unfinished speech patch at
    the end (``rule=None``: one per token, the baseline)."""
    if rule is None:
        return len(tokens)
    closed = closed_patch_lengths(tokens, rule)
    return len(closed) + (sum(closed) < len(tokens))


@torch.no_grad()
def generate(
    model: LST | SpeechLLM,
    prompt_ids: list[int],
    max_new_tokens: int,
    rule: StaticPatchRule | None = None,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    allowed_ids: AllowedIds | None = None,
) -> Generation:
    """Continues one document. ``temperature=0`` is greedy; ``> 0`` samples from
    ``softmax(logits / temperature)`` (then ``top_k`` / ``top_p``) with ``generator``. Stops after
    ``eos_id`` or ``max_new_tokens``. ``allowed_ids`` restricts the new tokens (``eos_id`` stays
    allowed; :func:`~lst_lightning.model.sampling.allowed_mask`). LST needs ``rule`` (its static
    patching); the baseline ignores it. For many documents use
    :func:`~lst_lightning.model.batch_generate.generate_batch`."""
    if not prompt_ids:
        raise ValueError("prompt_ids must hold at least one token (e.g. BOS)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    check_sampling(temperature, top_k, top_p)
    if isinstance(model, LST):
        if rule is None:
            raise ValueError("generate on an LST needs a StaticPatchRule (rule=...)")
        stepper: LSTStepper | SpeechLLMStepper = LSTStepper(model)
    elif isinstance(model, SpeechLLM):
        stepper = SpeechLLMStepper(model)
    else:
        raise TypeError(f"generate supports LST and SpeechLLM, got {type(model).__name__}")
    lst_rule = rule if isinstance(stepper, LSTStepper) else None
    vocab = model.config.vocab_size
    mask = allowed_mask(allowed_ids, vocab, 1, eos_id, torch.device("cpu"))
    decoder_steps = 0

    def steps() -> int:
        return (
            stepper.state.global_steps if isinstance(stepper, LSTStepper) else stepper.global_steps
        )

    def feed(tok: int) -> torch.Tensor:
        nonlocal decoder_steps
        late = isinstance(stepper, LSTStepper) and stepper.open_len and not rule.is_unit(tok)
        decoder_steps += 1 + bool(late)
        return stepper.feed(tok, rule)

    for tok in prompt_ids:
        logits = feed(tok)
    prompt_steps = steps()
    new: list[int] = []
    for _ in range(max_new_tokens):
        row = logits[None].cpu()
        tok = int(
            choose_tokens(
                row,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
                mask=mask,
            )[0]
        )
        new.append(tok)
        if tok == eos_id or len(new) == max_new_tokens:
            break
        logits = feed(tok)
    return Generation(
        ids=new,
        global_steps=steps(),
        prompt_global_steps=prompt_steps,
        decoder_steps=decoder_steps,
        context_positions=global_positions([*prompt_ids, *new], lst_rule),
        stopped_at_eos=bool(new) and new[-1] == eos_id,
    )
