"""Row 7: an empty ``train.jsonl`` / ``text_train.txt``, a garbage ``tokenizer.model`` and a
truncated checkpoint are errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lst_lightning.lit.checkpointing import AtomicCheckpointIO
from lst_lightning.lit.module import load_module


@pytest.mark.parametrize("name", ["train.jsonl", "text_train.txt"])
def test_empty_corpus_file_is_named(corpus_copy: Path, make_datamodule, name: str) -> None:
    (corpus_copy / name).write_bytes(b"")
    dm = make_datamodule(corpus_copy)
    with pytest.raises(ValueError, match=rf"{corpus_copy / name} holds no"):
        dm.setup("fit")


def test_garbage_tokenizer_is_named(corpus_copy: Path, make_datamodule) -> None:
    (corpus_copy / "tokenizer.model").write_bytes(b"this is not a sentencepiece model\n" * 4)
    with pytest.raises(ValueError, match=rf"{corpus_copy / 'tokenizer.model'} is not a Sentence"):
        assert make_datamodule(corpus_copy).vocab_size


def test_truncated_checkpoint_is_named(
    generated_corpus: Path, tmp_path: Path, make_checkpoint
) -> None:
    from lst_lightning.model import LSTConfig, TransformerConfig

    small = TransformerConfig(n_layers=1, d_model=32, n_heads=2)
    net = LSTConfig(encoder=small, global_model=small, decoder=small)
    path = make_checkpoint(tmp_path / "good.ckpt", generated_corpus, net)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for read in (load_module, AtomicCheckpointIO().load_checkpoint):
        with pytest.raises(ValueError, match=rf"{truncated} .* truncated or corrupt"):
            read(str(truncated))
