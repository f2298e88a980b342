"""``lst-lightning``: one command for the whole kit.

``lst-lightning fit|validate|test --config experiments/X.yaml`` is a LightningCLI; the kit's other
tools are subcommands of the same command (the ``python -m`` forms keep working):

=====================================  ====================================================
``lst-lightning eval --ckpt X``        zero-shot benchmarks (:mod:`lst_lightning.eval`)
``lst-lightning sample --ckpt X``      continue a prompt (:mod:`lst_lightning.sample`)
``lst-lightning export --ckpt X``      Hugging Face folder (:mod:`lst_lightning.hub.export`)
``lst-lightning reproduce``            the paper's main table (:mod:`lst_lightning.reproduce`)
``lst-lightning stages STAGE``         speech data stages (:mod:`lst_lightning.data.speech.stages`)
``lst-lightning corpus embedded``      build the embedded corpus (:mod:`...data.corpora.embedded`)
``lst-lightning corpus generated``     build the generated corpus (:mod:`...data.corpora.build`)
``lst-lightning corpus benchmarks``    build the benchmark sets (:mod:`lst_lightning.eval.build_sets`)
=====================================  ====================================================

One flag style: ``--ckpt`` names a checkpoint everywhere (``--ckpt_path`` is accepted too), and the
kit's tools take ``--data-dir`` or ``--data_dir`` alike.

Beyond plain LightningCLI, ``fit|validate|test``:
- link the datamodule's vocabulary size into the model (``data.vocab_size -> model.vocab_size``);
- give the checkpoint callback its own ``checkpoint:`` key (last checkpoint every 100 steps by
  default, and at the step where training ends:
  :class:`~lst_lightning.lit.checkpointing.FinalStepCheckpoint`), so an experiment's ``callbacks`` list never has to repeat it, and always add a
  learning-rate monitor;
- always add the :class:`~lst_lightning.callbacks.CurriculumCallback` (key ``curriculum:``), the
  :class:`~lst_lightning.callbacks.eval_callback.BenchmarkEvalCallback` (key ``benchmarks:``;
  ``lst-lightning test`` scores the benchmark sets, ``--benchmarks.every_n_steps N`` adds
  accuracy curves during ``fit``), the
  :class:`~lst_lightning.callbacks.throughput.SpeechThroughputMonitor` (key ``throughput:``;
  tokens/s, speech seconds/s, FLOPs/s, MFU on GPUs) and
  :class:`~lst_lightning.callbacks.run_records.RunRecords` (key ``records:``);
- keep run records append-only (:mod:`lst_lightning.runs`): ``fit`` on an existing run starts the
  next version unless ``--ckpt_path`` resumes it, and ``validate``/``test`` of a checkpoint log at
  its step into ``<run>/validate/step_<N>/`` (``test/...``); both say where they write;
- ``validate``/``test`` need only ``--ckpt_path``: the configuration comes from the run's
  ``config.yaml`` beside the checkpoint (or from the checkpoint itself), with the corpus folder
  the checkpoint records;
- pick ``bf16-mixed`` precision where the GPU supports it when ``trainer.precision`` is unset;
- write every checkpoint atomically and refuse non-finite ones
  (:class:`~lst_lightning.lit.checkpointing.AtomicCheckpointIO`);
- print a quiet console (:mod:`lst_lightning.callbacks.console`).
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import set_parsing_settings
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from .callbacks.console import AnalyticModelSummary, StepProgressBar, quiet_console
from .callbacks.curriculum import CurriculumCallback
from .callbacks.eval_callback import BenchmarkEvalCallback
from .callbacks.run_records import RunRecords
from .callbacks.task_samples import TaskSamples
from .callbacks.throughput import SpeechThroughputMonitor
from .lit.checkpointing import FinalStepCheckpoint, install_atomic_checkpoint_io
from .lit.datamodule import SpeechTextDataModule
from .lit.module import SpeechTextLM
from .model import BaselineConfig, LSTConfig
from .runs import next_version, record_folder

KIT_COMMANDS: dict[str, str] = {
    "eval": "lst_lightning.eval.__main__",
    "sample": "lst_lightning.sample",
    "export": "lst_lightning.hub.export",
    "reproduce": "lst_lightning.reproduce",
    "downstream": "lst_lightning.downstream.run",
    "stages": "lst_lightning.data.speech.stages",
}
"""Subcommand -> module whose ``main(argv) -> int`` runs it."""
CORPUS_COMMANDS: dict[str, str] = {
    "embedded": "lst_lightning.data.corpora.embedded",
    "generated": "lst_lightning.data.corpora.build",
    "benchmarks": "lst_lightning.eval.build_sets",
}
"""``lst-lightning corpus <name>`` -> module."""
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def default_precision() -> str:
    """bf16 autocast on GPUs that support it (the paper's setting), full fp32 elsewhere."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class RunConfigSaver(SaveConfigCallback):
    """Saves the run's configuration without ever replacing one: ``config.yaml`` in a new run,
    ``config-2.yaml``, ``config-3.yaml``, ... when a resumed run already has one."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        log_dir = trainer.log_dir
        if log_dir is not None:
            name, k = "config.yaml", 2
            while (Path(log_dir) / name).exists():
                name, k = f"config-{k}.yaml", k + 1
            self.config_filename = name
        self.overwrite = False
        super().setup(trainer, pl_module, stage)


class LSTLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(FinalStepCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 100})
        parser.add_lightning_class_args(CurriculumCallback, "curriculum")
        parser.add_lightning_class_args(BenchmarkEvalCallback, "benchmarks")
        parser.add_lightning_class_args(SpeechThroughputMonitor, "throughput")
        parser.add_lightning_class_args(RunRecords, "records")
        parser.add_lightning_class_args(TaskSamples, "samples")
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any):
        """The console callbacks join the trainer unless the config turns the bar/summary off."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        console = []
        if trainer_config.get("enable_progress_bar") is not False:
            console.append(StepProgressBar())
        if trainer_config.get("enable_model_summary") is not False:
            console.append(AnalyticModelSummary())
        self.trainer_defaults = {
            **self.trainer_defaults,
            "callbacks": [*self.trainer_defaults.get("callbacks", []), *console],
        }
        trainer = super().instantiate_trainer(**kwargs)
        install_atomic_checkpoint_io(trainer)
        return trainer

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.precision is None:
            config.trainer.precision = default_precision()
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # resuming or evaluating unpickles no code either
        logger = _logger_args(config.trainer.logger)
        if logger is not None and "TensorBoardLogger" in str(config.trainer.logger.class_path):
            logger.default_hp_metric = False  # RunRecords registers val/loss as the HParams metric
        if self.subcommand == "fit":
            plan_fit_run(config, logger)
        elif self.subcommand in ("validate", "test"):
            plan_evaluation_run(config, logger, self.subcommand)


def _logger_args(logger: Any) -> Any | None:
    """The init args of a single configured logger with ``save_dir``/``name``/``version``."""
    init = getattr(logger, "init_args", None)
    if init is None or not all(hasattr(init, k) for k in ("save_dir", "name", "version")):
        return None
    return init


def _run_of(ckpt_path: str | None) -> Path | None:
    """``<run>`` of a checkpoint at ``<run>/checkpoints/x.ckpt``."""
    if ckpt_path in (None, "last", "best", "hpc", "registry"):
        return None
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def plan_fit_run(config: Any, logger: Any | None) -> None:
    """New run: a fresh version folder (the next one when the configured one holds a run).
    Resume (``--ckpt_path``): the run the checkpoint belongs to, appended to."""
    if logger is None or logger.version is None or logger.name is None:
        return
    parent = Path(logger.save_dir) / logger.name
    run = _run_of(config.ckpt_path)
    if config.ckpt_path is not None:
        if run is not None and run.parent.resolve() == parent.resolve():
            logger.version = run.name
        rank_zero_info(f"resuming {config.ckpt_path}: appending to {parent / str(logger.version)}")
        return
    version = next_version(parent, str(logger.version))
    if version != str(logger.version):
        rank_zero_info(
            f"{parent / str(logger.version)} already holds a run: starting a new one in "
            f"{parent / version} (to resume the old one instead, add --ckpt_path last)"
        )
    else:
        rank_zero_info(f"new run in {parent / version}")
    logger.version = version


def plan_evaluation_run(config: Any, logger: Any | None, stage: str) -> None:
    """``validate``/``test`` of a checkpoint write into a new ``<run>/<stage>/step_<N>/``."""
    from .hub.checkpoint import read_checkpoint

    ckpt = config.ckpt_path
    if ckpt is None or logger is None:
        return
    if ckpt in ("last", "best"):
        if ckpt == "best" or logger.name is None or logger.version is None:
            return  # Lightning resolves it against the checkpoint callback
        ckpt = str(
            Path(logger.save_dir) / logger.name / str(logger.version) / "checkpoints" / "last.ckpt"
        )
        config.ckpt_path = ckpt
    run = _run_of(ckpt) or Path(ckpt).parent
    if getattr(config, "checkpoint", None) is not None and config.checkpoint.dirpath is None:
        config.checkpoint.dirpath = str(run / "checkpoints")  # as in training: its state reloads
    step = int(read_checkpoint(ckpt).get("global_step", 0))
    folder = record_folder(run, stage, step)
    logger.save_dir, logger.name, logger.version = str(folder.parent), "", folder.name
    rank_zero_info(f"{stage} of {ckpt} (step {step}): logging into {folder}")


def checkpoint_config_args(subcommand: str, argv: list[str]) -> list[str]:
    """For ``validate``/``test`` given a checkpoint but no ``--config``: the run's ``config.yaml``
    beside the checkpoint (else a config rebuilt from the checkpoint), with the corpus folder the
    checkpoint records and no corpus building."""
    from .hub.checkpoint import KIT_KEY, read_checkpoint

    ckpt = _flag_value(argv, "--ckpt_path")
    if ckpt is None or any(a in ("--config", "-c") or a.startswith("--config=") for a in argv):
        return argv
    if ckpt in ("last", "best"):
        raise SystemExit(
            f"lst-lightning {subcommand}: --ckpt {ckpt} needs --config (or give a path)"
        )
    try:
        raw = read_checkpoint(ckpt)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"lst-lightning {subcommand}: {e}") from None
    record = raw.get(KIT_KEY) or {}
    extra: list[str] = []
    run = _run_of(ckpt)
    if run is not None and (run / "config.yaml").is_file():
        extra += ["--config", str(run / "config.yaml")]
    else:
        hp = raw.get("hyper_parameters") or {}
        data = {k: v for k, v in (raw.get("datamodule_hyper_parameters") or {}).items()}
        network = record.get("network") or hp.get("network")
        model = {"network": network, "optim": hp.get("optim", {})}
        doc = {"model": model, "data": data}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(doc, f)
        extra += ["--config", f.name]
    if record.get("data_dir"):
        extra += [f"--data.corpus.data_dir={record['data_dir']}"]
    extra += ["--data.corpus.build=none"]
    return [subcommand, *extra, *argv[1:]]


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_config_files(subcommand: str, argv: list[str]) -> None:
    """Stop with one line (not jsonargparse's whole usage) when a ``--config`` file is missing,
    naming the file and the shipped experiments."""
    for i, a in enumerate(argv):
        if a in ("--config", "-c") and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith("--config="):
            path = a.partition("=")[2]
        else:
            continue
        if not Path(path).is_file():
            shipped = sorted(p.stem for p in Path("experiments").glob("*.yaml"))
            hint = f"; the experiments are: {' '.join(shipped)}" if shipped else ""
            raise SystemExit(f"lst-lightning {subcommand}: --config {path}: no such file{hint}")


