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
is read again after a resume). Restarting at a position re-opens the stream and skips ``taken``
examples of the shard (``IterableDataset.skip``: reading through them, which costs time but no
memory), so a resumed run reads the same documents in the same order. A lap reads the part in the
same order again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READ_BATCH = 64
"""Examples read from the stream at a time."""


@dataclass(frozen=True)
class StreamPosition:
    """Where one shard is in a stream: full laps over its part, documents used in this lap."""

    lap: int = 0
    taken: int = 0


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

    def documents(
        self, shard: int, num_shards: int, start: StreamPosition
    ) -> Iterator[tuple[StreamPosition, str]]:
        """``(position after this document, document)`` of this shard's part, from ``start``,
        lap after lap (forever; a part without any document is an error)."""
        lap, taken = start.lap, start.taken
        while True:
            ds = self._open(shard, num_shards)
            if taken:
                ds = ds.skip(taken)
            count = taken
            # ``iter`` (not ``for row in ds``): inside a DataLoader worker ``datasets`` would
            # split the stream across the workers a second time
            texts = (t for batch in ds.iter(batch_size=READ_BATCH) for t in batch[self.text_column])
            for text in texts:
                count += 1
                if not isinstance(text, str) or not text.strip():
                    raise ValueError(
                        f"text source {self.name}: example {count - 1} of shard {shard}/"
                        f"{num_shards} (lap {lap}) is an empty text document"
                    )
                yield StreamPosition(lap, count), text
            if count == 0:
                raise ValueError(
                    f"text source {self.name}: shard {shard} of {num_shards} has no documents "
                    "(fewer examples than loader processes?)"
                )
            lap, taken = lap + 1, 0
