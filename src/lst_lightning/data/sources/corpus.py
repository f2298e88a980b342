"""One split of the training corpus from ``data.sources`` or from a corpus folder.

- No sources, ``reader: memory``: ``{split}.jsonl`` / ``text_{split}.txt`` parsed into tuples
  (the laptop path, :func:`lst_lightning.data.stream.dataset.load_corpus`).
- No sources, ``reader: arrow``: the same files converted once to Arrow (:mod:`.cache`) and read
  by index.
- Sources: each speech source (and each text source read by index) is a record sequence over its
  dataset; several of a kind are concatenated with their shares; streamed text sources become
  :class:`~.streamed.TextStream` s. Validation reads each source's ``valid`` data; a kind no
  source gives validation data for falls back to the corpus folder's ``valid`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lst_lightning.data.records import DEFAULT_NUM_UNITS
from lst_lightning.data.sources.arrow import SpeechRecords, TextRecords
from lst_lightning.data.sources.cache import cached_arrow
from lst_lightning.data.sources.mixing import Concatenated
from lst_lightning.data.sources.options import SourceOptions
from lst_lightning.data.sources.streamed import TextStream
from lst_lightning.data.stream.dataset import Corpus, load_corpus, read_text_documents


def folder_files(data_dir: str | Path, split: str) -> dict[str, Path]:
    """The corpus folder's files of a split, by kind."""
    data_dir = Path(data_dir)
    return {"speech": data_dir / f"{split}.jsonl", "text": data_dir / f"text_{split}.txt"}


def folder_fallbacks(sources: Sequence[SourceOptions]) -> set[str]:
    """The kinds whose validation data comes from the corpus folder (no source gives any)."""
    return {
        kind
        for kind in ("speech", "text")
        if not any(s.kind == kind and s.valid is not None for s in sources)
    }


def _location(source: SourceOptions, split: str) -> tuple[str, str]:
    """(path, split) of a source's training or validation data."""
    if split == "train":
        return source.path, source.split
    assert source.valid is not None
    if Path(source.valid).exists():
        return source.valid, source.split
    return source.path, source.valid


def open_split(
    data_dir: str | Path,
    split: str,
    sources: Sequence[SourceOptions] = (),
    reader: str = "memory",
    num_units: int = DEFAULT_NUM_UNITS,
) -> Corpus:
    """The utterances and text documents of ``split`` (``train`` or ``valid``)."""
    files = folder_files(data_dir, split)
    if not sources:
        if reader == "memory":
            return load_corpus(data_dir, split, num_units)
        return Corpus(
            SpeechRecords(
                cached_arrow(files["speech"], num_units),
                num_units=num_units,
                name=str(files["speech"]),
            ),
            TextRecords(cached_arrow(files["text"], num_units), name=str(files["text"])),
        )
    chosen = [s for s in sources if split == "train" or s.valid is not None]
    fallback = folder_fallbacks(sources) if split != "train" else set()
    speech: list[Sequence] = []
    texts: list[Sequence] = []
    streams: list[TextStream] = []
    for s in chosen:
        path, part = _location(s, split)
        name = s.label if split == "train" else f"{s.label} ({split})"
        if s.kind == "speech":
            speech.append(
                SpeechRecords(
                    path, part, s.column("file_id"), s.column("interleaved"), num_units, name
                )
            )
        elif s.streaming and split == "train":
            streams.append(TextStream(path, part, s.column("text"), s.label))
        else:
            texts.append(TextRecords(path, part, s.column("text"), name))
    shares = {s.label: s.share for s in chosen}
    if "speech" in fallback:
        speech.append(_folder_speech(files["speech"], reader, num_units))
    if "text" in fallback:
        texts.append(_folder_texts(files["text"], reader, num_units))
    return Corpus(
        _combine(speech, [s.label for s in chosen if s.kind == "speech"], shares),
        _combine(
            texts,
            [
                s.label
                for s in chosen
                if s.kind == "text" and not (s.streaming and split == "train")
            ],
            shares,
        ),
        tuple(streams),
        tuple(shares[t.name] for t in streams),
    )


def _folder_speech(path: Path, reader: str, num_units: int) -> Sequence:
    if reader == "memory":
        from lst_lightning.data.records import read_aligned_jsonl

        return tuple(read_aligned_jsonl(path, num_units))
    return SpeechRecords(cached_arrow(path, num_units), num_units=num_units, name=str(path))


def _folder_texts(path: Path, reader: str, num_units: int) -> Sequence:
    if reader == "memory":
        return tuple(read_text_documents(path))
    return TextRecords(cached_arrow(path, num_units), name=str(path))


def _combine(parts: list[Sequence], names: list[str], shares: dict[str, float]) -> Sequence:
    """No part: empty; one: itself; several: concatenated with their shares (a folder fallback
    has no share of its own: it is only ever alone)."""
    if not parts:
        return ()
    if len(parts) == 1:
        return parts[0]
    return Concatenated(parts, names, [shares[n] for n in names])
