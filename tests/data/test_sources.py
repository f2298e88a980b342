"""Hugging Face dataset sources: the JSONL/txt corpus as cached Arrow, save_to_disk and
load_dataset folders with their own column names, weighted sources, sharding across ranks and
workers without overlap (logged), and streamed text that resumes exactly."""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lst_lightning.data.corpora.synthetic import generate_corpus
from lst_lightning.data.records import iter_aligned_jsonl, parse_interleaved
from lst_lightning.data.sources.arrow import SpeechRecords, TextRecords
from lst_lightning.data.sources.cache import SOURCE_STAMP, cached_arrow
from lst_lightning.data.sources.options import coerce_sources
from lst_lightning.data.stream.dataset import TEXT
from lst_lightning.lit.datamodule import SpeechTextDataModule
from lst_lightning.lit.module import SpeechTextLM
from lst_lightning.lit.optim import OptimConfig
from lst_lightning.model import LSTConfig, TransformerConfig

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sources_corpus")
    generate_corpus(out, num_utterances=36, num_text_docs=40, seed=5)
    return out


def align_stage_folder(corpus: Path, out: Path, rename: dict[str, str] | None = None) -> Path:
    """A save_to_disk folder shaped like the kit's ``align`` stage output (file_id, text, units,
    interleaved, ...), optionally with renamed columns."""
    rows: dict[str, list] = {"file_id": [], "text": [], "units": [], "interleaved": []}
    for line in (corpus / "train.jsonl").read_text().splitlines():
        record = json.loads(line)
        u = parse_interleaved(record["interleaved"], record["file_id"])
        rows["file_id"].append(record["file_id"])
        rows["text"].append(u.transcript)
        rows["units"].append(list(u.units))
        rows["interleaved"].append(record["interleaved"])
    ds = datasets.Dataset.from_dict(rows)
    for old, new in (rename or {}).items():
        ds = ds.rename_column(old, new)
    ds.save_to_disk(str(out))
    return out


def text_parquet_folder(texts: list[str], out: Path, column: str = "text", files: int = 1) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        part = texts[k::files]
        datasets.Dataset.from_dict({column: part}).to_parquet(str(out / f"part-{k}.parquet"))
    return out


def first_batches(dm: SpeechTextDataModule, n: int = 8) -> list[tuple]:
    dm.setup("fit")
    loader = dm.train_dataloader()
    return [
        (b.tokens.numpy().tobytes(), b.patch_lengths.numpy().tobytes())
        for b in itertools.islice(iter(loader), n)
    ]


def test_arrow_reader_converts_once_and_gives_the_same_batches(corpus):
    memory = first_batches(SpeechTextDataModule(corpus={"data_dir": str(corpus)}))
    arrow = first_batches(SpeechTextDataModule(corpus={"data_dir": str(corpus), "reader": "arrow"}))
    assert memory == arrow
    folder = corpus / "arrow" / "train.jsonl"
    stamp = (folder / SOURCE_STAMP).read_text()
    assert cached_arrow(corpus / "train.jsonl") == folder  # fresh: not converted again
    assert (folder / SOURCE_STAMP).read_text() == stamp
    assert not [p for p in (corpus / "arrow").iterdir() if p.name.startswith(".")]  # no leftovers
    records = SpeechRecords(folder)
    assert list(records) == list(iter_aligned_jsonl(corpus / "train.jsonl"))
    texts = TextRecords(corpus / "arrow" / "text_train.txt")
    assert list(texts) == (corpus / "text_train.txt").read_text().splitlines()


