"""The aligned-unit JSON-lines format released with the LST paper's code.

One JSON object per line: ``{"file_id": ..., "interleaved": ...}``. ``interleaved`` is a string of
segments, each starting with ``<LST MODE SEP>``: a ``TEXT <word>`` segment (``[SIL]`` for the gap
between words) always followed by a ``HUBERT <unit> <unit> ...`` segment with that word's 25 Hz unit
frames (possibly none). Segments are joined by single spaces, so the reader and the writer here are
exact inverses and a file in the canonical form round-trips byte for byte.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SEP = "<LST MODE SEP>"
TEXT_TAG = "TEXT "
UNITS_TAG = "HUBERT "
SILENCE = "[SIL]"
DEFAULT_NUM_UNITS = 501
"""HuBERT k-means codebook size used by the paper (units are ``0..500``)."""


@dataclass(frozen=True)
class AlignedWord:
    """One word (or ``[SIL]`` gap) and the unit frames the aligner gave it."""

    text: str
    units: tuple[int, ...]

    @property
    def is_silence(self) -> bool:
        return self.text == SILENCE


@dataclass(frozen=True)
class AlignedUtterance:
    """An utterance as an ordered sequence of aligned words and silences."""

    file_id: str
    words: tuple[AlignedWord, ...]

    @property
    def spoken_words(self) -> tuple[AlignedWord, ...]:
        """The words that carry text (everything except ``[SIL]``)."""
        return tuple(w for w in self.words if not w.is_silence)

    @property
    def transcript(self) -> str:
        """The spoken words joined by single spaces; silences carry no text."""
        return " ".join(w.text for w in self.spoken_words)

    @property
    def units(self) -> tuple[int, ...]:
        """All unit frames of the utterance, silences included, in order."""
        return tuple(u for w in self.words for u in w.units)

    @property
    def num_frames(self) -> int:
        return sum(len(w.units) for w in self.words)


def format_interleaved(utterance: AlignedUtterance) -> str:
    """The ``interleaved`` string of one utterance, in the paper's exact serialisation."""
    parts: list[str] = []
    for word in utterance.words:
        parts.append(SEP + TEXT_TAG + word.text)
        parts.append(SEP + UNITS_TAG + " ".join(str(u) for u in word.units))
    return " ".join(parts)


def format_record(utterance: AlignedUtterance) -> str:
    """One JSON line (without the newline)."""
    return json.dumps({"file_id": utterance.file_id, "interleaved": format_interleaved(utterance)})


def parse_interleaved(
    interleaved: str, file_id: str, num_units: int = DEFAULT_NUM_UNITS
) -> AlignedUtterance:
    """Parse an ``interleaved`` string; raise ``ValueError`` saying which segment is wrong and why."""
    chunks = interleaved.split(SEP)
    if chunks[0] != "":
        raise ValueError(f"text before the first {SEP!r}: {chunks[0][:40]!r}")
    segments = chunks[1:]
    if not segments:
        raise ValueError("no segments")
    if len(segments) % 2:
        raise ValueError(f"{len(segments)} segments: every TEXT segment needs a HUBERT segment")
    words: list[AlignedWord] = []
    for i in range(0, len(segments), 2):
        text_seg = _strip_joiner(segments[i], i, len(segments))
        unit_seg = _strip_joiner(segments[i + 1], i + 1, len(segments))
        if not text_seg.startswith(TEXT_TAG):
            raise ValueError(f"segment {i} should start with {TEXT_TAG!r}: {text_seg[:40]!r}")
        if not unit_seg.startswith(UNITS_TAG):
            raise ValueError(f"segment {i + 1} should start with {UNITS_TAG!r}: {unit_seg[:40]!r}")
        word = text_seg[len(TEXT_TAG) :]
        if not word or word != word.strip():
            raise ValueError(
                f"segment {i}: empty word or word with surrounding whitespace {word!r}"
            )
        words.append(AlignedWord(word, _parse_units(unit_seg[len(UNITS_TAG) :], i + 1, num_units)))
    return AlignedUtterance(file_id, tuple(words))


def _strip_joiner(segment: str, index: int, count: int) -> str:
    """Drop the single space that joins a segment to the next one (the last has none)."""
    if index == count - 1:
        return segment
    if not segment.endswith(" "):
        raise ValueError(f"segment {index} is not followed by a single space: {segment[-40:]!r}")
    return segment[:-1]


def _parse_units(text: str, index: int, num_units: int) -> tuple[int, ...]:
    if text == "":
        return ()
    units = []
    for token in text.split(" "):
        if not token.isascii() or not token.isdigit() or str(int(token)) != token:
            raise ValueError(f"segment {index}: unit {token!r} is not a canonical integer")
        unit = int(token)
        if unit >= num_units:
            raise ValueError(f"segment {index}: unit {unit} is out of range [0, {num_units})")
        units.append(unit)
    return tuple(units)


def iter_utf8_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file; a line that is not UTF-8 raises a
    ``ValueError`` naming ``file:line`` and the offending byte (not a bare UnicodeDecodeError)."""
    path = Path(path)
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                    f"{e.start + 1}); re-encode the file as UTF-8"
                ) from None


def iter_aligned_jsonl(
    path: str | Path, num_units: int = DEFAULT_NUM_UNITS
) -> Iterator[AlignedUtterance]:
    """Yield utterances one at a time; errors name ``file:line`` and the problem."""
    path = Path(path)
    for lineno, line in iter_utf8_lines(path):
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        for key in ("file_id", "interleaved"):
            if key not in obj:
                raise ValueError(f"{where}: missing key {key!r}")
            if not isinstance(obj[key], str):
                raise ValueError(f"{where}: {key!r} must be a string")
        try:
            yield parse_interleaved(obj["interleaved"], obj["file_id"], num_units)
        except ValueError as e:
            raise ValueError(f"{where} ({obj['file_id']}): {e}") from None


def read_aligned_jsonl(
    path: str | Path, num_units: int = DEFAULT_NUM_UNITS
) -> list[AlignedUtterance]:
    """Read and validate a whole aligned-unit JSONL file."""
    return list(iter_aligned_jsonl(path, num_units))


def write_aligned_jsonl(path: str | Path, utterances: Iterable[AlignedUtterance]) -> None:
    """Write utterances in the canonical format, atomically (a reader never sees half a file)."""
    write_text_atomic(path, "".join(format_record(u) + "\n" for u in utterances))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 text through a temporary file in the same folder, then ``os.replace``."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes through a temporary file in the same folder, then ``os.replace``."""
    with atomic_file(path) as f:
        f.write(data)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once it is completely written.

    The bytes go to a temporary file in the same folder (so the final rename never crosses a
    filesystem, where a move would be a copy a full disk can interrupt), are flushed to disk, and
    the file is renamed over ``path`` with ``os.replace``. If anything fails on the way (a full
    disk, an interrupt) the temporary file is removed and the previous ``path``, if any, is
    untouched. The one place the kit writes files atomically: corpora, stage outputs,
    tokenizers and checkpoints all go through it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
