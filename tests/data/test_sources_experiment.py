"""``experiments/tiny_lst_hf.yaml`` trains on the ``align`` stage's save_to_disk folder (no JSONL
for training): audio -> ingest -> units -> align with the real stages, then the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile

from lst_lightning.cli import main
from lst_lightning.data.corpora.synthetic import generate_corpus
from lst_lightning.data.speech import stages
from lst_lightning.data.speech.align import write_timings_jsonl

from .speech.test_stages import word_audio

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~35 s of CPU: the stages and a 4-step fit
def test_tiny_lst_hf_trains_on_the_align_stage_output(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    table = []
    for i in range(8):
        wav, timings = word_audio(i)
        soundfile.write(audio / f"utt{i}.wav", wav, 16000)
        (audio / f"utt{i}.txt").write_text(" ".join(t.word for t in timings))
        table.append((f"utt{i}", timings))
    write_timings_jsonl(tmp_path / "timings.jsonl", table)
    work = tmp_path / "work"
    stages.run_all(work, folder=audio, timings=tmp_path / "timings.jsonl", num_units=12)
    corpus = tmp_path / "corpus"  # the tokenizer and the validation split
    generate_corpus(corpus, num_utterances=12, num_text_docs=20, seed=3)
    sources = [
        {"kind": "speech", "path": str(work / "aligned"), "name": "stage_output"},
        {"kind": "text", "path": str(corpus / "text_train.txt"), "name": "text"},
    ]
    main(
        [
            "fit",
            "--config",
            str(ROOT / "experiments" / "tiny_lst_hf.yaml"),
            f"--data.corpus.data_dir={corpus}",
            f"--data.sources={json.dumps(sources)}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
            "--trainer.max_steps=4",
            "--trainer.val_check_interval=2",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            "--model.optim.warmup_steps=1",
            "--model.network.global_model.n_layers=1",
            "--data.loader.batch_size=2",
            "--data.packing.max_tokens=128",
            "--data.packing.max_patches=64",
        ]
    )
    run = tmp_path / "runs" / "tiny_lst_hf" / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file() or any((run / "checkpoints").iterdir())
    reads = [json.loads(line) for line in (run / "data_reads" / "rank0.worker0.jsonl").open()]
    assert reads[0]["reads"]["stage_output"]["documents"] == 8  # every stage utterance planned
    assert reads[0]["reads"]["text"]["documents"] > 0
