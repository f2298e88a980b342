"""Fine-tuning on task documents: loss masks through packing, a memorised ASR fine-tune reaches
WER 0, and the fine-tune experiments run a few steps from an ``init_from`` checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lst_lightning.data.stream.batch import IGNORE_INDEX, PAD_DOC
from lst_lightning.data.stream.packing import RowPacker, collate
from lst_lightning.data.vocab import TokenSpace
from lst_lightning.downstream.decode import decode_tasks, transcript
from lst_lightning.downstream.metrics import error_rates
from lst_lightning.downstream.tasks import task_documents
from lst_lightning.lit.task_datamodule import TaskDocumentDataset, split_items

ROOT = Path(__file__).resolve().parents[2]
FINETUNE_EXPERIMENTS = [
    f"tiny_{system}_{task}"
    for system in ("lst", "lst_curriculum", "baseline")
    for task in ("asr", "tts")
]


def _docs(corpus: Path, task: str, n: int):
    space = TokenSpace(corpus / "tokenizer.model")
    return space, task_documents(task, split_items(corpus, "train", n, space.num_units), space)


@pytest.mark.parametrize("task", ["asr", "tts"])
@pytest.mark.parametrize("mode", ["patches", "tokens"])
def test_targets_are_ignored_exactly_outside_the_answer_spans(
    task: str, mode: str, tiny_corpus: Path
) -> None:
    space, docs = _docs(tiny_corpus, task, 12)
    dataset = TaskDocumentDataset(
        docs, space, packing=mode, max_tokens=256, max_patches=128, shuffle=False
    )
    rows = list(dataset)
    assert dataset.dropped == 0 and len(rows) > 1  # several rows: documents move to the next
    batch = collate(rows, pad_multiple=None)
    expected_docs = iter(docs)
    for b in range(batch.tokens.shape[0]):
        doc_ids = batch.doc_ids[b]
        for d in doc_ids[doc_ids != PAD_DOC].unique().tolist():
            where = (doc_ids == d).nonzero().flatten()
            doc = next(expected_docs)  # whole documents, in order: never cut across rows
            assert batch.tokens[b, where].tolist() == doc.tokens.tolist()
            want = np.full(len(doc.tokens), IGNORE_INDEX)
            p = doc.prompt_length
            want[p - 1 : -1] = doc.tokens[p:]  # predicting the answer (and EOS) only
            assert batch.targets[b, where].tolist() == want.tolist()
        assert (batch.targets[b, doc_ids == PAD_DOC] == IGNORE_INDEX).all()
    assert next(expected_docs, None) is None


def test_without_a_mask_every_target_counts_and_a_cut_keeps_the_mask() -> None:
    tokens = np.arange(10, 20)
    plain = RowPacker("tokens", 6, 6, 0, lambda t: np.zeros_like(t, dtype=bool))
    rows = plain.add(tokens, np.ones(10)) + plain.flush()
    assert rows[0].targets[:5].tolist() == list(range(11, 16))
    masked = RowPacker("tokens", 6, 6, 0, lambda t: np.zeros_like(t, dtype=bool))
    mask = np.zeros(10, dtype=bool)
    mask[6:] = True  # tokens 16..19 count; the row is cut between 15 and 16
    rows = masked.add(tokens, np.ones(10), loss_mask=mask) + masked.flush()
    kept = [t for r in rows for t in r.targets.tolist() if t != IGNORE_INDEX]
    assert kept == [17, 18, 19]  # 16 would be predicted across the cut: no piece predicts it
    with pytest.raises(ValueError, match="loss_mask"):
        masked.add(tokens, np.ones(10), loss_mask=mask[:3])


@pytest.mark.parametrize("kind", [pytest.param("lst", marks=pytest.mark.slow), "baseline"])
def test_memorised_asr_finetune_reaches_wer_zero(kind: str, tiny_corpus: Path) -> None:
    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.model import BaselineConfig, LSTConfig
    from lst_lightning.model.config import TransformerConfig

    torch.manual_seed(0)
    space, docs = _docs(tiny_corpus, "asr", 4)
    small = TransformerConfig(n_layers=1, d_model=64, n_heads=2)
    if kind == "lst":
        network = LSTConfig(
            vocab_size=space.vocab_size,
            encoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2),
            global_model=small,
            decoder=TransformerConfig(n_layers=1, d_model=32, n_heads=2),
        )
        mode, patch = "patches", 4
    else:
        network = BaselineConfig(vocab_size=space.vocab_size, transformer=small)
        mode, patch = "tokens", None
    dataset = TaskDocumentDataset(docs, space, packing=mode, max_tokens=1024, max_patches=512)
    module = SpeechTextLM(network=network)
    optim = torch.optim.AdamW(module.parameters(), lr=3e-3)
    for step in range(300):
        dataset.set_epoch(step)
        loss = module.losses(collate(list(dataset)))["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        if loss.item() < 0.01:
            break
    decoded = decode_tasks(module.net, docs, space, patch)
    hyps = [transcript(space, d) for d in decoded]
    refs = [space.decode_text(list(d.answer[:-1])) for d in docs]
    assert all(d.stopped for d in decoded)
    assert error_rates(hyps, refs).wer == 0.0, list(zip(refs, hyps, strict=True))


@pytest.mark.parametrize("exp", FINETUNE_EXPERIMENTS)
def test_finetune_experiment_points_at_its_pretrained_run(exp: str) -> None:
    import yaml

    config = yaml.safe_load((ROOT / "experiments" / f"{exp}.yaml").read_text())
    pre = exp.rsplit("_", 1)[0]
    assert config["model"]["init_from"] == f"runs/{pre}/run/checkpoints/last.ckpt"
    assert config["data"]["task"]["name"] == exp.rsplit("_", 1)[1]
    assert config["trainer"]["logger"]["init_args"]["name"] == exp


@pytest.mark.slow
@pytest.mark.parametrize("system", ["lst", "baseline"])
def test_finetune_runs_from_a_pretrained_checkpoint(
    system: str, tiny_corpus: Path, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lst_lightning.cli import main

    common = [
        f"--data.corpus.data_dir={tiny_corpus}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.max_steps=3",
        "--trainer.val_check_interval=3",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        "--model.optim.warmup_steps=1",
    ]
    pre = "tiny_lst" if system == "lst" else "tiny_baseline"
    main(["fit", "--config", str(ROOT / "experiments" / f"{pre}.yaml"), *common])
    ckpt = tmp_path / pre / "run" / "checkpoints" / "last.ckpt"
    for task in ("asr", "tts"):
        exp = f"tiny_{system}_{task}"
        main(
            [
                "fit",
                "--config",
                str(ROOT / "experiments" / f"{exp}.yaml"),
                *common,
                f"--model.init_from={ckpt}",
                "--data.task.train_limit=16",
                "--data.task.valid_limit=4",
                "--samples.num_prompts=1",
            ]
        )
        run = tmp_path / exp / "run"
        assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 3
        events = EventAccumulator(str(run), size_guidance={"audio": 0, "tensors": 0})
        events.Reload()
        assert "val/loss" in events.Tags()["scalars"]
        if task == "tts":  # the generated corpus has no unit codebook, so no vocoder: text only
            assert any(t.startswith("samples/tts_0_text") for t in events.Tags()["tensors"])
        else:
            assert any(t.startswith("samples/asr_0") for t in events.Tags()["tensors"])
