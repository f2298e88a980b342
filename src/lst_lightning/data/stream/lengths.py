"""Length profiles: what the epoch plan needs to know of each utterance, without reading it.

The mixture walk (:func:`lst_lightning.data.stream.dataset.select_mixture`) needs, every epoch,
the baseline-unit length of each utterance's interleaved document, which depends on that epoch's
random interleaving. Computing it from the record means parsing the utterance (the ``interleaved``
string of every row of a memory-mapped source) and BPE-encoding its text spans: at 100x the
embedded corpus that was 111 s per epoch in the main process, and it pulled every page of the
Arrow files into memory. A profile keeps, per word (``[SIL]`` gaps included), only

- its unit frames,
- its BPE token count as the first word of a text span (``len(encode(w))``) and after another word
  (``len(encode(" " + w))``; ``-1`` for a silence),

and per utterance its total frames. Text spans of the kit's tokenizers add up word by word
(SentencePiece splits at whitespace, and without a dummy prefix the joining space goes with the
next word), so an interleaved length is a sum over the epoch's layout
(:func:`~lst_lightning.data.stream.documents.interleaving_layout`, the same random draws as the
document builder). Each utterance is checked when its profile is built (its whole transcript must
encode to the sum of its words); one that does not add up is marked and measured from its record.

A profile of a memory-mapped source is built once, in one pass, and saved as ``.npy`` files in a
cache folder keyed by the dataset's fingerprint and the tokenizer (temporary folder + rename,
under a lock, so concurrent ranks build it once); later runs and loader workers map the files,
which the operating system shares between processes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lst_lightning.data.locking import build_folder_once
from lst_lightning.data.records import AlignedUtterance
from lst_lightning.data.sources import mapped
from lst_lightning.data.stream.documents import interleaving_layout, speech_span_edges
from lst_lightning.data.vocab import TokenSpace

FORMAT = 1
"""Bumped when the files of a cached profile change meaning."""
ARRAYS = ("offsets", "words", "frames", "additive")
"""The files of a profile folder (``<name>.npy``)."""
SILENCE_TOKENS = -1
"""The token counts of a ``[SIL]`` gap (it is never text)."""


class UtteranceLengths:
    """The length profile of a sequence of utterances (module docstring).

    ``offsets[u]..offsets[u + 1]`` index utterance ``u``'s rows of ``words`` (``int32``: frames,
    tokens first, tokens after); ``frames[u]`` is its frame count; ``additive[u]`` says whether its
    text spans' lengths are sums of its words'."""

    def __init__(
        self,
        offsets: np.ndarray,
        words: np.ndarray,
        frames: np.ndarray,
        additive: np.ndarray,
        folder: Path | None = None,
    ) -> None:
        self.offsets, self.words, self.frames, self.additive = offsets, words, frames, additive
        self.folder = folder

    def __len__(self) -> int:
        return len(self.frames)

    def num_frames(self, utterance: int) -> int:
        return int(self.frames[utterance])

    def interleaved_length(self, utterance: int, rng: np.random.Generator) -> int | None:
        """Baseline units of the utterance's interleaved document under the layout ``rng`` draws
        (``BOS``, ``<t>`` + BPE or ``<s>`` + frames per span, ``EOS``); ``None`` when its text does
        not add up word by word (measure it from the record)."""
        if not self.additive[utterance]:
            return None
        rows = self.words[self.offsets[utterance] : self.offsets[utterance + 1]].tolist()
        silence = [r[1] == SILENCE_TOKENS for r in rows]
        n = 2
        for modality, first, last in interleaving_layout(silence, rng):
            if modality == "text":
                spoken = [r for r in rows[first : last + 1] if r[1] != SILENCE_TOKENS]
                n += 1 + spoken[0][1] + sum(r[2] for r in spoken[1:])
                continue
            before, after = speech_span_edges(silence, first, last)
            lead = sum(r[0] for r in rows[before:first])
            trail = sum(r[0] for r in rows[last + 1 : after])
            if before > 0:  # halved at a boundary with a text span (documents._speech_words)
                lead -= lead // 2
            if after < len(rows):
                trail -= trail // 2
            n += 1 + lead + sum(r[0] for r in rows[first : last + 1]) + trail
        return n

    # -- pickling: a cached profile travels as its folder (a spawned worker maps the files) ----
    def __getstate__(self) -> dict:
        if self.folder is not None:
            return {"folder": str(self.folder)}
        return {name: getattr(self, name) for name in ARRAYS}

    def __setstate__(self, state: dict) -> None:
        if "folder" in state:
            loaded = load_profile(Path(state["folder"]))
            state = {**{n: getattr(loaded, n) for n in ARRAYS}, "folder": loaded.folder}
        self.__init__(**state)  # type: ignore[misc]


def build_profile(utterances: Sequence[AlignedUtterance], space: TokenSpace) -> UtteranceLengths:
    """One pass over ``utterances`` (each word's counts encoded once per distinct word)."""
    counts: dict[str, tuple[int, int]] = {}

    def word_tokens(text: str) -> tuple[int, int]:
        if text not in counts:
            counts[text] = (len(space.encode_text(text)), len(space.encode_text(" " + text)))
        return counts[text]

    n = len(utterances)
    offsets = np.zeros(n + 1, dtype=np.int64)
    frames = np.zeros(n, dtype=np.int32)
    additive = np.zeros(n, dtype=bool)
    rows: list[tuple[int, int, int]] = []
    for u in range(n):
        utterance = utterances[u]
        spoken_tokens = 0
        spoken: list[str] = []
        for w in utterance.words:
            if w.is_silence:
                rows.append((len(w.units), SILENCE_TOKENS, SILENCE_TOKENS))
                continue
            first, after = word_tokens(w.text)
            rows.append((len(w.units), first, after))
            spoken_tokens += after if spoken else first
            spoken.append(w.text)
        offsets[u + 1] = len(rows)
        frames[u] = utterance.num_frames
        additive[u] = not spoken or len(space.encode_text(" ".join(spoken))) == spoken_tokens
    words = np.asarray(rows, dtype=np.int32).reshape(-1, 3)
    return UtteranceLengths(offsets, words, frames, additive)


def profile_key(source: dict, space: TokenSpace) -> str:
    """The cache folder name of a source's profile: a digest of what the profile depends on (the
    source's identity and fingerprint, the text tokenizer, the format)."""
    text_model, _ = space.model_bytes
    payload = json.dumps(
        {
            "source": source,
            "tokenizer": hashlib.sha1(text_model).hexdigest(),
            "format": FORMAT,
        },
        sort_keys=True,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:20]


def load_profile(folder: Path) -> UtteranceLengths:
    """A cached profile, its arrays memory-mapped read-only."""
    return UtteranceLengths(**load_arrays(folder, ARRAYS), folder=folder)


def load_arrays(folder: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays saved by :func:`cached_arrays`, memory-mapped read-only (plain ndarray views: indexing
    a ``np.memmap`` costs several times more, and the plan indexes once per document)."""
    arrays = {}
    for name in names:
        loaded = np.load(folder / f"{name}.npy", mmap_mode="r")
        if getattr(loaded, "_mmap", None) is not None:
            mapped.register(loaded._mmap)  # released with the corpus pages (sources.mapped)
        arrays[name] = np.asarray(loaded)
    return arrays


def cached_arrays(
    cache_dir: Path, source: dict, space: TokenSpace, what: str, build: Callable[[], dict]
) -> Path:
    """The folder under ``cache_dir`` holding the arrays ``build`` returns for ``source``
    (``what`` names them in the key and the message), built there first if missing: in a
    temporary folder renamed into place, under a lock, so concurrent ranks build it once and an
    interrupted build leaves nothing that passes for a finished one."""
    folder = Path(cache_dir) / profile_key({**source, "what": what}, space)

    def fill(work: Path) -> None:
        name = source.get("name", source.get("path"))
        print(f"measuring the {what} of {name} for the epoch plan (once): {folder}")
        for array, values in build().items():
            np.save(work / f"{array}.npy", values)
        (work / "source.json").write_text(json.dumps(source, sort_keys=True) + "\n")

    return build_folder_once(folder, (folder / "source.json").is_file, fill)


def _check_rows(folder: Path, found: int, wanted: int, source: dict) -> None:
    if found != wanted:
        raise ValueError(
            f"{folder}: the cached lengths cover {found} rows but {source.get('path')} has "
            f"{wanted}: the dataset changed without a new fingerprint; delete the folder to "
            "rebuild it"
        )


def cached_profile(
    utterances: Sequence[AlignedUtterance], space: TokenSpace, cache_dir: Path, source: dict
) -> UtteranceLengths:
    """The profile of ``utterances`` from ``cache_dir`` (built there first if missing).

    ``source`` identifies the utterances (path, split, columns, row count, the dataset's
    fingerprint and files); a folder whose row count differs is an error naming it."""

    def build() -> dict:
        profile = build_profile(utterances, space)
        return {name: getattr(profile, name) for name in ARRAYS}

    folder = cached_arrays(cache_dir, source, space, "utterances", build)
    profile = load_profile(folder)
    _check_rows(folder, len(profile), len(utterances), source)
    return profile


def text_lengths(texts: Sequence[str], space: TokenSpace) -> np.ndarray:
    """Baseline units of each text document: BOS, ``<t>``, BPE, EOS."""
    out = np.empty(len(texts), dtype=np.int32)
    for i in range(len(texts)):
        out[i] = 3 + len(space.encode_text(texts[i]))
    return out


def cached_text_lengths(
    texts: Sequence[str], space: TokenSpace, cache_dir: Path, source: dict
) -> np.ndarray:
    """:func:`text_lengths` of a memory-mapped text source, from ``cache_dir`` (one pass over
    the source the first time), memory-mapped."""
    folder = cached_arrays(
        cache_dir, source, space, "text documents", lambda: {"lengths": text_lengths(texts, space)}
    )
    lengths = load_arrays(folder, ["lengths"])["lengths"]
    _check_rows(folder, len(lengths), len(texts), source)
    return lengths
