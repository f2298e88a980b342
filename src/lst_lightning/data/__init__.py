"""The data pipeline (no Lightning here): audio -> units + alignments -> records -> documents ->
patches -> packed rows.

- :mod:`audio`, :mod:`units` (+ :mod:`kmeans`), :mod:`align`: 16 kHz audio, 25 Hz speech units
  (offline log-mel or HuBERT k-means), word alignments (engine timings, CTC, files).
- :mod:`ingest`, :mod:`stages`: resumable stages from HF datasets or folders to aligned JSONL.
- :mod:`tts`, :mod:`textsource`, :mod:`embedded`: the embedded corpus (Austen read by espeak-ng).
- :mod:`synthetic`, :mod:`build`: the small generated corpus.
- :mod:`records`: the paper's aligned-unit JSON-lines format.
- :mod:`vocab`: one id space for text BPE, specials and speech units (or unit-BPE pieces).
- :mod:`documents`: text-only, speech-only and interleaved training documents.
- :mod:`patching`: patch lengths (static, aligned and its variants, mixed, curriculum).
- :mod:`packing`: rows of documents and the collate into :class:`~.batch.PackedBatch`.
- :mod:`dataset`: an iterable dataset re-mixed every epoch.
"""

from lst_lightning.data.batch import IGNORE_INDEX, PAD_DOC, PackedBatch
from lst_lightning.data.dataset import Corpus, PackedDocumentDataset, load_corpus
from lst_lightning.data.documents import (
    EncodedDocument,
    SpeechRun,
    interleaved_document,
    speech_document,
    text_document,
)
from lst_lightning.data.packing import PackedRow, RowPacker, collate, pack_documents
from lst_lightning.data.patching import static_patch_lengths, token_patch_lengths
from lst_lightning.data.records import (
    AlignedUtterance,
    AlignedWord,
    read_aligned_jsonl,
    write_aligned_jsonl,
)
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
