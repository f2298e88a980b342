"""One id space for text, special tokens and speech units (DESIGN section 1).

Layout: text BPE ids ``[0, V_text)``, then 8 specials (``PAD, BOS, EOS, <t>, <s>`` and 3 reserved),
then the speech tokens: unit ``u`` at ``unit_offset + u``, or, for the BPE SpeechLLM baseline, the
pieces of a unit BPE (a SentencePiece model over unit strings, paper: 1k pieces) at
``unit_offset + piece``. One embedding table and one softmax cover all of it. A document is
``BOS (<t> bpe... | <s> speech...)* EOS``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch

from lst_lightning.data.records import DEFAULT_NUM_UNITS, write_bytes_atomic

NUM_SPECIALS = 8
"""PAD, BOS, EOS, <t>, <s>, and 3 ids reserved so later specials do not shift the unit ids."""

_META_PIECES = 257
"""``<unk>`` plus the 256 byte-fallback pieces that every tokenizer trained here contains."""

_WORD_BOUNDARY = "\u2581"
"""SentencePiece's whitespace marker; a literal one in the text is encoded as its UTF-8 bytes."""

UNIT_CHAR_BASE = 0x4E00
"""Unit ``u`` is the character ``chr(UNIT_CHAR_BASE + u)`` for the unit BPE. The CJK block is one
Unicode script with no whitespace or normalisation, so SentencePiece merges across any units."""
MAX_BPE_UNITS = 0x9FFF - UNIT_CHAR_BASE + 1
DEFAULT_UNIT_BPE_SIZE = 1000
"""Pieces of the BPE SpeechLLM's unit tokenizer (paper: 1k)."""


@dataclass(frozen=True)
class TextSpan:
    """A run of text inside a document (encoded after a ``<t>``)."""

    text: str


@dataclass(frozen=True)
class SpeechSpan:
    """A run of speech units inside a document (encoded after an ``<s>``)."""

    units: tuple[int, ...]


Span = TextSpan | SpeechSpan
IdsLike = int | np.integer | np.ndarray | torch.Tensor


def train_text_tokenizer(texts: Iterable[str], model_path: str | Path, vocab_size: int) -> Path:
    """Train a SentencePiece BPE model that round-trips any text exactly; write it atomically.

    Identity normalisation, no dummy prefix and kept whitespace make ``decode(encode(x)) == x``;
    byte fallback covers characters never seen in training. ``vocab_size`` is an upper bound (BPE
    stops early when the text has no more merges) and must leave room for the 257 meta pieces
    plus every distinct character of the training text. One thread keeps the result deterministic.
    """
    texts = list(texts)
    chars = {c for t in texts for c in t.replace(" ", _WORD_BOUNDARY)}
    minimum = _META_PIECES + len(chars)
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the tokenizer needs 257 byte/unk pieces plus "
            f"the {len(chars)} distinct characters of the training text, so at least {minimum}"
        )
    if not any(t.strip() for t in texts):
        raise ValueError("cannot train a text tokenizer on empty text")
    return _train_bpe(
        texts,
        model_path,
        vocab_size,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        byte_fallback=True,
        max_sentence_length=1 << 20,
    )


def units_to_chars(units: Iterable[int]) -> str:
    """A unit sequence as the character string the unit BPE is trained on and encodes."""
    return "".join(chr(UNIT_CHAR_BASE + int(u)) for u in units)


def train_unit_bpe(
    unit_sequences: Iterable[Sequence[int]],
    model_path: str | Path,
    vocab_size: int = DEFAULT_UNIT_BPE_SIZE,
    num_units: int = DEFAULT_NUM_UNITS,
) -> Path:
    """Train the BPE SpeechLLM's unit tokenizer on unit sequences; write it atomically.

    Every unit of the codebook is also given as a one-unit sentence (it adds the unit to the
    alphabet but no pair to merge), so any unit sequence encodes without ``<unk>`` even when the
    corpus never used that unit; the rest of ``vocab_size`` (an upper bound) goes to merges. Sequences are not split anywhere else (no whitespace), and pieces hold
    at most 16 units (SentencePiece's default). One thread keeps the result deterministic.
    """
    if not 1 <= num_units <= MAX_BPE_UNITS:
        raise ValueError(
            f"the unit BPE handles 1..{MAX_BPE_UNITS} units, got num_units={num_units}"
        )
    if vocab_size < num_units + 1:
        raise ValueError(
            f"unit BPE vocab_size={vocab_size} must hold <unk> and all {num_units} units"
        )
    sentences = [units_to_chars(s) for s in unit_sequences if len(s)]
    if not sentences:
        raise ValueError("cannot train a unit BPE without any unit sequence")
    sentences += [units_to_chars([u]) for u in range(num_units)]
    longest = max(len(s) for s in sentences)
    return _train_bpe(sentences, model_path, vocab_size, max_sentence_length=max(4192, 4 * longest))