def test_a_changed_file_is_converted_again_and_bad_records_name_the_line(tmp_path, corpus):
    work = tmp_path / "c"
    work.mkdir()
    lines = (corpus / "train.jsonl").read_text().splitlines()
    (work / "train.jsonl").write_text("\n".join(lines[:3]) + "\n")
    assert len(SpeechRecords(cached_arrow(work / "train.jsonl"))) == 3
    (work / "train.jsonl").write_text("\n".join(lines[:5]) + "\n")
    assert len(SpeechRecords(cached_arrow(work / "train.jsonl"))) == 5
    (work / "train.jsonl").write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: not valid JSON"):
        cached_arrow(work / "train.jsonl")
    assert len(SpeechRecords(work / "arrow" / "train.jsonl")) == 5  # the old cache is intact


def test_trains_from_an_align_stage_folder_with_renamed_columns(tmp_path, corpus):
    folder = align_stage_folder(corpus, tmp_path / "aligned", {"interleaved": "aligned_units"})
    text = text_parquet_folder(
        (corpus / "text_train.txt").read_text().splitlines(), tmp_path / "texts", "body"
    )
    sources = [
        {"kind": "speech", "path": str(folder), "columns": {"interleaved": "aligned_units"}},
        {"kind": "text", "path": str(text), "columns": {"text": "body"}},
    ]
    hf = first_batches(SpeechTextDataModule(corpus={"data_dir": str(corpus)}, sources=sources))
    assert hf == first_batches(SpeechTextDataModule(corpus={"data_dir": str(corpus)}))
    bad = [dict(sources[0], columns={}), sources[1]]
    with pytest.raises(ValueError, match=r"speech source .*aligned: no column 'interleaved'"):
        SpeechTextDataModule(corpus={"data_dir": str(corpus)}, sources=bad).setup("fit")
    with pytest.raises(ValueError, match=r"data.sources\[0\] has no option colums"):
        coerce_sources([{"kind": "text", "path": "x", "colums": {}}])


def test_weighted_text_sources_meet_their_token_shares(tmp_path, corpus):
    texts = (corpus / "text_train.txt").read_text().splitlines()
    a = text_parquet_folder(texts[:20], tmp_path / "a")
    b = text_parquet_folder(texts[20:], tmp_path / "b")
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        mixture={"interleaved": 0.2},
        sources=[
            {"kind": "speech", "path": str(cached_arrow(corpus / "train.jsonl"))},
            {"kind": "text", "path": str(a), "share": 3.0, "name": "A"},
            {"kind": "text", "path": str(b), "share": 1.0, "name": "B"},
        ],
    )
    dm.setup("fit")
    ds = dm._train
    plan = ds.epoch_plan()
    chosen = plan.indices[plan.kinds == TEXT]
    units = [sum(ds.text_length(i) for i in chosen if (i < 20) == first) for first in (True, False)]
    assert abs(units[0] / sum(units) - 0.75) < 0.1
    assert len(chosen) < len(texts)  # text is the plentiful kind here: subsampled


@pytest.mark.parametrize("num_workers", [0, 2])
def test_two_ranks_and_their_workers_read_disjoint_shares_and_log_them(
    tmp_path, corpus, num_workers
):
    sources = [
        {"kind": "speech", "path": str(cached_arrow(corpus / "train.jsonl"))},
        {"kind": "text", "path": str(cached_arrow(corpus / "text_train.txt"))},
    ]
    seen: list[set] = []
    for rank in (0, 1):
        dm = SpeechTextDataModule(
            corpus={"data_dir": str(corpus)},
            loader={"batch_size": 2, "num_workers": num_workers, "endless": False},
            sources=sources,
        )
        dm.setup("fit")
        ds = dm._train
        ds.set_shard(rank, 2)
        ds.read_log_dir = tmp_path / "reads"
        docs = set()
        for batch in dm.train_dataloader():
            for row in range(batch.tokens.shape[0]):
                ids = batch.doc_ids[row]
                for d in ids.unique().tolist():
                    if d >= 0:
                        docs.add(batch.tokens[row][ids == d].numpy().tobytes())
        seen.append(docs)
    plan = ds.epoch_plan()
    logs = [json.loads(line) for f in sorted((tmp_path / "reads").iterdir()) for line in f.open()]
    starts = [e for e in logs if e["when"] == "start"]
    assert len(starts) == 2 * max(1, num_workers)
    assert {(e["rank"], e["worker"]) for e in starts} == {
        (r, w) for r in (0, 1) for w in range(max(1, num_workers))
    }
    total = {k: sum(e["reads"][k]["documents"] for e in starts) for k in starts[0]["reads"]}
    assert sum(total.values()) == len(plan)
    assert not seen[0] & seen[1] and seen[0] and seen[1]  # no document piece read by both ranks


