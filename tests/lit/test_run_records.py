"""Run records are append-only, checkpoints are self-contained, and there is one CLI (issue 11).

The acceptance test trains a tiny LST and a tiny baseline through the CLI, validates, tests and
evaluates each checkpoint, and checks that the training run's events and config.yaml are
byte-identical afterwards and that each evaluation logged at the checkpoint's step in its own
folder; then samples from another folder holding only a copy of a checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lst_lightning.cli import main, normalise_flags

from .test_cli import ROOT, SMALL, fit

SIZES = {
    "tiny_lst": ["--model.network.global_model.n_layers=1", "--data.packing.max_patches=64"],
    "tiny_baseline": ["--model.network.transformer.n_layers=1"],
}


def records(run: Path) -> dict[str, bytes]:
    """The training run's own files: events and configs (not the evaluation folders)."""
    return {
        p.name: p.read_bytes()
        for p in run.iterdir()
        if p.is_file() and (p.name.startswith("events") or p.suffix == ".yaml")
    }


def scalar_steps(folder: Path, tag: str) -> list[int]:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@pytest.mark.parametrize("exp", list(SIZES))
def test_evaluating_a_checkpoint_never_rewrites_its_run(
    exp: str, tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from lst_lightning.eval.__main__ import main as eval_main

    fit(exp, tiny_corpus, tmp_path, *SIZES[exp])  # 6 steps, validation every 3
    run = tmp_path / exp / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    before = records(run)
    assert "config.yaml" in before
    # the last step was validated, and val/loss is the HParams metric (no hp_metric = -1)
    assert scalar_steps(run, "val/loss")[-1] >= 5
    assert not scalar_steps(run, "hp_metric")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the checkpoint alone says where everything is
    quiet = ["--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false"]
    main(["validate", "--ckpt", str(ckpt), *quiet])
    main(["validate", "--ckpt", str(ckpt), *quiet])  # again: a second folder, nothing replaced
    main(
        [
            "test",
            "--ckpt_path",
            str(ckpt),
            "--trainer.limit_test_batches=2",
            "--trainer.enable_progress_bar=false",
            "--benchmarks.sets=[storycloze]",
            "--benchmarks.test_limit=2",
        ]
    )
    assert eval_main(["--ckpt", str(ckpt), "--sets", "storycloze", "--limit", "2"]) == 0

    assert records(run) == before, "the training run's events or config.yaml changed"
    assert scalar_steps(run / "validate" / "step_6", "val/loss") == [6]
    assert scalar_steps(run / "validate" / "step_6.2", "val/loss") == [6]
    assert scalar_steps(run / "test" / "step_6", "test/loss") == [6]
    assert (run / "test" / "step_6" / "results.json").is_file()
    assert (run / "eval" / "step_6" / "results.json").is_file()
    assert scalar_steps(run / "eval" / "step_6", "eval/storycloze/t2t/per_char") == [6]
    assert not (elsewhere / "data").exists(), "something was built in the working directory"


def test_sample_from_another_folder_with_only_the_checkpoint(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, make_checkpoint
) -> None:
    from lst_lightning.model import LSTConfig, TransformerConfig

    local = dict(d_model=32, n_heads=2)
    network = LSTConfig(
        encoder=TransformerConfig(n_layers=1, window=16, **local),
        global_model=TransformerConfig(n_layers=1, d_model=48, n_heads=2),
        decoder=TransformerConfig(n_layers=1, window=16, **local),
    )
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", tiny_corpus, network)
    copy = tmp_path / "elsewhere" / "model.ckpt"
    copy.parent.mkdir()
    copy.write_bytes(ckpt.read_bytes())
    monkeypatch.chdir(copy.parent)
    args = ["sample", "--ckpt", "model.ckpt", "--text", "the old man", "--max_new_tokens", "6"]
    assert main(args) == 0
    assert "continuation:" in capsys.readouterr().out
    assert sorted(p.name for p in copy.parent.iterdir()) == ["model.ckpt"]


def test_a_second_fit_starts_a_new_version_and_a_resume_appends(
    tiny_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    size = [*SIZES["tiny_baseline"], "--trainer.max_steps=3"]
    fit("tiny_baseline", tiny_corpus, tmp_path, *size)
    first = records(tmp_path / "tiny_baseline" / "run")
    fit("tiny_baseline", tiny_corpus, tmp_path, *size)
    assert "starting a new one in" in caplog.text and "run-2" in caplog.text
    assert (tmp_path / "tiny_baseline" / "run-2" / "checkpoints" / "last.ckpt").is_file()
    last = tmp_path / "tiny_baseline" / "run" / "checkpoints" / "last.ckpt"
    fit(
        "tiny_baseline",
        tiny_corpus,
        tmp_path,
        *SIZES["tiny_baseline"],
        "--trainer.max_steps=5",
        f"--ckpt_path={last}",
    )
    assert "resuming" in caplog.text
    after = records(tmp_path / "tiny_baseline" / "run")
    assert all(after[name] == data for name, data in first.items()), "resume rewrote a file"
    assert "config-2.yaml" in after, "the resumed run's config is kept beside the first one"
    assert not (tmp_path / "tiny_baseline" / "run-3").exists()


def test_one_flag_style() -> None:
    assert normalise_flags(["--ckpt", "x", "--trainer.max_steps=3"], lightning=True) == [
        "--ckpt_path",
        "x",
        "--trainer.max_steps=3",
    ]
    assert normalise_flags(["--ckpt_path=x", "--data_dir", "d"], lightning=False) == [
        "--ckpt=x",
        "--data-dir",
        "d",
    ]


def test_kit_tools_are_subcommands(capsys) -> None:
    for command in (
        ["eval"],
        ["sample"],
        ["export"],
        ["reproduce"],
        ["stages"],
        ["corpus", "embedded"],
    ):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        assert "usage:" in capsys.readouterr().out
    assert main(["corpus", "nothing"]) == 2


def test_baseline_config_yaml_reparses(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    """The saved config of a baseline run parses back as a baseline (it used to fail with "Does
    not validate against any of the Union subtypes")."""
    fit("tiny_baseline", tiny_corpus, tmp_path, *SIZES["tiny_baseline"], "--trainer.max_steps=3")
    saved = tmp_path / "tiny_baseline" / "run" / "config.yaml"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(saved), "--print_config"])
    assert done.value.code in (0, None)
    assert "class_path: lst_lightning.model.BaselineConfig" in capsys.readouterr().out
    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.model import SpeechLLM

    module = SpeechTextLM.load_from_checkpoint(saved.parent / "checkpoints" / "last.ckpt")
    assert isinstance(module.net, SpeechLLM)
    assert ROOT.is_dir() and SMALL
