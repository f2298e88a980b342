"""Key/value caches for decoding ``n`` documents at once (:mod:`.batch_stepper`).

Every row is fed one token per step, so the *token-level* caches are aligned: all rows hold the same
token positions, and a plain ``[n, H, L, hd]`` tensor with a sliding window needs no mask
(:class:`AlignedKV`, :class:`TokenSlots`). The *patch-level* caches are not: an LST row advances
its global model only when it closes a patch, so rows hold different numbers of global positions.
:class:`RowSlots` keeps them in a preallocated ``[n, H, capacity, m, hd]`` tensor (``m`` vectors per
position: 1 for global keys, ``k`` for the decoder's context vectors), each row writing at its own
position, and :func:`slot_mask` turns per-row lengths and windows into an attention mask, so a row
never attends to another row's padding.

All caches support :meth:`select` to drop finished rows (the batch shrinks as rows end).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import SelfAttention
from .rope import apply_rotary


class AlignedKV:
    """Local self-attention keys/values ``[n, H, L, hd]`` of rows that hold the same positions;
    keeps the last ``window`` (``None``: all)."""

    def __init__(self, window: int | None) -> None:
        self.window = window
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Adds one position for every row; returns the (windowed) keys and values."""
        keys = k if self.keys is None else torch.cat([self.keys, k], dim=2)
        values = v if self.values is None else torch.cat([self.values, v], dim=2)
        if self.window is not None:
            keys, values = keys[:, :, -self.window :], values[:, :, -self.window :]
        self.keys, self.values = keys, values
        return keys, values

    def replace_last(
        self, rows: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Overwrites the newest position of ``rows`` with ``k, v [m, H, 1, hd]``; returns those
        rows' keys and values (the recomputation of :meth:`LSTStepper.redecode_last`)."""
        if self.keys is None or self.values is None:
            raise RuntimeError("replace_last on an empty cache")
        keys = torch.cat([self.keys[rows, :, :-1], k], dim=2)
        values = torch.cat([self.values[rows, :, :-1], v], dim=2)
        self.keys[rows, :, -1:] = k
        self.values[rows, :, -1:] = v
        return keys, values

    def select(self, rows: torch.Tensor) -> None:
        if self.keys is not None and self.values is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]


