"""Lightning callbacks of the kit (the Lightning layer, like :mod:`lst_lightning.lit`).

- :mod:`curriculum`: drives the patching schedule from the training step and logs patching
  statistics.
- :mod:`budget`: stop at a FLOPs budget (compute-controlled) or a token budget (data-controlled).
- :mod:`throughput`: Lightning's ThroughputMonitor with analytic FLOPs and a peak-FLOPs override.
- :mod:`eval_callback`: zero-shot benchmark accuracy during training and at test time.
"""

from lst_lightning.callbacks.curriculum import CurriculumCallback

__all__ = ["CurriculumCallback"]
