"""A text source read as a stream: ``datasets`` ``IterableDataset``, sharded, resumable by count.

For text corpora that do not fit on the local disk (``load_dataset(..., streaming=True)``). A
stream cannot be indexed, so it cannot enter an epoch plan; instead each loader process (one
DataLoader worker of one rank: a *shard*) reads its own part of the stream in order
(``datasets.distributed.split_dataset_by_node`` over ``rank * workers + worker`` of
``world * workers``: whole files when the stream has a multiple of that many, else every
``n``-th example; never overlapping; read with ``IterableDataset.iter``, which, unlike plain
iteration, does not split across DataLoader workers once more) and draws text documents from it as the token shares ask
(:mod:`lst_lightning.data.stream.dataset`).

**Position.** A shard's position is ``(lap, taken)``: how many times it has read its part to the
end, and how many documents of the current lap it has *used* (a document read but not yet used
is read again after a resume). A lap reads the part in the same order again.

**Resuming in O(1).** Reading through ``taken`` documents again would take hours for a shard
that has used 10^8 of them, so each position also carries a :class:`StreamCheckpoint`: the
``IterableDataset.state_dict()`` at the start of the ``READ_BATCH``-sized read that holds the last
used document (a file + offset in the underlying data; ``None`` at the lap's start), that
document's index in the read and a digest of its text. Restarting loads the state, reads at most
one batch up to that document, checks its digest and continues after it: the same documents in
the same order as the uninterrupted run, at the cost of one read whatever ``taken`` is. The state
is taken *before* the read, so documents read ahead but not yet used never count as used. A
position without a checkpoint (a checkpoint written before it existed), a state the stream cannot
load or a digest that does not match (the data changed under the state) falls back to reading
through ``taken`` documents from the lap's start, with a warning for the last two.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READ_BATCH = 64
"""Examples read from the stream at a time."""


def text_digest(text: str) -> str:
    """A short digest of a document, to check that a resumed state points at the same one."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class StreamCheckpoint:
    """How to reach a position without reading the lap again: the stream's ``state_dict`` at the
    start of the read that holds the last used document (``None``: the lap's start), the
    documents of that read before it (``skip``) and its digest. Plain JSON-able data."""

    state: dict | None
    skip: int
    digest: str

    def to_json(self) -> dict:
        return {"state": self.state, "skip": self.skip, "digest": self.digest}

    @classmethod
    def from_json(cls, data: Any, where: str = "stream position") -> StreamCheckpoint:
        """The inverse of :meth:`to_json`; a malformed entry is an error naming ``where``."""
        try:
            state, skip, digest = data["state"], int(data["skip"]), str(data["digest"])
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(
                f"{where}: a resume checkpoint needs state, skip and digest, got {data!r}"
            ) from err
        if (state is not None and not isinstance(state, dict)) or skip < 0:
            raise ValueError(f"{where}: bad resume checkpoint {data!r}")
        return cls(state, skip, digest)


@dataclass(frozen=True)
class StreamPosition:
    """Where one shard is in a stream: full laps over its part, documents used in this lap.

    ``resume`` is only a faster way to the same place (it does not enter ``==``)."""

    lap: int = 0
    taken: int = 0
    resume: StreamCheckpoint | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> list:
        """``[lap, taken]`` or ``[lap, taken, checkpoint]`` (what a training checkpoint holds)."""
        base: list = [self.lap, self.taken]
        return base if self.resume is None else [*base, self.resume.to_json()]

    @classmethod
    def from_json(cls, data: Any, where: str = "stream position") -> StreamPosition:
        """The inverse of :meth:`to_json`; ``[lap, taken]`` (older checkpoints) resumes by
        reading through ``taken`` documents."""
        if not isinstance(data, (list, tuple)) or len(data) not in (2, 3):
            raise ValueError(f"{where}: expected [lap, taken(, checkpoint)], got {data!r}")
        resume = StreamCheckpoint.from_json(data[2], where) if len(data) == 3 else None
        return cls(int(data[0]), int(data[1]), resume)