STREAM_STEPS, STREAM_RESUME = 34, 20
"""The streamed run: passes of ~16 batches; the checkpoint inside the second pass, the run into
the third, by when the stream has been read past its end once."""


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stream_corpus")
    generate_corpus(out, num_utterances=12, num_text_docs=15, seed=5)
    return out


def streamed_fit(
    corpus: Path,
    text: Path,
    out: Path,
    num_workers: int,
    ckpt: Path | None = None,
    devices: int = 1,
):
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        mixture={"interleaved": 0.4, "speech_only": 0.2},
        patching={"strategy": "mixed"},
        packing={"max_patches": 32, "max_tokens": 96},
        loader={"batch_size": 2, "num_workers": num_workers},
        sources=[
            {"kind": "speech", "path": str(cached_arrow(corpus / "train.jsonl"))},
            {"kind": "text", "path": str(text), "streaming": True},
        ],
    )
    torch.manual_seed(0)
    block = dict(n_layers=1, d_model=32, n_heads=2)
    network = LSTConfig(
        vocab_size=dm.vocab_size,
        encoder=TransformerConfig(**block, window=16),
        global_model=TransformerConfig(**block),
        decoder=TransformerConfig(**block, window=16),
    )
    module = SpeechTextLM(network, OptimConfig(lr=3e-3, warmup_steps=4), vocab_size=dm.vocab_size)
    rows: list[tuple] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            data = batch.tokens.numpy().tobytes() + batch.patch_lengths.numpy().tobytes()
            rows.append((trainer.global_step, float(outputs["loss"]), zlib.crc32(data)))

        def on_train_end(self, trainer, pl_module) -> None:  # each rank's batches, to a file
            path = out / f"rows.rank{trainer.global_rank}.json"
            path.write_text(json.dumps(rows))

    trainer = L.Trainer(
        max_steps=STREAM_STEPS,
        accelerator="cpu",
        devices=devices,
        strategy="ddp_fork" if devices > 1 else "auto",
        logger=CSVLogger(out, name="", version=""),  # log_dir == out: the read log goes there
        default_root_dir=out,
        callbacks=[
            Record(),
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=out / "ckpt",
                every_n_train_steps=STREAM_RESUME,
                save_top_k=-1,
                filename="{step}",
            ),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=False)
    finally:
        torch.set_num_threads(threads)
    return [json.loads((out / f"rows.rank{r}.json").read_text()) for r in range(devices)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_streamed_text_resumes_exactly(tmp_path, small_corpus, num_workers):
    texts = (small_corpus / "text_train.txt").read_text().splitlines()
    text = text_parquet_folder(texts, tmp_path / "stream", files=2)
    (full,) = streamed_fit(small_corpus, text, tmp_path / "full", num_workers)
    ckpt = tmp_path / "full" / "ckpt" / f"step={STREAM_RESUME}.ckpt"
    state = torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]
    loader = state["combined_loader"][0]
    assert loader["epoch"] == 1  # inside the second pass: the stream positions matter
    assert len(loader["streams"]) == max(1, num_workers)
    assert all(pos[str(text)][1] > 0 for pos in loader["streams"].values())
    # with the stream's own state, so the resume does not read the used documents again
    assert all(len(pos[str(text)]) == 3 for pos in loader["streams"].values())
    (resumed,) = streamed_fit(small_corpus, text, tmp_path / "resumed", num_workers, ckpt)
    full, resumed = [tuple(r) for r in full], [tuple(r) for r in resumed]
    assert [r[0] for r in full] == list(range(1, STREAM_STEPS + 1))
    assert resumed == full[STREAM_RESUME:]
    assert len({r[1] for r in full}) > STREAM_STEPS // 2  # the loss moves: the model trains
    # the stream was read past the end of its shards (a lap), as the read log records
    reads = tmp_path / "full" / "data_reads"
    logged = [json.loads(line) for f in reads.iterdir() for line in f.open()]
    assert max(e["streams"][str(text)][0] for e in logged) >= 1


