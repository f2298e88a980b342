"""Resuming a streamed text source from the stream's own state (``datasets``'
``IterableDataset.state_dict``) gives the same next documents as an uninterrupted read, without
reading the used documents again; positions without a state (older checkpoints) and states that
no longer fit the data fall back to reading through."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import pytest

from lst_lightning.data.sources import streamed
from lst_lightning.data.sources.streamed import READ_BATCH, StreamPosition, TextStream

datasets = pytest.importorskip("datasets")

DOCS = 700
"""Documents of the test stream: a shard of 2 holds 350, so a read of 500 crosses a lap."""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("stream_resume")
    texts = [f"document {i} " + "x" * (i % 7) for i in range(DOCS)]
    ds = datasets.Dataset.from_dict({"text": texts})
    ds.save_to_disk(str(out / "disk"), num_shards=4)
    (out / "parquet").mkdir()
    for k in range(4):  # 4 files: split over 2 shards by whole files
        ds.select(range(k, DOCS, 4)).to_parquet(str(out / "parquet" / f"part-{k}.parquet"))
    return {"disk": out / "disk", "parquet": out / "parquet"}


class CountingStream(TextStream):
    """Counts the documents it reads from the files."""

    read = 0

    def _reads(self, shard, num_shards, state):
        for start, texts in super()._reads(shard, num_shards, state):
            self.read += len(texts)
            yield start, texts


def read(stream: TextStream, shard: int, start: StreamPosition, n: int) -> list:
    return list(itertools.islice(stream.documents(shard, 2, start), n))


def through_json(position: StreamPosition) -> StreamPosition:
    return StreamPosition.from_json(json.loads(json.dumps(position.to_json())))


@pytest.mark.parametrize("kind", ["disk", "parquet"])
@pytest.mark.parametrize("shard", [0, 1])
def test_resuming_from_the_state_continues_the_uninterrupted_read(sources, kind, shard):
    stream = TextStream(sources[kind])
    full = read(stream, shard, StreamPosition(), 500)
    assert {p.lap for p, _ in full} == {0, 1}  # the read crosses a lap
    for cut in (1, READ_BATCH - 1, READ_BATCH, 200, 349, 350, 351, 420):
        position = through_json(full[cut - 1][0])  # after `cut` documents, as a checkpoint holds
        assert position.resume is not None
        counting = CountingStream(sources[kind])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback
            resumed = read(counting, shard, position, 500 - cut)
        assert resumed == full[cut:]  # the same documents at the same positions
        assert [t for _, t in resumed] == [t for _, t in full[cut:]]
        # at most one read up to the last used document, not `cut` documents read through
        assert counting.read <= (500 - cut) + 2 * READ_BATCH
    # a resumed read's positions resume again (a checkpoint of a resumed run)
    again = read(stream, shard, through_json(full[199][0]), 100)
    assert read(stream, shard, through_json(again[49][0]), 50) == full[250:300]


@pytest.mark.parametrize("kind", ["disk", "parquet"])
def test_a_checkpoint_without_the_state_reads_through(sources, kind):
    """Also on an every-n-th split (``disk``: one stream file), where ``IterableDataset.skip``
    after ``split_dataset_by_node`` skipped examples of the whole stream, not of the shard."""
    stream = CountingStream(sources[kind])
    full = read(stream, 1, StreamPosition(), 400)
    old = StreamPosition.from_json([0, 300])  # a checkpoint written before the state was saved
    assert old.resume is None
    stream.read = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = read(stream, 1, old, 100)
    assert resumed == full[300:]
    assert stream.read >= 300  # read through the used documents
    # and its positions carry the state again: the next resume is fast
    assert resumed[10][0].resume is not None
    assert read(stream, 1, through_json(resumed[10][0]), 20) == full[311:331]


def test_a_state_that_no_longer_fits_the_data_falls_back_with_a_warning(sources):
    stream = TextStream(sources["disk"])
    full = read(stream, 0, StreamPosition(), 300)
    saved = full[199][0].to_json()
    saved[2]["digest"] = "0" * 16  # as if the data changed under the saved state
    with pytest.warns(UserWarning, match="not the last one used"):
        resumed = read(stream, 0, StreamPosition.from_json(saved), 100)
    assert resumed == full[200:]
    with pytest.raises(ValueError, match="lap, taken"):
        StreamPosition.from_json([0])
    with pytest.raises(ValueError, match="state, skip and digest"):
        StreamPosition.from_json([0, 5, {"skip": 1}])


def test_positions_compare_by_lap_and_taken_only():
    checkpoint = streamed.StreamCheckpoint(None, 3, "ab")
    assert StreamPosition(1, 4, checkpoint) == StreamPosition(1, 4)
    assert StreamPosition(1, 4).to_json() == [1, 4]


def test_the_loader_state_carries_the_stream_state_and_reads_older_checkpoints():
    from torch.utils.data import IterableDataset

    from lst_lightning.lit.datamodule import EpochDataLoader

    class Streams(IterableDataset):
        streams = True

        def __iter__(self):
            return iter(())

    checkpoint = streamed.StreamCheckpoint({"examples_iterable": {"shard_idx": 1}}, 6, "ab")
    saver = EpochDataLoader(Streams(), batch_size=1)
    saver._consumed = (0, 3, 0, {1: {"s": StreamPosition(1, 70, checkpoint)}})
    state = json.loads(json.dumps(saver.state_dict()))  # plain JSON-able data
    loader = EpochDataLoader(Streams(), batch_size=1)
    loader.load_state_dict(state)
    assert loader._stream_starts[1]["s"].resume == checkpoint
    state["streams"] = {"1": {"s": [1, 70]}}  # a checkpoint written before the state existed
    loader.load_state_dict(state)
    assert loader._stream_starts[1]["s"] == StreamPosition(1, 70)
    assert loader._stream_starts[1]["s"].resume is None
