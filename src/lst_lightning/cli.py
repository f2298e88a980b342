"""``lst-lightning fit|validate|test --config experiments/X.yaml`` (LightningCLI).

Beyond plain LightningCLI it:
- links the datamodule's vocabulary size into the model (``data.vocab_size -> model.vocab_size``);
- gives the checkpoint callback its own ``checkpoint:`` key (last checkpoint every 100 steps by
  default), so an experiment's ``callbacks`` list never has to repeat it, and always adds a
  learning-rate monitor;
- always adds the :class:`~lst_lightning.callbacks.CurriculumCallback` (key ``curriculum:``), which
  drives the data's patching schedule from the training step and logs ``patching/*`` statistics;
- always adds the :class:`~lst_lightning.callbacks.eval_callback.BenchmarkEvalCallback` (key
  ``benchmarks:``): ``lst-lightning test`` scores the embedded benchmark sets in all four
  directions, and ``--benchmarks.every_n_steps N`` adds accuracy curves during ``fit``;
- picks ``bf16-mixed`` precision where the GPU supports it when ``trainer.precision`` is unset.
"""

from __future__ import annotations

import torch
from jsonargparse import set_parsing_settings
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .callbacks.curriculum import CurriculumCallback
from .callbacks.eval_callback import BenchmarkEvalCallback
from .lit.datamodule import SpeechTextDataModule
from .lit.module import SpeechTextLM
from .model import BaselineConfig, LSTConfig


def default_precision() -> str:
    """bf16 autocast on GPUs that support it (the paper's setting), full fp32 elsewhere."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class LSTLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 100})
        parser.add_lightning_class_args(CurriculumCallback, "curriculum")
        parser.add_lightning_class_args(BenchmarkEvalCallback, "benchmarks")
        parser.link_arguments("data.vocab_size", "model.vocab_size", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.precision is None:
            config.trainer.precision = default_precision()


def main(args: list[str] | None = None) -> None:
    # the config dataclasses document each field in a docstring under it: show those in --help
    # and --print_config=comments
    set_parsing_settings(docstring_parse_attribute_docstrings=True, subclasses_enabled=[LSTConfig, BaselineConfig])
    LSTLightningCLI(
        SpeechTextLM,
        SpeechTextDataModule,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [LearningRateMonitor(logging_interval="step")]},
        args=args,
    )


if __name__ == "__main__":
    main()
