"""Memory-mapped sources: the kit maps the Arrow files itself and keeps their resident pages under
the budget, reading the same rows; datasets whose table transforms its files are read as before."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lst_lightning.data.sources import mapped
from lst_lightning.data.sources.arrow import TextRecords, _mapped_columns, open_dataset

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def big_text(tmp_path_factory: pytest.TempPathFactory):
    """~48 MiB of text documents in one save_to_disk folder (far more than the test budget)."""
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    docs = [" ".join(rng.choice(words, 400)) + f" {i}" for i in range(20_000)]
    out = tmp_path_factory.mktemp("big_text") / "text"
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(out))
    return out, docs


def read_at_random(records: TextRecords, n: int, seed: int = 1) -> float:
    """Read ``n`` random rows; the most resident file memory seen over the baseline (MiB)."""
    rng = np.random.default_rng(seed)
    base = mapped.resident_file_mib()
    assert base is not None
    peak = 0.0
    for k in range(n):
        records[int(rng.integers(len(records)))]
        if k % 16 == 0:
            peak = max(peak, mapped.resident_file_mib() - base)
    return peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_resident_pages_stay_under_the_budget_and_rows_are_the_same(big_text, monkeypatch):
    """Random reads without the release map a large part of the file; with a 1 MiB budget
    (checked every 4 reads) resident file memory stays within a few MiB, and every row read
    through the kit's own mapping equals the dataset's."""
    folder, docs = big_text
    records = TextRecords(folder)
    assert records._rows._mapped  # read through sources.mapped, not datasets' own mapping
    monkeypatch.setattr(mapped, "CHECK_EVERY", 4)
    monkeypatch.setattr(mapped, "budget_mib", 0.0)  # off
    mapped.release()
    unreleased = read_at_random(records, 1500)
    mapped.release()
    monkeypatch.setattr(mapped, "budget_mib", 1.0)
    before = mapped.releases
    released = read_at_random(records, 1500, seed=2)
    assert mapped.releases > before
    print(f"resident file MiB over the baseline: {unreleased:.1f} unreleased, {released:.1f}")
    assert unreleased > 20, unreleased  # the case the release exists for
    assert released < 8, released
    for i in (0, 1, 4567, len(docs) - 1):
        assert records[i] == docs[i]


def test_a_dataset_whose_table_transforms_its_files_is_read_through_datasets(tmp_path):
    """A renamed column lives in the table's replays, not in the file: the kit's own mapping is
    not used for it (it would read the file's names), and schema-only replays do not count."""
    ds = datasets.Dataset.from_dict({"a": ["x", "y"], "b": ["1", "2"]})
    ds.save_to_disk(str(tmp_path / "d"))
    loaded = open_dataset(tmp_path / "d")
    files = [f["filename"] for f in loaded.cache_files]
    assert _mapped_columns(loaded, files, ["a"]) is not None  # only schema metadata is replayed
    renamed = loaded.rename_column("a", "c")
    assert _mapped_columns(renamed, files, ["c"]) is None
    assert _mapped_columns(datasets.Dataset.from_dict({"a": ["x"]}), [], ["a"]) is None