def aligned_attention_step(
    attn: SelfAttention,
    x: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    cache: AlignedKV,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """One new position ``x [n, 1, D]`` per row attends to itself and the cached window.
    ``rows``: recompute the newest position of those rows instead of appending."""
    b, t, d = x.shape
    q, k, v = attn.qkv(x).view(b, t, 3, attn.n_heads, d // attn.n_heads).permute(2, 0, 3, 1, 4)
    q, k = apply_rotary(q, rope), apply_rotary(k, rope)
    keys, values = cache.append(k, v) if rows is None else cache.replace_last(rows, k, v)
    out = F.scaled_dot_product_attention(q, keys, values)
    return attn.proj(out.transpose(1, 2).reshape(b, t, d))


class TokenSlots:
    """Per-token vectors ``[n, H, capacity, hd]`` at aligned token positions (the encoder's
    projected cross-attention keys/values: a closing patch's queries read a per-row token range)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def write(self, position: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Stores ``k, v [n, H, 1, hd]`` at token ``position`` of every row."""
        if position >= self.capacity:
            raise RuntimeError(f"token position {position} beyond the capacity {self.capacity}")
        if self.keys is None or self.values is None:
            n, h, _, hd = k.shape
            self.keys = k.new_zeros(n, h, self.capacity, hd)
            self.values = v.new_zeros(n, h, self.capacity, hd)
        self.keys[:, :, position] = k[:, :, 0]
        self.values[:, :, position] = v[:, :, 0]

    def fill(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Stores ``k, v [n, H, L, hd]`` at token positions ``0 .. L - 1`` (a parallel prefill)."""
        n, h, length, hd = k.shape
        if length > self.capacity:
            raise RuntimeError(f"{length} tokens beyond the capacity {self.capacity}")
        self.keys = k.new_zeros(n, h, self.capacity, hd)
        self.values = v.new_zeros(n, h, self.capacity, hd)
        self.keys[:, :, :length], self.values[:, :, :length] = k, v

    def read(self, rows: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``length`` positions of ``rows``."""
        if self.keys is None or self.values is None:
            raise RuntimeError("read from an empty cache")
        return self.keys[rows, :, :length], self.values[rows, :, :length]

    def select(self, rows: torch.Tensor) -> None:
        if self.keys is not None and self.values is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]


class RowSlots:
    """Per-row positions ``[n, H, capacity, m, hd]``: row ``i`` writes its ``j``-th entry at slot
    ``j`` whenever it gets one (rows fill at different rates); :func:`slot_mask` says which slots a
    row may read."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def write(
        self, rows: torch.Tensor, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> None:
        """Row ``rows[i]`` stores ``k[i], v[i]`` (``[H, m, hd]``) at its slot ``slots[i]``."""
        if int(slots.max()) >= self.capacity:
            raise RuntimeError(f"slot {int(slots.max())} beyond the capacity {self.capacity}")
        if self.keys is None or self.values is None:
            raise RuntimeError("RowSlots.allocate first")
        self.keys[rows, :, slots] = k
        self.values[rows, :, slots] = v

    def fill(self, k: torch.Tensor, v: torch.Tensor, start: int = 0) -> None:
        """Stores ``k, v [n, H, S, m, hd]`` at slots ``start .. start + S - 1`` of every row (a
        parallel prefill; slots past a row's own length are masked and later overwritten)."""
        if self.keys is None or self.values is None:
            self.allocate(k.shape[0], k[0, :, 0])
        end = start + k.shape[2]
        if end > self.capacity:
            raise RuntimeError(f"slot {end - 1} beyond the capacity {self.capacity}")
        self.keys[:, :, start:end], self.values[:, :, start:end] = k, v

    def allocate(self, rows: int, like: torch.Tensor) -> None:
        """Zeroed storage for ``rows`` rows shaped after one entry ``like [H, m, hd]``."""
        h, m, hd = like.shape
        self.keys = like.new_zeros(rows, h, self.capacity, m, hd)
        self.values = like.new_zeros(rows, h, self.capacity, m, hd)

    @property
    def allocated(self) -> bool:
        return self.keys is not None

    def read(self, rows: torch.Tensor | None, num_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots ``[0, num_slots)`` of ``rows`` (``None``: all), flattened to ``[m', H, S * m, hd]``."""
        if self.keys is None or self.values is None:
            raise RuntimeError("read from an empty cache")
        keys, values = self.keys[:, :, :num_slots], self.values[:, :, :num_slots]
        if rows is not None:
            keys, values = keys[rows], values[rows]
        b, h, s, m, hd = keys.shape
        return keys.reshape(b, h, s * m, hd), values.reshape(b, h, s * m, hd)

    def select(self, rows: torch.Tensor) -> None:
        if self.keys is not None and self.values is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]


def slot_mask(lo: torch.Tensor, hi: torch.Tensor, num_slots: int, per_slot: int) -> torch.Tensor:
    """Boolean attention mask ``[n, 1, 1, num_slots * per_slot]``: row ``i`` reads slots
    ``[lo_i, hi_i)`` (``per_slot`` key vectors each). Every range must be non-empty."""
    slots = torch.arange(num_slots, device=lo.device)
    allowed = (slots >= lo[:, None]) & (slots < hi[:, None])
    return allowed.repeat_interleave(per_slot, dim=1)[:, None, None]


def masked_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """SDPA of ``q [n, H, Q, hd]`` over ``keys, values [n, H, K, hd]`` under a boolean mask."""
    return F.scaled_dot_product_attention(q, keys.type_as(q), values.type_as(q), attn_mask=mask)
