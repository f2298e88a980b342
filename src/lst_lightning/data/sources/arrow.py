"""Speech and text records read by index from Hugging Face ``datasets`` (memory-mapped Arrow).

A :class:`SpeechRecords` or :class:`TextRecords` behaves as a read-only sequence of
:class:`~lst_lightning.data.records.AlignedUtterance` s or of strings, but holds no record as a
Python object: each ``[i]`` reads one row from the memory-mapped Arrow table and decodes it, so a
process's memory does not grow with the corpus (the operating system pages the table in and out).
That is what lets one loader worker pack from a corpus of any size.

Speech rows hold an utterance in the aligned-unit format of the paper's release (the
``interleaved`` string of :mod:`lst_lightning.data.records`, which is what the kit's ``align``
stage writes) and an id; text rows hold one document. Column names are settings.

Pickling (a DataLoader started with ``spawn``, or Lightning's DDP spawn) sends the dataset's
location, not its rows: the copy reopens the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from lst_lightning.data.records import DEFAULT_NUM_UNITS, AlignedUtterance, parse_interleaved
from lst_lightning.data.sources import mapped

FILE_BUILDERS = {
    ".txt": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
}
"""The ``load_dataset`` builder of a single data file, by suffix (a ``.txt`` is one document a
line, column ``text``)."""


def open_dataset(path: str | Path, split: str = "train", streaming: bool = False) -> Any:
    """A ``save_to_disk`` folder through ``load_from_disk`` (memory-mapped), anything else
    (a local folder of parquet/json/arrow files, a data file, a Hub name) through
    ``load_dataset(path, split=split, streaming=streaming)``.

    A ``DatasetDict`` folder gives its ``split``; a ``save_to_disk`` folder is read as a stream
    when ``streaming`` is set (``to_iterable_dataset``)."""
    import datasets

    folder = Path(path)
    if folder.is_dir() and (
        (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()
    ):
        ds = datasets.load_from_disk(str(folder))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{path}: no split {split!r} (it has {', '.join(ds)})")
            ds = ds[split]
        return ds.to_iterable_dataset() if streaming else ds
    if folder.is_file():  # one data file: the builder its suffix names
        builder = FILE_BUILDERS.get(folder.suffix.lower())
        if builder is None:
            raise ValueError(
                f"{path}: a data file load_dataset cannot read by its suffix (known: "
                f"{', '.join(FILE_BUILDERS)}); pass its folder or a save_to_disk folder"
            )
        return datasets.load_dataset(
            builder, data_files=str(folder), split="train", streaming=streaming
        )
    try:
        return datasets.load_dataset(str(path), split=split, streaming=streaming)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{path}: neither a save_to_disk folder nor something load_dataset can read ({e})"
        ) from None


def _require_columns(ds: Any, columns: Sequence[str], where: str) -> None:
    have = list(ds.column_names or [])
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(
            f"{where}: no column {', '.join(map(repr, missing))} (it has {', '.join(have)}); "
            "name the columns with the source's `columns` option"
        )


HARMLESS_REPLAYS = frozenset({"replace_schema_metadata"})
"""Replayed table operations that leave the rows and columns as the files hold them."""


def _has_replays(table: Any) -> bool:
    """Whether a ``datasets`` table applies transformations (renames, casts, slices) on top of
    its files, which a table read from the files alone would miss."""
    if hasattr(table, "blocks"):  # a ConcatenationTable of memory-mapped blocks
        return any(_has_replays(block) for row in table.blocks for block in row)
    return any(op not in HARMLESS_REPLAYS for op, *_ in getattr(table, "replays", None) or ())


def _mapped_columns(ds: Any, files: Sequence[str], columns: Sequence[str]) -> list | None:
    """The dataset's ``columns`` read from its Arrow files through :func:`mapped.map_file`, so
    that the pages a process reads are released under the budget (:mod:`.mapped`); ``None``
    (use the dataset's own table) for an in-memory dataset or one whose table transforms its
    files."""
    import pyarrow as pa

    if not files or _has_replays(ds.data):
        return None
    tables = []
    for name in files:
        buffer = pa.py_buffer(mapped.map_file(name))
        try:
            tables.append(pa.ipc.open_stream(buffer).read_all())
        except pa.ArrowInvalid:
            tables.append(pa.ipc.open_file(buffer).read_all())
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows != len(ds) or not table.schema.equals(ds.data.schema, check_metadata=False):
        return None
    return [table.column(c) for c in columns]


class _ArrowRows:
    """Shared by the record sequences: one dataset's columns, read by row index."""

    def __init__(self, path: str | Path, split: str, columns: Sequence[str], where: str) -> None:
        self.path, self.split, self.columns, self.where = str(path), split, tuple(columns), where
        self._open()

    def _open(self) -> None:
        ds = open_dataset(self.path, self.split)
        _require_columns(ds, self.columns, self.where)
        self._mapped = False
        self.fingerprint = getattr(ds, "_fingerprint", None)
        self.files = [f["filename"] for f in ds.cache_files]
        if getattr(ds, "_indices", None) is not None:  # a selection: rows are not in table order
            self._dataset, self._arrays = ds, None
        else:
            self._dataset = None
            self._arrays = _mapped_columns(ds, self.files, self.columns)
            self._mapped = self._arrays is not None
            if self._arrays is None:
                self._arrays = [ds.data.column(c) for c in self.columns]
        self._length = len(ds)

    def identity(self) -> dict | None:
        """What the rows are, for caches derived from them: the location, columns, row count,
        fingerprint and the size and modification time of every Arrow file (so that a dataset
        rewritten in place is told apart); ``None`` for an in-memory dataset (nothing on disk)."""
        if not self.files:
            return None
        stats = []
        for name in self.files:
            st = os.stat(name)
            stats.append([os.path.abspath(name), st.st_size, st.st_mtime_ns])
        return {
            "path": os.path.abspath(self.path) if os.path.exists(self.path) else self.path,
            "split": self.split,
            "columns": list(self.columns),
            "rows": self._length,
            "fingerprint": self.fingerprint,
            "files": stats,
        }

    def __len__(self) -> int:
        return self._length

    def row(self, index: int) -> tuple:
        if not -self._length <= index < self._length:
            raise IndexError(f"{self.where}: row {index} of {self._length}")
        index = int(index) % self._length
        if self._arrays is None:
            record = self._dataset[index]
            return tuple(record[c] for c in self.columns)
        if self._mapped:
            mapped.note_read()
        return tuple(a[index].as_py() for a in self._arrays)

    def column(self, name: str) -> Any:
        """One whole column as a pyarrow ChunkedArray (memory-mapped, not copied)."""
        ds = self._dataset if self._dataset is not None else open_dataset(self.path, self.split)
        return ds.data.column(name)

    def __getstate__(self) -> dict:
        return {
            "path": self.path,
            "split": self.split,
            "columns": self.columns,
            "where": self.where,
        }

    def __setstate__(self, state: dict) -> None:
        self.path, self.split = state["path"], state["split"]
        self.columns, self.where = state["columns"], state["where"]
        self._open()


class SpeechRecords(Sequence[AlignedUtterance]):
    """Aligned utterances from a dataset with an id column and an ``interleaved`` string column."""

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        file_id_column: str = "file_id",
        interleaved_column: str = "interleaved",
        num_units: int = DEFAULT_NUM_UNITS,
        name: str | None = None,
    ) -> None:
        self.name = name or str(path)
        self.num_units = num_units
        self._rows = _ArrowRows(
            path, split, (file_id_column, interleaved_column), f"speech source {self.name}"
        )

    def __len__(self) -> int:
        return len(self._rows)

    def identity(self) -> dict | None:
        """The source's identity for derived caches (see ``_ArrowRows.identity``)."""
        found = self._rows.identity()
        return None if found is None else {**found, "num_units": self.num_units, "name": self.name}

    @overload
    def __getitem__(self, index: int) -> AlignedUtterance: ...
    @overload
    def __getitem__(self, index: slice) -> list[AlignedUtterance]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        file_id, interleaved = self._rows.row(index)
        if not isinstance(file_id, str) or not isinstance(interleaved, str):
            raise ValueError(
                f"speech source {self.name} row {index}: the id and interleaved columns must be "
                f"strings, got {type(file_id).__name__} and {type(interleaved).__name__}"
            )
        try:
            return parse_interleaved(interleaved, file_id, self.num_units)
        except ValueError as e:
            raise ValueError(f"speech source {self.name} row {index} ({file_id}): {e}") from None

    def __iter__(self) -> Iterator[AlignedUtterance]:
        for i in range(len(self)):
            yield self[i]

    def duplicate_ids(self, limit: int = 5) -> tuple[int, dict[str, int]]:
        """(number of ids that occur more than once, up to ``limit`` of them with their counts),
        counted in Arrow without building Python objects per row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        counts = pc.value_counts(self._rows.column(self._rows.columns[0]))
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        shown = {v["values"].as_py(): v["counts"].as_py() for v in repeated[:limit]}
        found = len(repeated)
        del counts, repeated
        # the count's hash table is as large as the corpus's ids: hand it back to the system
        # now, or the allocator keeps it, and every loader worker forked later inherits it
        pa.default_memory_pool().release_unused()
        return found, shown


class TextRecords(Sequence[str]):
    """Text-only documents from a dataset's text column; an empty document is an error."""

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        text_column: str = "text",
        name: str | None = None,
    ) -> None:
        self.name = name or str(path)
        self._rows = _ArrowRows(path, split, (text_column,), f"text source {self.name}")

    def __len__(self) -> int:
        return len(self._rows)

    def identity(self) -> dict | None:
        """The source's identity for derived caches (see ``_ArrowRows.identity``)."""
        found = self._rows.identity()
        return None if found is None else {**found, "name": self.name}

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        (text,) = self._rows.row(index)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text source {self.name} row {index}: empty text document")
        return text

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]
