"""TensorBoard samples of a fine-tune: a few held-out prompts decoded at every validation.

For a TTS fine-tune (``data.task.name: tts``) the generated units of ``num_prompts`` fixed
held-out prompts go through the corpus's codebook vocoder into ``add_audio`` (``samples/tts_<i>``,
16 kHz), next to the same utterances' ground-truth units through the same vocoder
(``samples/tts_<i>_reference``, logged once) so the vocoder's own loss can be heard; the prompt
text is logged as ``samples/tts_<i>_text``. For an ASR fine-tune the decoded transcript and the
reference go to ``add_text`` (``samples/asr_<i>``). Decoding is the evaluation's
(:func:`lst_lightning.downstream.decode.decode_tasks`: greedy, restricted to the answer's
modality), on rank 0 only, after the validation loss.

Cheap and optional: ``samples: {num_prompts: 2}`` in an experiment YAML turns it on (0, the
default, is off; so is pre-training, where there is no task). It costs two short decodes and, for
TTS, one vocoder build (per-band levels from up to 50 of the corpus's audio utterances) per run.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from ..data.speech.audio import SAMPLE_RATE
from ..downstream.decode import decode_tasks, transcript, units
from ..downstream.tasks import task_documents


class TaskSamples(Callback):
    """Logs decoded held-out samples of a fine-tune to TensorBoard (module docstring)."""

    def __init__(self, num_prompts: int = 0, vocoder: str | None = None) -> None:
        """``num_prompts``: held-out utterances decoded at each validation (the first ones of
        ``valid.jsonl``); 0 turns the samples off. ``vocoder``: a saved Griffin-Lim ``.pt`` or a
        unit HiFi-GAN folder (default: the corpus's codebook vocoder)."""
        if num_prompts < 0:
            raise ValueError(f"samples.num_prompts must be >= 0, got {num_prompts}")
        self.num_prompts = num_prompts
        self.vocoder_spec = vocoder
        self._vocoder: Any = None
        self._references_logged = False

    def _documents(self, datamodule: Any):
        from ..lit.task_datamodule import split_items

        items = split_items(datamodule.data_dir, "valid", None, datamodule.num_units)
        return task_documents(
            datamodule.task.name, items[: self.num_prompts], datamodule.token_space
        )

    def _vocode(self, datamodule: Any, unit_ids: tuple[int, ...]) -> torch.Tensor | None:
        """The waveform ``[1, n]`` of ``unit_ids``; ``None`` when no vocoder can be had (e.g. the
        generated corpus has no unit codebook), said once."""
        from ..downstream.listen import load_vocoder

        if self._vocoder is None:
            try:
                self._vocoder = load_vocoder(self.vocoder_spec, datamodule.data_dir)
            except (FileNotFoundError, ValueError) as e:
                rank_zero_warn(f"samples: TTS samples are logged as text only, no vocoder: {e}")
                self._vocoder = False
        if self._vocoder is False:
            return None
        if not unit_ids:
            return torch.zeros(1, SAMPLE_RATE // 10)
        wav = np.asarray(self._vocoder(np.asarray(unit_ids, dtype=np.int64)), dtype=np.float32)
        return torch.from_numpy(wav).reshape(1, -1)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.num_prompts == 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        task = getattr(getattr(datamodule, "task", None), "name", None)
        experiment = getattr(trainer.logger, "experiment", None)
        if task is None or not hasattr(experiment, "add_audio"):
            return
        docs = self._documents(datamodule)
        space, step = datamodule.token_space, trainer.global_step
        was_training = pl_module.training
        decoded = decode_tasks(
            pl_module.net, docs, space, datamodule.eval_patch_size(pl_module.is_lst)
        )
        pl_module.train(was_training)
        for i, (doc, out) in enumerate(zip(docs, decoded, strict=True)):
            stop = "stopped" if out.stopped else f"hit the {out.limit}-token limit"
            if task == "asr":
                reference = space.decode_text(list(doc.answer[:-1]))
                text = f"reference: {reference}\n\nhypothesis: {transcript(space, out)}\n\n({stop})"
                experiment.add_text(f"samples/asr_{i}", text, step)
                continue
            prompt = space.decode_text([t for t in doc.prompt if space.is_text(t)])
            experiment.add_text(f"samples/tts_{i}_text", f"{prompt}\n\n({stop})", step)
            audio = self._vocode(datamodule, units(space, out))
            if audio is None:
                continue
            experiment.add_audio(f"samples/tts_{i}", audio, step, sample_rate=SAMPLE_RATE)
            if not self._references_logged:
                truth = space.decode_units([t for t in doc.answer if space.is_unit(t)])
                ref = self._vocode(datamodule, truth)
                experiment.add_audio(
                    f"samples/tts_{i}_reference", ref, step, sample_rate=SAMPLE_RATE
                )
        self._references_logged = True
