"""Lightning callbacks of the kit (the Lightning layer, like :mod:`lst_lightning.lit`).

- :mod:`curriculum`: drives the patching schedule from the training step and logs patching
  statistics.
- :mod:`budget`: stop at a FLOPs budget (compute-controlled) or a token budget (data-controlled).
- :mod:`throughput`: Lightning's ThroughputMonitor with analytic FLOPs and a peak-FLOPs override.
- :mod:`eval_callback`: zero-shot benchmark accuracy during training and at test time.
- :mod:`run_records`: a validation at the end of fit, evaluation logged at the checkpoint's step,
  ``val/loss`` as the HParams metric, example documents as TensorBoard text.
- :mod:`console`: a step progress bar, a model summary with the analytic FLOPs, no noise.
- :mod:`task_samples`: a fine-tune's decoded held-out samples (TTS audio, ASR text) in TensorBoard.
"""

from lst_lightning.callbacks.curriculum import CurriculumCallback

__all__ = ["CurriculumCallback"]
