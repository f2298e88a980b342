"""The data pipeline (no Lightning here), in the order data flows:

- :mod:`.speech`: audio -> 25 Hz units -> word alignments -> aligned records (resumable stages).
- :mod:`.corpora`: the embedded (Austen read by espeak-ng) and generated corpora.
- :mod:`.records`: the paper's aligned-unit JSON-lines format, shared by every stage.
- :mod:`.vocab`: one id space for text BPE, specials and speech units (or unit-BPE pieces).
- :mod:`.stream`: documents -> patches -> packed rows -> batches, re-mixed every epoch.

Imports flow one way: ``records``/``vocab`` <- ``speech`` <- ``corpora``, and ``records``/``vocab``
<- ``stream``; nothing here imports Lightning or the Lightning layer.
"""

from lst_lightning.data.records import (
    AlignedUtterance,
    AlignedWord,
    read_aligned_jsonl,
    write_aligned_jsonl,
)
from lst_lightning.data.stream.batch import IGNORE_INDEX, PAD_DOC, PackedBatch
from lst_lightning.data.stream.dataset import Corpus, PackedDocumentDataset, load_corpus
from lst_lightning.data.stream.documents import (
    EncodedDocument,
    SpeechRun,
    interleaved_document,
    speech_document,
    text_document,
)
from lst_lightning.data.stream.packing import PackedRow, RowPacker, collate, pack_documents
from lst_lightning.data.stream.patching import static_patch_lengths, token_patch_lengths
from lst_lightning.data.vocab import SpeechSpan, TextSpan, TokenSpace, train_text_tokenizer

__all__ = [
    "IGNORE_INDEX",
    "PAD_DOC",
    "AlignedUtterance",
    "AlignedWord",
    "Corpus",
    "EncodedDocument",
    "PackedBatch",
    "PackedDocumentDataset",
    "PackedRow",
    "RowPacker",
    "SpeechRun",
    "SpeechSpan",
    "TextSpan",
    "TokenSpace",
    "collate",
    "interleaved_document",
    "load_corpus",
    "pack_documents",
    "read_aligned_jsonl",
    "speech_document",
    "static_patch_lengths",
    "text_document",
    "token_patch_lengths",
    "train_text_tokenizer",
    "write_aligned_jsonl",
]
