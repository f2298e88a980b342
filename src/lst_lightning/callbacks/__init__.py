"""Lightning callbacks of the kit (the Lightning layer, like :mod:`lst_lightning.lit`).

- :mod:`curriculum`: drives the patching schedule from the training step and logs patching
  statistics.
"""

from lst_lightning.callbacks.curriculum import CurriculumCallback

__all__ = ["CurriculumCallback"]
