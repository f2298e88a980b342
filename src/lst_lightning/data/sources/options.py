"""One entry of ``data.sources``: a speech or text dataset and its share of its kind's tokens.

::

    data:
      sources:
        - {kind: speech, path: work/ls/aligned}                       # the kit's align stage
        - {kind: text, path: data/books, share: 0.7, columns: {text: body}}
        - {kind: text, path: my_corpus_dir, share: 0.3, streaming: true}

``data.mixture`` still says what share of the tokens is interleaved, speech-only and text-only;
``share`` divides a kind's tokens among its sources (speech sources share the interleaved and
speech-only tokens, text sources the text-only tokens), so the two settings never conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SPEECH_COLUMNS = {"file_id": "file_id", "interleaved": "interleaved"}
"""Default speech columns: an utterance id and its aligned-unit ``interleaved`` string (what the
kit's ``align`` stage writes, and the JSONL format's two keys)."""
TEXT_COLUMNS = {"text": "text"}
"""Default text column: one document per row."""


@dataclass(frozen=True)
class SourceOptions:
    """A Hugging Face dataset the training stream reads (an entry of ``data.sources``)."""

    kind: Literal["speech", "text"]
    """``speech``: aligned utterances (an id and an ``interleaved`` aligned-unit string per row);
    ``text``: one text-only document per row."""
    path: str
    """A ``save_to_disk`` folder (what the kit's stages write; memory-mapped), a local path
    ``load_dataset`` reads (a folder of parquet / json / arrow files, or one file), or a Hub name
    when a Hub is reachable."""
    share: float = 1.0
    """This source's share of its kind's tokens, relative to the other sources of the same kind
    (normalised; baseline units as in ``data.mixture``)."""
    split: str = "train"
    """The split of a ``DatasetDict`` folder or of ``load_dataset``."""
    valid: str | None = None
    """Validation data for this source: a split name of ``path`` or the path of another dataset
    with the same columns. ``None``: none from this source; when no source of a kind names one,
    that kind's validation data is ``corpus.data_dir``'s ``valid.jsonl`` / ``text_valid.txt``."""
    columns: dict[str, str] = field(default_factory=dict)
    """Column names when they differ from the defaults: speech ``{file_id, interleaved}``, text
    ``{text}``."""
    streaming: bool = False
    """Text only: read as an iterable stream (``load_dataset(..., streaming=True)``) instead of by
    index, for corpora that do not fit on the local disk. Each rank and worker reads its own
    shard of the stream in order; its position is checkpointed."""
    name: str | None = None
    """What logs and errors call the source (default: its path)."""

    def __post_init__(self) -> None:
        if self.kind not in ("speech", "text"):
            raise ValueError(f"data.sources[].kind must be speech or text, got {self.kind!r}")
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"data.sources[].path must be a non-empty string, got {self.path!r}")
        if isinstance(self.share, bool) or not isinstance(self.share, int | float):
            raise ValueError(f"data.sources[{self.label}].share must be a number")
        if not self.share > 0:
            raise ValueError(f"data.sources[{self.label}].share must be > 0, got {self.share}")
        defaults = SPEECH_COLUMNS if self.kind == "speech" else TEXT_COLUMNS
        unknown = sorted(set(self.columns) - set(defaults))
        if unknown:
            raise ValueError(
                f"data.sources[{self.label}].columns: no column role {', '.join(unknown)} for a "
                f"{self.kind} source (roles: {', '.join(defaults)})"
            )
        if self.streaming and self.kind != "text":
            raise ValueError(
                f"data.sources[{self.label}]: streaming is for text sources; speech sources are "
                "read by index (save_to_disk / load_dataset folders are memory-mapped)"
            )

    @property
    def label(self) -> str:
        return self.name or self.path

    def column(self, role: str) -> str:
        """The dataset column that plays ``role``."""
        defaults = SPEECH_COLUMNS if self.kind == "speech" else TEXT_COLUMNS
        return self.columns.get(role, defaults[role])


def coerce_sources(value: object) -> tuple[SourceOptions, ...]:
    """``data.sources`` as options: a list of mappings (or of :class:`SourceOptions`)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise TypeError(f"data.sources must be a list of sources, got {value!r}")
    out = []
    known = set(SourceOptions.__dataclass_fields__)
    for i, entry in enumerate(value):
        if isinstance(entry, SourceOptions):
            out.append(entry)
            continue
        if not isinstance(entry, dict):
            raise TypeError(f"data.sources[{i}] must be a mapping, got {entry!r}")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(
                f"data.sources[{i}] has no option {', '.join(unknown)} (it has: "
                f"{', '.join(sorted(known))})"
            )
        for key in ("kind", "path"):
            if key not in entry:
                raise ValueError(f"data.sources[{i}] needs {key!r}")
        out.append(SourceOptions(**entry))
    names = [s.label for s in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"data.sources: {', '.join(repeated)} appear more than once; give each a `name`"
        )
    streamed = {s.streaming for s in out if s.kind == "text"}
    if len(streamed) > 1:
        raise ValueError(
            "data.sources: text sources must be all streamed or all read by index (a mixture of "
            "both is not supported)"
        )
    return tuple(out)