class TextStream:
    """One streamed text source; holds only its location (pickles to workers as such)."""

    def __init__(
        self, path: str | Path, split: str = "train", text_column: str = "text", name: str = ""
    ) -> None:
        self.path, self.split, self.text_column = str(path), split, text_column
        self.name = name or str(path)

    def _open(self, shard: int, num_shards: int):
        from datasets.distributed import split_dataset_by_node

        from lst_lightning.data.sources.arrow import open_dataset

        ds = open_dataset(self.path, self.split, streaming=True)
        names = ds.column_names
        if names is not None and self.text_column not in names:
            raise ValueError(
                f"text source {self.name}: no column {self.text_column!r} (it has "
                f"{', '.join(names)}); name it with the source's `columns: {{text: ...}}`"
            )
        if num_shards > 1:
            ds = split_dataset_by_node(ds, rank=shard, world_size=num_shards)
        return ds

    def _reads(
        self, shard: int, num_shards: int, state: dict | None
    ) -> Iterator[tuple[dict | None, Any]]:
        """``(state at the start of the read, its texts as an Arrow array)``, read after read,
        from ``state`` (``None``: the lap's start). Arrow batches, not Python dicts of every
        column: reading through used documents (the fallback) then costs no Python objects."""
        ds = self._open(shard, num_shards).with_format("arrow")
        if state is not None:
            ds.load_state_dict(state)
        # ``iter`` (not ``for row in ds``): inside a DataLoader worker ``datasets`` would split
        # the stream across the workers a second time
        for batch in ds.iter(batch_size=READ_BATCH):
            yield state, batch[self.text_column]
            state = ds.state_dict()  # where the next read starts

    def _resume(
        self, shard: int, num_shards: int, start: StreamPosition
    ) -> Iterator[tuple[dict | None, list, int]]:
        """Reads from ``start`` on, with the documents of the first to drop: ``(state, texts,
        dropped)``. Uses ``start.resume`` when it leads to the last used document, else reads
        through ``start.taken`` documents from the lap's start."""
        point = start.resume
        if point is not None and start.taken > 0:
            reads, texts, why = None, [], ""
            try:
                reads = self._reads(shard, num_shards, point.state)
                while len(texts) <= point.skip:  # up to the last used document
                    texts.extend(next(reads)[1].to_pylist())
                last = texts[point.skip]
                if not (isinstance(last, str) and text_digest(last) == point.digest):
                    why = "the document there is not the last one used (did the data change?)"
            except StopIteration:
                why = "the stream ends before it"
            except Exception as err:  # a state this stream's layout cannot take
                why = f"{type(err).__name__}: {err}"
            if not why and reads is not None:
                yield point.state, texts, point.skip + 1
                yield from ((s, t.to_pylist(), 0) for s, t in reads)
                return
            warnings.warn(
                f"text source {self.name}: shard {shard}/{num_shards} cannot resume at lap "
                f"{start.lap}, document {start.taken} from the saved stream state ({why}); "
                f"reading through {start.taken} documents instead",
                stacklevel=2,
            )
        left = start.taken
        for state, texts in self._reads(shard, num_shards, None):
            if left >= len(texts):
                left -= len(texts)
                continue
            yield state, texts.to_pylist(), left
            left = 0

    def documents(
        self, shard: int, num_shards: int, start: StreamPosition
    ) -> Iterator[tuple[StreamPosition, str]]:
        """``(position after this document, document)`` of this shard's part, from ``start``,
        lap after lap (forever; a part without any document is an error)."""
        lap = start.lap
        reads = self._resume(shard, num_shards, start)
        count = start.taken
        while True:
            for state, texts, dropped in reads:
                for index in range(dropped, len(texts)):
                    text = texts[index]
                    count += 1
                    if not isinstance(text, str) or not text.strip():
                        raise ValueError(
                            f"text source {self.name}: example {count - 1} of shard {shard}/"
                            f"{num_shards} (lap {lap}) is an empty text document"
                        )
                    resume = StreamCheckpoint(state, index, text_digest(text))
                    yield StreamPosition(lap, count, resume), text
            if count == 0:
                raise ValueError(
                    f"text source {self.name}: shard {shard} of {num_shards} has no documents "
                    "(fewer examples than loader processes?)"
                )
            lap, count = lap + 1, 0
            reads = ((s, t.to_pylist(), 0) for s, t in self._reads(shard, num_shards, None))