def normalise_flags(argv: list[str], lightning: bool) -> list[str]:
    """One flag style: ``--ckpt`` and ``--ckpt_path`` both name the checkpoint; for the kit's own
    tools ``--some_option`` is read as ``--some-option``."""
    out = []
    for a in argv:
        name, eq, value = a.partition("=")
        if lightning and name == "--ckpt":
            name = "--ckpt_path"
        elif not lightning and name.startswith("--") and "." not in name:
            name = "--ckpt" if name == "--ckpt_path" else name.replace("_", "-")
        out.append(name + eq + value)
    return out


def run_tool(module: str, argv: list[str]) -> int:
    return int(importlib.import_module(module).main(argv) or 0)


def main(args: list[str] | None = None) -> int | None:
    argv = list(sys.argv[1:] if args is None else args)
    command = argv[0] if argv else None
    if command in KIT_COMMANDS:
        code = run_tool(KIT_COMMANDS[command], normalise_flags(argv[1:], lightning=False))
        return code if args is not None else sys.exit(code)
    if command == "corpus":
        if len(argv) < 2 or argv[1] not in CORPUS_COMMANDS:
            print(
                f"usage: lst-lightning corpus {{{','.join(CORPUS_COMMANDS)}}} ...", file=sys.stderr
            )
            return 2 if args is not None else sys.exit(2)
        code = run_tool(CORPUS_COMMANDS[argv[1]], normalise_flags(argv[2:], lightning=False))
        return code if args is not None else sys.exit(code)
    quiet_console()
    argv = normalise_flags(argv, lightning=True)
    check_config_files(command or "fit", argv)
    if command in ("validate", "test"):
        argv = checkpoint_config_args(command, argv)
    # the config dataclasses document each field in a docstring under it: show those in --help
    # and --print_config=comments; the network keeps its class in saved configs (class_path), so
    # a baseline's config.yaml re-parses as a baseline
    set_parsing_settings(
        docstring_parse_attribute_docstrings=True, subclasses_enabled=[LSTConfig, BaselineConfig]
    )
    if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
        sys.argv[1:] = argv
    LSTLightningCLI(
        SpeechTextLM,
        SpeechTextDataModule,
        save_config_callback=RunConfigSaver,
        trainer_defaults={"callbacks": [LearningRateMonitor(logging_interval="step")]},
        args=None if args is None else argv,
    )
    return None


if __name__ == "__main__":
    main()
