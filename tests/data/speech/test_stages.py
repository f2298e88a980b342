"""The stage runner end to end: folder -> ingest -> units -> align -> aligned JSONL; resume; errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from lst_lightning.data.records import SILENCE, read_aligned_jsonl
from lst_lightning.data.speech import stages
from lst_lightning.data.speech.align import WordTiming, write_timings_jsonl
from lst_lightning.data.speech.audio import RecordError
from lst_lightning.data.speech.units import MelKMeansUnits

from ..conftest import save_tiny_ctc_model


def word_audio(seed: int) -> tuple[np.ndarray, list[WordTiming]]:
    """0.2 s silence, then words of distinct tones separated by 0.12 s silences, 0.2 s trailing."""
    rng = np.random.default_rng(seed)
    parts, timings, t = [np.zeros(3200, dtype=np.float32)], [], 0.2
    for i in range(int(rng.integers(2, 5))):
        dur = float(rng.choice([0.24, 0.32, 0.4]))
        n = int(dur * 16000)
        freq = float(rng.choice([300, 600, 1200, 2400]))
        parts.append((0.3 * np.sin(2 * np.pi * freq * np.arange(n) / 16000)).astype(np.float32))
        timings.append(WordTiming(f"w{freq:.0f}x{i}", t, t + dur))
        parts.append(np.zeros(1920, dtype=np.float32))
        t += dur + 0.12
    parts.append(np.zeros(3200 - 1920, dtype=np.float32))
    return np.concatenate(parts), timings


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    table = []
    for i in range(6):
        wav, timings = word_audio(i)
        soundfile.write(folder / f"utt{i}.wav", wav, 16000)
        (folder / f"utt{i}.txt").write_text(" ".join(t.word for t in timings))
        table.append((f"utt{i}", timings))
    # utt5's alignment carries a different word: a transcript/alignment mismatch
    bad = [WordTiming("other", t.start, t.end) for t in table[5][1]]
    table[5] = ("utt5", bad)
    write_timings_jsonl(tmp_path / "timings.jsonl", table)
    return tmp_path


def test_pipeline_end_to_end_and_resume(corpus, capsys):
    work = corpus / "work"
    kwargs = dict(folder=corpus / "audio", timings=corpus / "timings.jsonl", num_units=12)
    out = stages.run_all(work, on_error="skip", **kwargs)
    utterances = read_aligned_jsonl(out, num_units=12)
    assert [u.file_id for u in utterances] == [f"utt{i}" for i in range(5)]
    info = stages.read_stage_info(work / "aligned")
    assert info["skipped"] == {"transcript does not match alignment": 1}
    tok = MelKMeansUnits.load(work / "unit_tokenizer.pt")
    for u in utterances:
        wav, rate = soundfile.read(corpus / "audio" / f"{u.file_id}.wav", dtype="float32")
        # every frame kept once, not deduplicated, identical to tokenising the file directly
        assert u.units == tuple(tok(wav).tolist())
        assert len(u.units) == len(wav) // 640
        assert u.words[0].text == SILENCE and u.words[-1].text == SILENCE
        assert u.transcript == (corpus / "audio" / f"{u.file_id}.txt").read_text()
    # a second run skips every stage and leaves the outputs untouched
    before = (work / "units" / "stage.json").read_text()
    capsys.readouterr()
    stages.run_all(work, on_error="skip", **kwargs)
    log = capsys.readouterr().out
    assert log.count("skipping") == 5
    assert (work / "units" / "stage.json").read_text() == before


def test_stop_policy_names_the_record(corpus):
    work = corpus / "work"
    with pytest.raises(RecordError, match="utt5: transcript does not match alignment"):
        stages.run_all(work, folder=corpus / "audio", timings=corpus / "timings.jsonl", num_units=8)
    assert not (work / "aligned").exists() and not (work / ".aligned.partial").exists()


def test_interrupted_stage_leaves_nothing_and_resumes(corpus, monkeypatch):
    work = corpus / "work"
    stages.ingest(work / "ingest", folder=corpus / "audio")
    stages.fit_units(work / "ingest", work / "tok.pt", num_units=8)
    calls = {"n": 0}
    real = MelKMeansUnits.__call__

    def interrupted(self, waveform, sample_rate=16000):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, waveform, sample_rate)

    monkeypatch.setattr(MelKMeansUnits, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stages.units(work / "ingest", work / "units", work / "tok.pt")
    assert not (work / "units").exists()
    # a hard kill leaves the partial folder behind: the next run removes it and builds cleanly
    (work / ".units.partial" / "cache").mkdir(parents=True)
    (work / ".units.partial" / "cache" / "junk.arrow").write_bytes(b"half written")
    monkeypatch.setattr(MelKMeansUnits, "__call__", real)
    info = stages.units(work / "ingest", work / "units", work / "tok.pt")
    assert info["records"] == 6 and info["num_units"] == 8
    assert sorted(p.name for p in work.iterdir()) == [
        ".tok.pt.stage.json",
        "ingest",
        "tok.pt",
        "units",
    ]


def test_units_out_of_codebook_and_bad_stage_inputs(corpus, tmp_path):
    work = corpus / "work"
    stages.ingest(work / "ingest", folder=corpus / "audio")
    stages.fit_units(work / "ingest", work / "tok.pt", num_units=8)
    stages.units(work / "ingest", work / "units", work / "tok.pt")
    # pretend the units came from a 4-entry codebook: ids 4..7 are now outside it
    info_path = work / "units" / "stage.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "num_units": 4}))
    with pytest.raises(RecordError, match="utt0: unit out of range"):
        stages.align(work / "units", work / "aligned", timings=corpus / "timings.jsonl")
    with pytest.raises(FileNotFoundError, match="run the previous stage first"):
        stages.units(tmp_path / "nowhere", work / "u2", work / "tok.pt")
    with pytest.raises(ValueError, match="output of stage 'ingest', expected 'units'"):
        stages.align(work / "ingest", work / "a2", timings=corpus / "timings.jsonl")
    (work / "taken").mkdir()
    (work / "taken" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a finished ingest stage"):
        stages.ingest(work / "taken", folder=corpus / "audio")


def test_cli(corpus):
    work = corpus / "work"
    rc = stages.main(
        ["all", "--work", str(work), "--folder", str(corpus / "audio"), "--num-units", "8"]
        + ["--timings", str(corpus / "timings.jsonl"), "--on-error", "skip"]
    )
    assert rc == 0 and len(read_aligned_jsonl(work / "aligned.jsonl", num_units=8)) == 5
    rc = stages.main(["ingest", "--out", str(work / "x"), "--folder", str(corpus / "missing")])
    assert rc == 1


def test_ctc_alignment_stage(corpus):
    work = corpus / "work"
    model_dir = corpus / "ctc"
    letters = "wx0123456789"
    vocab = {"<pad>": 0, "|": 1, **{c: i + 2 for i, c in enumerate(letters)}}
    save_tiny_ctc_model(model_dir, vocab)
    stages.ingest(work / "ingest", folder=corpus / "audio")
    stages.fit_units(work / "ingest", work / "tok.pt", num_units=8)
    stages.units(work / "ingest", work / "units", work / "tok.pt")
    info = stages.align(work / "units", work / "aligned", method="ctc", ctc_model=model_dir)
    assert info["records"] == 6 and info["method"] == "ctc"
    stages.export(work / "aligned", work / "out.jsonl")
    for u in read_aligned_jsonl(work / "out.jsonl", num_units=8):
        assert u.transcript == (corpus / "audio" / f"{u.file_id}.txt").read_text()
