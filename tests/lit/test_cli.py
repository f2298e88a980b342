"""The CLI parses every shipped experiment, and a short fit through it trains, logs and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lst_lightning.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))

SMALL = [
    "--trainer.max_steps=6",
    "--trainer.val_check_interval=3",
    "--trainer.limit_val_batches=2",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--model.optim.warmup_steps=2",
    "--data.loader.batch_size=2",
    "--data.packing.max_tokens=128",
]


def test_experiments_exist() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert {"tiny_lst", "tiny_baseline", "lst_1b", "baseline_1b"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_parses(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "network:" in printed and ("global_model:" in printed or "transformer:" in printed)
    data = printed[printed.index("\ndata:") :]
    for group in ("corpus:", "mixture:", "patching:", "packing:", "loader:"):
        assert f"\n  {group}" in data, f"{path.stem}: data group {group} not printed"


@pytest.mark.parametrize("flag", [["--config", "nope.yaml"], ["--config=nope.yaml"]])
def test_missing_config_is_one_line_naming_the_file(
    flag: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as done:
        main(["fit", *flag])
    message = str(done.value.code)
    assert "--config nope.yaml: no such file" in message and "tiny_lst" in message


def test_help_documents_the_data_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "--data.patching.strategy" in printed and "--data.mixture.interleaved" in printed
    # each field's docstring reaches the help text
    assert "Static patch size ``p`` in tokens, ``<s>`` included. Paper: 4" in printed
    assert "rows of global positions and tokens (LST) or of tokens (the baselines)" in printed


def fit(exp: str, corpus: Path, out: Path, *extra: str) -> None:
    main(
        [
            "fit",
            "--config",
            str(ROOT / "experiments" / f"{exp}.yaml"),
            f"--data.corpus.data_dir={corpus}",
            f"--trainer.logger.init_args.save_dir={out}",
            *SMALL,
            *extra,
        ]
    )


def scalars(run_dir: Path) -> dict[str, list[float]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize(
    "exp,size",
    [
        ("tiny_lst", ["--model.network.global_model.n_layers=1", "--data.packing.max_patches=64"]),
        ("tiny_baseline", ["--model.network.transformer.n_layers=1"]),
    ],
)
def test_fit_logs_scalars_writes_checkpoint_and_resumes(
    exp: str, size: list[str], tiny_corpus: Path, tmp_path: Path
) -> None:
    # a save every 4 steps: last.ckpt must still be the model at the end (step 6), not at step 4
    fit(exp, tiny_corpus, tmp_path, *size, "--checkpoint.every_n_train_steps=4")
    run = tmp_path / exp / "run"
    logged = scalars(run)
    for tag in (
        "train/loss",
        "train/loss_text",
        "train/loss_speech",
        "train/tokens_seen",
        "train/global_positions_seen",
        "train/speech_patch_len",
        "val/loss",
    ):
        assert tag in logged, f"{tag} missing; logged: {sorted(logged)}"
    assert any(tag.startswith("lr-") for tag in logged)
    seen = logged["train/tokens_seen"]
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), "tokens_seen must grow"
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file()
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["global_step"] == 6
    tokens_at_6 = int(state["state_dict"]["tokens_seen"])
    assert tokens_at_6 == int(seen[-1])

    every4 = "--checkpoint.every_n_train_steps=4"  # the same callback, so its state reloads
    fit(exp, tiny_corpus, tmp_path, *size, every4, "--trainer.max_steps=9", f"--ckpt_path={last}")
    resumed = torch.load(last, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 9
    assert int(resumed["state_dict"]["tokens_seen"]) > tokens_at_6


def test_cli_test_reports_loss_and_benchmarks(tiny_corpus: Path, tmp_path: Path) -> None:
    """`lst-lightning test` on a checkpoint logs the held-out loss and writes the benchmark table."""
    size = ["--model.network.global_model.n_layers=1", "--data.packing.max_patches=64"]
    fit("tiny_lst", tiny_corpus, tmp_path, *size, "--trainer.max_steps=3")
    run = tmp_path / "tiny_lst" / "run"
    main(
        [
            "test",
            "--config",
            str(ROOT / "experiments" / "tiny_lst.yaml"),
            f"--data.corpus.data_dir={tiny_corpus}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            *SMALL[3:],
            *size,
            "--benchmarks.sets=[storycloze,swuggy]",
            "--benchmarks.test_limit=4",
            f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        ]
    )
    assert "test/loss" in scalars(run / "test" / "step_3")
    assert "test/loss" not in scalars(run), "test wrote into the training run"
    results = list(run.glob("test/step_3/results.json"))
    assert results, "no benchmark results written"
    table = results[0].with_name("results.md").read_text()
    for name in ("storycloze", "swuggy", "S->S", "T->T"):
        assert name in table
