"""Model code: plain PyTorch (config dataclasses and ``nn.Module``s), no Lightning."""

from .baseline import SpeechLLM
from .config import BaselineConfig, LSTConfig, TransformerConfig, lst_preset
from .lst import LST

__all__ = ["LST", "BaselineConfig", "LSTConfig", "SpeechLLM", "TransformerConfig", "lst_preset"]


def build_model(config: LSTConfig | BaselineConfig) -> LST | SpeechLLM:
    """The model a config describes."""
    return LST(config) if isinstance(config, LSTConfig) else SpeechLLM(config)
