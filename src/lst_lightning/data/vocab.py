"""One id space for text, special tokens and speech units (DESIGN section 1).

Layout: text BPE ids ``[0, V_text)``, then 8 specials (``PAD, BOS, EOS, <t>, <s>`` and 3 reserved),
then speech unit ``u`` at ``unit_offset + u``. One embedding table and one softmax cover all of it.
A document is ``BOS (<t> bpe... | <s> units...)* EOS``.
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
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="bpe",
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_digits=True,
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        max_sentence_length=1 << 20,
        num_threads=1,
        minloglevel=2,
    )
    model_path = Path(model_path)
    write_bytes_atomic(model_path, model.getvalue())
    return model_path


class TokenSpace:
    """The shared vocabulary: encodes and decodes documents of text and speech spans."""

    def __init__(self, model_path: str | Path, num_units: int = DEFAULT_NUM_UNITS) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no SentencePiece model at {self.model_path}")
        if num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {num_units}")
        self.num_units = num_units
        self._load(self.model_path.read_bytes())

    def _load(self, proto: bytes) -> None:
        self._proto = proto
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self.text_vocab_size = self._sp.get_piece_size()
        self._escape = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in _WORD_BOUNDARY.encode()]
        if any(self._sp.is_unknown(i) for i in self._escape):
            raise ValueError(
                f"{self.model_path} has no byte-fallback pieces; train it with this kit"
            )

    def __getstate__(self) -> dict:
        # SentencePiece processors are rebuilt from the model bytes, so DataLoader workers can
        # receive a TokenSpace without reading the file again.
        return {"model_path": self.model_path, "num_units": self.num_units, "proto": self._proto}

    def __setstate__(self, state: dict) -> None:
        self.model_path = state["model_path"]
        self.num_units = state["num_units"]
        self._load(state["proto"])

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
        """Size of the one embedding table / softmax: text + specials + units."""
        return self.unit_offset + self.num_units

    def is_unit(self, ids: IdsLike) -> bool | np.ndarray | torch.Tensor:
        """True where ``ids`` (an int, a numpy array or a tensor) is a speech unit id."""
        if isinstance(ids, int | np.integer):
            return self.unit_offset <= ids < self.vocab_size
        return (ids >= self.unit_offset) & (ids < self.vocab_size)

    def is_text(self, ids: IdsLike) -> bool | np.ndarray | torch.Tensor:
        """True where ``ids`` is a text BPE id."""
        if isinstance(ids, int | np.integer):
            return 0 <= ids < self.text_vocab_size
        return (ids >= 0) & (ids < self.text_vocab_size)

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

    # -- documents ----------------------------------------------------------------------------
    def encode_document(self, spans: Iterable[Span]) -> list[int]:
        """``BOS (<t> bpe... | <s> units...)* EOS``."""
        ids = [self.bos_id]
        for span in spans:
            if isinstance(span, TextSpan):
                ids.append(self.text_id)
                ids.extend(self.encode_text(span.text))
            elif isinstance(span, SpeechSpan):
                ids.append(self.speech_id)
                for u in span.units:
                    if not 0 <= u < self.num_units:
                        raise ValueError(f"speech unit {u} is out of range [0, {self.num_units})")
                    ids.append(self.unit_offset + u)
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
                spans.append(SpeechSpan(tuple(i - self.unit_offset for i in run)))

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
