"""Ingest from a folder and from an HF dataset saved in the test, with bad records and both policies."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from lst_lightning.data.speech.audio import RecordError, read_audio
from lst_lightning.data.speech.ingest import (
    ErrorPolicy,
    SourceRecord,
    ingest_rows,
    iter_folder,
    iter_hf,
    open_hf_dataset,
)
from lst_lightning.data.speech.stages import ingest


def tone(seconds: float, rate: int = 16000, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_folder(root):
    """Three good utterances (one at 22.05 kHz, one LibriSpeech-style), one corrupt, one empty text."""
    (root / "spk").mkdir(parents=True)
    soundfile.write(root / "a.wav", tone(0.5), 16000)
    (root / "a.txt").write_text("Hello, world!\n")
    soundfile.write(root / "b.flac", tone(0.4, 22050), 22050)
    (root / "b.txt").write_text("second one")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (root / "corrupt.txt").write_text("never read")
    soundfile.write(root / "silent.wav", tone(0.3), 16000)
    (root / "silent.txt").write_text("  -- \n")
    soundfile.write(root / "spk" / "spk-1-0001.flac", tone(0.6), 16000)
    (root / "spk" / "spk-1.trans.txt").write_text("spk-1-0001 FROM A TRANS FILE\n")
    return root


def test_folder_records(tmp_path):
    records = {r.file_id: r for r in iter_folder(make_folder(tmp_path))}
    assert sorted(records) == ["a", "b", "corrupt", "silent", "spk/spk-1-0001"]
    assert records["spk/spk-1-0001"].text == "FROM A TRANS FILE"


def test_policy_stop_names_the_record(tmp_path):
    rows = ingest_rows(iter_folder(make_folder(tmp_path)), ErrorPolicy("stop"))
    with pytest.raises(RecordError, match="corrupt: unreadable audio"):
        list(rows)


def test_policy_skip_counts_and_keeps_the_rest(tmp_path):
    policy = ErrorPolicy("skip", verbose=False)
    rows = list(ingest_rows(iter_folder(make_folder(tmp_path)), policy))
    assert [r["file_id"] for r in rows] == ["a", "b", "spk/spk-1-0001"]
    assert dict(policy.counts) == {"unreadable audio": 1, "empty transcript": 1}
    assert "empty transcript: 1 (e.g. silent)" in policy.report()
    by_id = {r["file_id"]: r for r in rows}
    assert by_id["a"]["text"] == "hello world"
    assert by_id["spk/spk-1-0001"]["text"] == "from a trans file"
    wav, rate = read_audio(by_id["b"]["audio"]["bytes"], "b")
    assert rate == 16000 and len(wav) == by_id["b"]["num_samples"] == 6400  # 0.4 s resampled


def test_missing_files_duplicates_and_rates():
    policy = ErrorPolicy("skip", verbose=False)
    good = {"array": tone(0.2), "sampling_rate": 16000}
    records = [
        SourceRecord("x", None, "text without audio"),
        SourceRecord("y", good, None),
        SourceRecord("z", good, "fine"),
        SourceRecord("z", good, "again"),
        SourceRecord("w", {"array": tone(0.2, 8000), "sampling_rate": 8000}, "low rate"),
    ]
    rows = list(ingest_rows(iter(records), policy, expected_rate=16000))
    assert [r["file_id"] for r in rows] == ["z"]
    assert dict(policy.counts) == {
        "missing audio file": 1,
        "missing transcript": 1,
        "duplicate file_id": 1,
        "sample rate mismatch": 1,
    }
    with pytest.raises(ValueError, match="on_error must be one of"):
        ErrorPolicy("ignore")


@pytest.fixture
def hf_dataset(tmp_path):
    """An HF dataset saved in the test: audio as Audio(decode=False) bytes, one corrupt, one empty text."""
    import io

    from datasets import Audio, Dataset

    def encoded(w: np.ndarray) -> bytes:
        buf = io.BytesIO()
        soundfile.write(buf, w, 16000, format="WAV")
        return buf.getvalue()

    ds = Dataset.from_dict(
        {
            "id": ["u0", "u1", "u2", "u3"],
            "audio": [
                {"bytes": encoded(tone(0.5)), "path": None},
                {"bytes": b"not audio at all", "path": None},
                {"bytes": encoded(tone(0.3)), "path": None},
                {"bytes": encoded(tone(0.7)), "path": None},
            ],
            "sentence": ["The first one.", "Corrupt audio", "", "The LAST one"],
        }
    ).cast_column("audio", Audio(decode=False))
    path = tmp_path / "hf"
    ds.save_to_disk(str(path))
    return path


def test_hf_dataset_columns_and_policies(hf_dataset, tmp_path):
    ds = open_hf_dataset(hf_dataset)
    with pytest.raises(ValueError, match="no text column 'text' .*sentence"):
        next(iter_hf(ds, text_column="text", name="mine"))
    with pytest.raises(RecordError, match="u1: unreadable audio"):
        list(ingest_rows(iter_hf(ds, text_column="sentence"), ErrorPolicy("stop")))
    info = ingest(tmp_path / "out", hf=str(hf_dataset), text_column="sentence", on_error="skip")
    assert info["records"] == 2
    assert info["skipped"] == {"unreadable audio": 1, "empty transcript": 1}
    from datasets import load_from_disk

    out = load_from_disk(str(tmp_path / "out"))
    assert out["file_id"] == ["u0", "u3"]
    assert out["text"] == ["the first one", "the last one"]
    assert out["num_samples"] == [8000, 11200]