def test_streamed_text_resumes_exactly_on_two_ddp_ranks(tmp_path, small_corpus):
    """Two gloo processes (ddp_fork): each rank reads its own shard of the stream; the checkpoint
    (written by rank 0) holds both ranks' positions, and both ranks resume exactly."""
    texts = (small_corpus / "text_train.txt").read_text().splitlines()
    text = text_parquet_folder(texts, tmp_path / "stream", files=2)
    full = streamed_fit(small_corpus, text, tmp_path / "full", 0, devices=2)
    ckpt = tmp_path / "full" / "ckpt" / f"step={STREAM_RESUME}.ckpt"
    state = torch.load(ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]
    loader = state["combined_loader"][0]
    assert loader["epoch"] >= 1 and sorted(loader["streams"]) == [0, 1]
    resumed = streamed_fit(small_corpus, text, tmp_path / "resumed", 0, ckpt, devices=2)
    for rank in (0, 1):
        assert len(full[rank]) == STREAM_STEPS
        assert resumed[rank] == full[rank][STREAM_RESUME:]  # batches and losses, exactly
    assert full[0] != full[1]  # the ranks read different documents
    reads = sorted(p.name for p in (tmp_path / "full" / "data_reads").iterdir())
    assert reads == ["rank0.worker0.jsonl", "rank1.worker0.jsonl"]


def test_streamed_text_needs_a_speech_share(tmp_path, corpus):
    with pytest.raises(ValueError, match="streaming is for text sources"):
        coerce_sources([{"kind": "speech", "path": "x", "streaming": True}])
    text = text_parquet_folder(["one two three"], tmp_path / "t")
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        mixture={"interleaved": 0.0},
        sources=[{"kind": "text", "path": str(text), "streaming": True}],
    )
    with pytest.raises(ValueError, match="needs a speech share > 0"):
        dm.setup("fit")


def test_validation_comes_from_each_sources_valid_or_the_folder(tmp_path, corpus):
    speech_dict = tmp_path / "speech_dict"
    train = datasets.load_from_disk(str(cached_arrow(corpus / "train.jsonl")))
    valid = datasets.load_from_disk(str(cached_arrow(corpus / "valid.jsonl")))
    datasets.DatasetDict({"train": train, "validation": valid}).save_to_disk(str(speech_dict))
    text_valid = text_parquet_folder(["a held out text document"], tmp_path / "text_valid")
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        sources=[
            {"kind": "speech", "path": str(speech_dict), "valid": "validation"},
            {
                "kind": "text",
                "path": str(cached_arrow(corpus / "text_train.txt")),
                "valid": str(text_valid),
            },
        ],
    )
    split = dm.load_split("valid")
    assert list(split.utterances) == list(iter_aligned_jsonl(corpus / "valid.jsonl"))
    assert list(split.texts) == ["a held out text document"]
    fallback = SpeechTextDataModule(
        corpus={"data_dir": str(corpus)},
        sources=[{"kind": "speech", "path": str(speech_dict)}],
        mixture={"interleaved": 1.0},
    )
    assert fallback.needed_files() == ("tokenizer.model", "valid.jsonl", "text_valid.txt")
    assert len(fallback.load_split("valid").utterances) == len(valid)
