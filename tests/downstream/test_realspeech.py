"""Real-speech sets through the kit's own ingest and units stages.

A tiny generated copy of each package's layout always runs; the installed packages are checked
when present (``make setup-system``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lst_lightning.data.speech.units import MelKMeansUnits, num_frames
from lst_lightning.downstream.realspeech import (
    asterisk_items,
    build_real_set,
    clean_transcript,
    librivox_items,
    read_real_set,
    real_set_status,
)


def _wav(path: Path, seconds: float, rate: int, freq: float) -> None:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(16000)).astype(np.float32) for _ in range(3)]
    path = tmp_path_factory.mktemp("units") / "units.pt"
    MelKMeansUnits.fit(waves, num_units=8, seed=0).save(path)
    return path


def test_clean_transcript() -> None:
    assert clean_transcript("Call-Forward on No Answer.") == "Call Forward on No Answer."
    assert clean_transcript("[this is a simple beep tone]") == ""
    assert clean_transcript("Press 1 [pause] for help/info") == "Press 1 for help info"


def test_librivox_layout_through_ingest(tmp_path: Path, tokenizer_file: Path) -> None:
    root = tmp_path / "librivox"
    _wav(root / "book-0001.wav", 1.0, 16000, 300)
    _wav(root / "book-0002.wav", 0.52, 16000, 500)
    (root / "transcription").write_text(
        "<s> and mister john dashwood </s> (book-0001)\n<s> he was not ill-disposed </s> (book-0002)\n"
    )
    items = librivox_items(root)
    assert [i.file_id for i in items] == ["book-0001", "book-0002"]
    assert items[1].text == "he was not ill disposed"
    build_real_set(items, tmp_path / "work", tokenizer_file)
    built = read_real_set(tmp_path / "work")
    assert [b[0].file_id for b in built] == ["book-0001", "book-0002"]
    first, wav_bytes = built[0]
    assert first.text == "and mister john dashwood" and len(first.units) == num_frames(16000) == 25
    assert len(built[1][0].units) == 13  # 0.52 s -> 8320 samples -> 13 frames
    assert wav_bytes[:4] == b"RIFF"


def test_asterisk_layout_resamples_and_counts_bad_records(
    tmp_path: Path, tokenizer_file: Path
) -> None:
    sounds = tmp_path / "sounds"
    _wav(sounds / "activated.wav", 0.8, 8000, 400)
    _wav(sounds / "digits" / "1.wav", 0.4, 8000, 700)
    _wav(sounds / "beep.wav", 0.2, 8000, 1000)
    trans = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(trans, "wt") as f:
        f.write("; Core Asterisk Sounds in English\n\nactivated: Activated.\ndigits/1: one\n")
        f.write("beep: [this is a simple beep tone]\nmissing-file: Please try again later.\n")
    items = asterisk_items(sounds, trans)
    assert [i.file_id for i in items] == ["activated", "digits/1", "missing-file"]  # no beep
    info = build_real_set(items, tmp_path / "work", tokenizer_file)
    assert info["records"] == 2
    built = {b[0].file_id: b[0] for b in read_real_set(tmp_path / "work")}
    assert built["activated"].text == "activated"  # normalised by ingest
    assert len(built["activated"].units) == 20  # 0.8 s at 8 kHz -> 12800 samples at 16 kHz
    assert len(built["digits/1"].units) == 10
    ingest_info = (tmp_path / "work" / "ingest" / "stage.json").read_text()
    assert '"missing audio file": 1' in ingest_info
    with pytest.raises(ValueError, match="not 'name: transcript'"):
        trans.write_bytes(gzip.compress(b"no colon here at all\n"))
        asterisk_items(sounds, trans)


def test_missing_packages_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="install pocketsphinx-testdata"):
        librivox_items(tmp_path)
    with pytest.raises(FileNotFoundError, match="install asterisk-core-sounds-en"):
        asterisk_items(tmp_path, tmp_path / "none.txt.gz")


@pytest.mark.parametrize(
    ("name", "count"), [("librivox", 5), ("asterisk", 564)], ids=["librivox", "asterisk"]
)
def test_installed_packages(name: str, count: int) -> None:
    ok, why = real_set_status(name)
    if not ok:
        pytest.skip(f"{why}")
    from lst_lightning.downstream.realspeech import real_items

    items = real_items(name)
    assert len(items) == count
    assert sum(i.audio.is_file() for i in items) >= count - 1
    assert all(i.text for i in items)
