"""The JSONL / txt corpus layout as Arrow: converted once, cached beside the files, atomically.

``train.jsonl`` becomes ``arrow/train.jsonl/`` (columns ``file_id``, ``interleaved``) and
``text_train.txt`` becomes ``arrow/text_train.txt/`` (column ``text``), both ``save_to_disk``
folders that :mod:`.arrow` reads by index. Every record is validated while it is converted (the
same errors, naming ``file:line``, as the JSONL reader). The folder records the size and
modification time of the file it came from, and is rebuilt when they change. It is built under a
temporary name inside ``arrow/`` and renamed into place, holding ``<folder>.lock``, so an
interrupted conversion leaves nothing a rerun could take for a finished one, and processes that
race (DDP ranks) wait for the first one's conversion.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lst_lightning.data.locking import build_folder_once
from lst_lightning.data.records import (
    DEFAULT_NUM_UNITS,
    format_interleaved,
    iter_aligned_jsonl,
    iter_utf8_lines,
)

CACHE_DIR = "arrow"
"""The cache folder inside a corpus folder."""
SOURCE_STAMP = "converted_from.json"
"""Inside each cached folder: the file it was converted from (name, size, mtime_ns, format)."""
FORMAT = 1


def _stamp(source: Path, num_units: int) -> dict:
    st = source.stat()
    return {
        "source": source.name,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "num_units": num_units,
        "format": FORMAT,
    }


def _speech_rows(path: Path, num_units: int) -> Iterator[dict]:
    for u in iter_aligned_jsonl(path, num_units):
        yield {"file_id": u.file_id, "interleaved": format_interleaved(u)}


def _text_rows(path: Path) -> Iterator[dict]:
    for lineno, line in iter_utf8_lines(path):
        doc = line.rstrip("\r\n")
        if not doc.strip():
            raise ValueError(f"{path}:{lineno}: empty text document")
        yield {"text": doc}


def cached_arrow(source: str | Path, num_units: int = DEFAULT_NUM_UNITS) -> Path:
    """The ``save_to_disk`` folder of ``source`` (an aligned-unit ``.jsonl`` or a text ``.txt``,
    one document a line), converted now if it is missing or older than the file."""
    import datasets

    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such corpus file to convert to Arrow")
    target = source.parent / CACHE_DIR / source.name
    wanted = _stamp(source, num_units)

    def fresh() -> bool:
        stamp = target / SOURCE_STAMP
        return stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == wanted

    def convert(out: Path) -> None:
        speech = source.suffix == ".jsonl"
        if speech:
            features = datasets.Features(
                {"file_id": datasets.Value("string"), "interleaved": datasets.Value("string")}
            )
            gen, kwargs = _speech_rows, {"path": source, "num_units": num_units}
        else:
            features = datasets.Features({"text": datasets.Value("string")})
            gen, kwargs = _text_rows, {"path": source}
        print(f"converting {source} to Arrow in {target} (once; data.corpus.reader arrow)")
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        scratch = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=target.parent))
        try:
            try:
                ds = datasets.Dataset.from_generator(
                    gen, features=features, gen_kwargs=kwargs, cache_dir=str(scratch)
                )
            except datasets.exceptions.DatasetGenerationError as e:
                if isinstance(e.__cause__, ValueError):  # a bad record: its message names it
                    raise e.__cause__ from None
                raise
            ds.save_to_disk(str(out))
            del ds
            (out / SOURCE_STAMP).write_text(json.dumps(wanted) + "\n", encoding="utf-8")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if bars:
                datasets.enable_progress_bars()

    build_folder_once(target, fresh, convert)
    return target