def _train_bpe(sentences: list[str], model_path: str | Path, vocab_size: int, **options) -> Path:
    """A sentencepiece BPE with the settings both tokenizers share (identity normalisation, no
    dummy prefix, no BOS/EOS/PAD, unk 0, one thread for determinism), written atomically."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="bpe",
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
        **options,
    )
    model_path = Path(model_path)
    write_bytes_atomic(model_path, model.getvalue())
    return model_path


def _processor(proto: bytes, path: Path | None, what: str) -> spm.SentencePieceProcessor:
    """A SentencePiece processor, or an error naming the file when it holds no valid model
    (instead of sentencepiece's internal parse error)."""
    try:
        if not proto:
            raise RuntimeError("the file is empty")
        return spm.SentencePieceProcessor(model_proto=proto)
    except RuntimeError as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else "unparsable"
        raise ValueError(
            f"{path} is not a SentencePiece model ({len(proto)} bytes; {detail}): the {what} "
            "must be a .model file written by sentencepiece (this kit trains it when it builds "
            "a corpus)"
        ) from None


class TokenSpace:
    """The shared vocabulary: encodes and decodes documents of text and speech spans."""

    def __init__(
        self,
        model_path: str | Path,
        num_units: int = DEFAULT_NUM_UNITS,
        unit_bpe_path: str | Path | None = None,
    ) -> None:
        """``unit_bpe_path``: a unit BPE from :func:`train_unit_bpe`; speech spans are then
        encoded as its pieces instead of one id per unit (the BPE SpeechLLM baseline)."""
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no SentencePiece model at {self.model_path}")
        if num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {num_units}")
        self.num_units = num_units
        self.unit_bpe_path = Path(unit_bpe_path) if unit_bpe_path is not None else None
        if self.unit_bpe_path is not None and not self.unit_bpe_path.is_file():
            raise FileNotFoundError(f"no unit BPE model at {self.unit_bpe_path}")
        unit_proto = self.unit_bpe_path.read_bytes() if self.unit_bpe_path else None
        self._load(self.model_path.read_bytes(), unit_proto)

    @classmethod
    def from_bytes(
        cls,
        proto: bytes,
        num_units: int = DEFAULT_NUM_UNITS,
        unit_proto: bytes | None = None,
        name: str = "<embedded tokenizer>",
    ) -> TokenSpace:
        """A token space from the tokenizers' serialised models (as a checkpoint or an exported
        folder carries them), without files; ``name`` stands in for the path in messages."""
        if num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {num_units}")
        space = cls.__new__(cls)
        space.model_path = Path(name)
        space.num_units = num_units
        space.unit_bpe_path = Path(f"{name} (unit BPE)") if unit_proto is not None else None
        space._load(bytes(proto), bytes(unit_proto) if unit_proto is not None else None)
        return space

    @property
    def model_bytes(self) -> tuple[bytes, bytes | None]:
        """The serialised text tokenizer and unit BPE (``None`` without one), for
        :meth:`from_bytes`."""
        return self._proto, self._unit_proto

    def layout(self) -> dict[str, int | str]:
        """The id layout as plain numbers: what a checkpoint records so that a rebuilt space can
        be checked against the one the model was trained on."""
        return {
            "text_vocab_size": self.text_vocab_size,
            "num_specials": NUM_SPECIALS,
            "pad_id": self.pad_id,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "text_id": self.text_id,
            "speech_id": self.speech_id,
            "unit_offset": self.unit_offset,
            "num_units": self.num_units,
            "num_speech_tokens": self.num_speech_tokens,
            "speech_tokenizer": self.speech_tokenizer,
            "vocab_size": self.vocab_size,
        }

    def _load(self, proto: bytes, unit_proto: bytes | None = None) -> None:
        self._proto = proto
        self._sp = _processor(proto, self.model_path, "text tokenizer")
        self.text_vocab_size = self._sp.get_piece_size()
        self._escape = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in _WORD_BOUNDARY.encode()]
        if any(self._sp.is_unknown(i) for i in self._escape):
            raise ValueError(
                f"{self.model_path} has no byte-fallback pieces; train it with this kit"
            )
        self._unit_proto = unit_proto
        self._unit_sp: spm.SentencePieceProcessor | None = None
        if unit_proto is None:
            self.num_speech_tokens = self.num_units
            self._piece_units: list[tuple[int, ...]] = []
            self._frames = np.ones(self.num_units, dtype=np.int64)
            return
        self._unit_sp = _processor(unit_proto, self.unit_bpe_path, "unit BPE")
        self.num_speech_tokens = self._unit_sp.get_piece_size()
        self._piece_units = []
        for i in range(self.num_speech_tokens):
            piece = self._unit_sp.id_to_piece(i)
            units = tuple(ord(c) - UNIT_CHAR_BASE for c in piece)
            normal = not (self._unit_sp.is_unknown(i) or self._unit_sp.is_control(i))
            if normal and not all(0 <= u < self.num_units for u in units):
                raise ValueError(
                    f"{self.unit_bpe_path}: piece {i} holds units outside [0, {self.num_units}); "
                    "train it with train_unit_bpe and the same num_units"
                )
            self._piece_units.append(units if normal else ())
        missing = [
            u
            for u in range(self.num_units)
            if self._unit_sp.is_unknown(self._unit_sp.piece_to_id(units_to_chars([u])))
        ]
        if missing:
            raise ValueError(
                f"{self.unit_bpe_path}: units {missing[:5]}... have no piece; train it with "
                "train_unit_bpe and the same num_units"
            )
        self._frames = np.array([len(p) for p in self._piece_units], dtype=np.int64)

    def __getstate__(self) -> dict:
        # SentencePiece processors are rebuilt from the model bytes, so DataLoader workers can
        # receive a TokenSpace without reading the file again.
        return {
            "model_path": self.model_path,
            "num_units": self.num_units,
            "unit_bpe_path": self.unit_bpe_path,
            "proto": self._proto,
            "unit_proto": self._unit_proto,
        }

    def __setstate__(self, state: dict) -> None:
        self.model_path = state["model_path"]
        self.num_units = state["num_units"]
        self.unit_bpe_path = state["unit_bpe_path"]
        self._load(state["proto"], state["unit_proto"])

    @property
    def speech_tokenizer(self) -> str:
        """``"units"`` (one id per unit frame) or ``"bpe"`` (unit-BPE pieces)."""
        return "units" if self._unit_sp is None else "bpe"

    # -- the id layout ------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self.text_vocab_size

    @property
    def bos_id(self) -> int:
        return self.text_vocab_size + 1

    @property
    def eos_id(self) -> int:
        return self.text_vocab_size + 2

    @property
    def text_id(self) -> int:
        """``<t>``: opens a text span."""
        return self.text_vocab_size + 3

    @property
    def speech_id(self) -> int:
        """``<s>``: opens a speech span."""
        return self.text_vocab_size + 4

    @property
    def unit_offset(self) -> int:
        return self.text_vocab_size + NUM_SPECIALS

    @property
    def vocab_size(self) -> int:
        """Size of the one embedding table / softmax: text + specials + speech tokens."""
        return self.unit_offset + self.num_speech_tokens

    def is_unit(self, ids: IdsLike) -> bool | np.ndarray | torch.Tensor:
        """True where ``ids`` (an int, a numpy array or a tensor) is a speech token id: a unit,
        or a unit-BPE piece when the space has a unit BPE."""
        if isinstance(ids, int | np.integer):
            return self.unit_offset <= ids < self.vocab_size
        return (ids >= self.unit_offset) & (ids < self.vocab_size)

    def is_text(self, ids: IdsLike) -> bool | np.ndarray | torch.Tensor:
        """True where ``ids`` is a text BPE id."""
        if isinstance(ids, int | np.integer):
            return 0 <= ids < self.text_vocab_size
        return (ids >= 0) & (ids < self.text_vocab_size)

    def speech_frames(self, ids: np.ndarray) -> np.ndarray:
        """Unit frames (25 Hz) each id stands for: 1 per unit, the piece's unit count for a
        unit-BPE piece, 0 for text and specials. Speech duration statistics sum these."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(ids.shape, dtype=np.int64)
        speech = (ids >= self.unit_offset) & (ids < self.vocab_size)
        out[speech] = self._frames[ids[speech] - self.unit_offset]
        return out

    def encode_units(self, units: Sequence[int]) -> list[int]:
        """Speech token ids of a unit sequence (without the ``<s>``)."""
        for u in units:
            if not 0 <= u < self.num_units:
                raise ValueError(f"speech unit {u} is out of range [0, {self.num_units})")
        if self._unit_sp is None:
            return [self.unit_offset + int(u) for u in units]
        if not len(units):
            return []
        return [self.unit_offset + i for i in self._unit_sp.encode(units_to_chars(units))]

    def decode_units(self, ids: Sequence[int]) -> tuple[int, ...]:
        """Invert :meth:`encode_units`."""
        if self._unit_sp is None:
            return tuple(int(i) - self.unit_offset for i in ids)
        units: list[int] = []
        for i in ids:
            piece = self._piece_units[int(i) - self.unit_offset]
            if not piece:
                raise ValueError(f"speech id {i} is the unit BPE's <unk>/control piece")
            units.extend(piece)
        return tuple(units)

    # -- text ---------------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        """BPE ids of ``text``; a literal ``\u2581`` goes through its byte pieces so it survives."""
        pieces = text.split(_WORD_BOUNDARY)
        ids: list[int] = []
        for i, piece in enumerate(pieces):
            if i:
                ids.extend(self._escape)
            if piece:
                ids.extend(self._sp.encode(piece))
        return ids

    def decode_text(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids])

    def text_piece_sizes(self, text: str) -> list[int]:
        """The UTF-8 size of each BPE piece of ``text`` (a byte-fallback piece counts 1), in
        order: how BPE-aligned patching shares a word's frames between its pieces."""
        sizes = []
        for i in self.encode_text(text):
            sizes.append(1 if self._sp.is_byte(i) else len(self._sp.id_to_piece(i).encode()))
        return sizes

    # -- documents ----------------------------------------------------------------------------
    def encode_document(self, spans: Iterable[Span]) -> list[int]:
        """``BOS (<t> bpe... | <s> speech...)* EOS``."""
        ids = [self.bos_id]
        for span in spans:
            if isinstance(span, TextSpan):
                ids.append(self.text_id)
                ids.extend(self.encode_text(span.text))
            elif isinstance(span, SpeechSpan):
                ids.append(self.speech_id)
                ids.extend(self.encode_units(span.units))
            else:
                raise TypeError(f"a document holds TextSpan/SpeechSpan, got {type(span).__name__}")
        ids.append(self.eos_id)
        return ids

    def decode_document(self, ids: Sequence[int]) -> list[Span]:
        """Invert :meth:`encode_document`; raise ``ValueError`` at the first malformed id."""
        ids = [int(i) for i in ids]
        if len(ids) < 2 or ids[0] != self.bos_id or ids[-1] != self.eos_id:
            raise ValueError("a document must start with BOS and end with EOS")
        spans: list[Span] = []
        mode: int | None = None
        run: list[int] = []

        def close() -> None:
            if mode == self.text_id:
                spans.append(TextSpan(self.decode_text(run)))
            elif mode == self.speech_id:
                spans.append(SpeechSpan(self.decode_units(run)))

        for pos, i in enumerate(ids[1:-1], start=1):
            if i in (self.text_id, self.speech_id):
                close()
                mode, run = i, []
            elif mode is None:
                raise ValueError(f"id {i} at position {pos} comes before any <t>/<s>")
            elif mode == self.text_id and self.is_text(i):
                run.append(i)
            elif mode == self.speech_id and self.is_unit(i):
                run.append(i)
            else:
                kind = "text" if mode == self.text_id else "speech"
                raise ValueError(f"id {i} at position {pos} is not allowed in a {kind} span")
        close()
        return spans
