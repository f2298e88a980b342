"""Several sources of one kind as one indexable collection, walked by token share.

The epoch plan (:func:`lst_lightning.data.stream.dataset.select_mixture`) walks one order of
utterances and one of text documents. With several sources of a kind, :class:`Concatenated`
puts them end to end (source ``k`` owns a contiguous index range) and :func:`weighted_order`
builds the walk: each next item comes from the source whose tokens are furthest below its share
(in a random order within each source), and the walk stops when a source runs out, so the shares
hold over any prefix the mixture keeps. A single source gives its plain random permutation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Part:
    """One source's index range ``[start, stop)`` in a :class:`Concatenated` and its share."""

    name: str
    start: int
    stop: int
    share: float


class Concatenated(Sequence[T], Generic[T]):
    """Sources end to end, indexed as one sequence (nothing is copied)."""

    def __init__(
        self, sources: Sequence[Sequence[T]], names: Sequence[str], shares: Sequence[float]
    ):
        self.sources = list(sources)
        bounds = np.cumsum([0] + [len(s) for s in sources])
        total = float(sum(shares))
        self.parts = tuple(
            Part(n, int(a), int(b), float(w) / total)
            for n, a, b, w in zip(names, bounds[:-1], bounds[1:], shares, strict=True)
        )
        self._starts = bounds[:-1]
        self._length = int(bounds[-1])

    def __len__(self) -> int:
        return self._length

    def locate(self, index: int) -> tuple[int, int]:
        """(source number, row in that source) of a global index."""
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        return k, int(index) - int(self._starts[k])

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < self._length:
            raise IndexError(index)
        k, row = self.locate(index)
        return self.sources[k][row]


def sources_of(collection: Sequence) -> list[Sequence]:
    """The sources a collection is made of (itself, for a plain sequence)."""
    return list(collection.sources) if isinstance(collection, Concatenated) else [collection]


def parts_of(collection: Sequence) -> tuple[Part, ...]:
    """The weighted parts of a collection (one part, share 1, for a plain sequence)."""
    if isinstance(collection, Concatenated):
        return collection.parts
    return (Part(getattr(collection, "name", ""), 0, len(collection), 1.0),)


def weighted_order(
    parts: Sequence[Part], rng: np.random.Generator, length: Callable[[int], int]
) -> np.ndarray:
    """A walk over the parts' indices meeting their token shares (module docstring)."""
    orders = [part.start + rng.permutation(part.stop - part.start) for part in parts]
    taken = [0] * len(parts)
    tokens = [0.0] * len(parts)
    out = np.empty(sum(len(o) for o in orders), dtype=np.int64)
    n = 0
    while all(t < len(o) for t, o in zip(taken, orders, strict=True)):
        k = min(range(len(parts)), key=lambda j: tokens[j] / parts[j].share)
        index = int(orders[k][taken[k]])
        taken[k] += 1
        tokens[k] += length(index)
        out[n] = index
        n += 1
    return out[:n]
