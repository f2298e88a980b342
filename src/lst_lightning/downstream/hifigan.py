"""Units -> waveform for HuBERT units: a unit HiFi-GAN generator loaded from a local folder.

The real listening path for HuBERT units is a HiFi-GAN trained to speak them (the unit vocoders of
speech-resynthesis / fairseq's ``CodeHiFiGANVocoder``): a unit embedding table, a 7-tap input
convolution, transposed-convolution upsamplers each followed by multi-receptive-field residual
blocks, and a 7-tap output convolution with ``tanh``. This module builds that generator from the
``config.json`` such vocoders ship with and loads its weights; weight-normalised parameters
(``weight_g`` / ``weight_v``) are folded into plain weights at load time (inference only).

A folder holds ``config.json`` and one weights file: ``generator.pt``, or a single ``*.pt`` /
``g_*`` checkpoint, either a state dict or ``{"generator": state_dict}``. Supported: the plain unit
vocoder (``resblock: "1"``, no f0, speaker or duration-predictor inputs; a config asking for those
is refused by name). The product of ``upsample_rates`` is the samples per unit: 640 for the kit's
25 Hz units at 16 kHz (a 50 Hz vocoder has 320). No weights are available offline; the tests save
a randomly initialised generator and load it back through this path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lst_lightning.data.speech.audio import SAMPLE_RATE, resample

LRELU_SLOPE = 0.1
UNSUPPORTED = ("f0", "multispkr", "dur_prediction", "dur_predictor_params")


@dataclass(frozen=True)
class HiFiGANConfig:
    """The generator's shape, as in a unit vocoder's ``config.json`` (speech-resynthesis names)."""

    num_embeddings: int = 501
    """Units the embedding table covers (the codebook size; paper: 501)."""
    embedding_dim: int = 128
    """Width of a unit embedding (the input channels of ``conv_pre``, ``model_in_dim``)."""
    upsample_rates: tuple[int, ...] = (5, 4, 4, 4, 2)
    """Upsampling factors; their product is the samples per unit (640: 25 Hz units at 16 kHz)."""
    upsample_kernel_sizes: tuple[int, ...] = (11, 8, 8, 8, 4)
    """Kernel of each transposed convolution."""
    upsample_initial_channel: int = 512
    """Channels after ``conv_pre``; halved by every upsampler."""
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    """Kernels of the parallel residual blocks after each upsampler."""
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    """Dilations inside each residual block."""
    sampling_rate: int = SAMPLE_RATE
    """Output sample rate (resampled to 16 kHz when different)."""

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must match")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            raise ValueError("upsample_initial_channel must halve cleanly at every upsampler")

    @property
    def samples_per_unit(self) -> int:
        return math.prod(self.upsample_rates)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "config.json") -> HiFiGANConfig:
        asked = [k for k in UNSUPPORTED if data.get(k)]
        if asked:
            raise ValueError(
                f"{where}: {', '.join(asked)} inputs are not supported (plain unit HiFi-GAN only)"
            )
        if str(data.get("resblock", "1")) != "1":
            raise ValueError(f"{where}: only resblock '1' is supported, got {data['resblock']!r}")
        names = {f for f in cls.__dataclass_fields__}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        if "model_in_dim" in data:
            values["embedding_dim"] = data["model_in_dim"]
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            if key in values:
                values[key] = tuple(values[key])
        if "resblock_dilation_sizes" in values:
            values["resblock_dilation_sizes"] = tuple(
                tuple(d) for d in values["resblock_dilation_sizes"]
            )
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["model_in_dim"] = self.embedding_dim
        out["resblock"] = "1"
        return out


class ResBlock(nn.Module):
    """HiFi-GAN's residual block type 1: dilated convolution then plain convolution, three times."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class UnitHiFiGAN(nn.Module):
    """Unit ids ``[batch, frames]`` -> waveform ``[batch, frames * samples_per_unit]``."""

    def __init__(self, config: HiFiGANConfig) -> None:
        super().__init__()
        self.config = config
        self.dict = nn.Embedding(config.num_embeddings, config.embedding_dim)
        ch = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.embedding_dim, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(
            zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)
        ):
            cin, cout = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2))
            for kernel, dil in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(ResBlock(cout, kernel, dil))
        self.conv_post = nn.Conv1d(ch // 2 ** len(config.upsample_rates), 1, 7, padding=3)

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(self.dict(units).transpose(1, 2))
        n = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        x = torch.tanh(self.conv_post(F.leaky_relu(x)))
        return x.squeeze(1)[:, : units.shape[1] * self.config.samples_per_unit]


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every ``X.weight_g`` / ``X.weight_v`` pair (``torch.nn.utils.weight_norm``, dim 0)
    and every ``X.parametrizations.weight.original0/1`` pair by the plain ``X.weight``."""
    out: dict[str, torch.Tensor] = {}
    pairs = {
        ".weight_g": ".weight_v",
        ".parametrizations.weight.original0": ".parametrizations.weight.original1",
    }
    for key, value in state.items():
        for g_suffix, v_suffix in pairs.items():
            if key.endswith(v_suffix):
                break
            if key.endswith(g_suffix):
                base = key[: -len(g_suffix)]
                v = state[base + v_suffix]
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
                out[base + ".weight"] = value * v / norm
                break
        else:
            out[key] = value
    return out


def _weights_file(folder: Path) -> Path:
    if (folder / "generator.pt").is_file():
        return folder / "generator.pt"
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix == ".pt" or p.name.startswith("g_"))
    )
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise FileNotFoundError(
            f"{folder}: expected generator.pt or exactly one *.pt / g_* weights file (found {names})"
        )
    return found[0]


@dataclass
class HiFiGANVocoder:
    """A loaded unit HiFi-GAN as a units -> 16 kHz waveform callable."""

    model: UnitHiFiGAN
    source: str = ""
    device: str = "cpu"
    _rate: int = field(init=False)

    def __post_init__(self) -> None:
        self.model = self.model.eval().to(self.device)
        self._rate = self.model.config.sampling_rate

    @property
    def num_units(self) -> int:
        return self.model.config.num_embeddings

    @property
    def samples_per_unit(self) -> int:
        """Output samples per unit at 16 kHz."""
        return self.model.config.samples_per_unit * SAMPLE_RATE // self._rate

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> HiFiGANVocoder:
        folder = Path(folder)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"no unit HiFi-GAN config at {config_path}")
        try:
            config = HiFiGANConfig.from_json(json.loads(config_path.read_text()), str(config_path))
        except json.JSONDecodeError as e:
            raise ValueError(f"{config_path}: not valid JSON ({e.msg})") from None
        weights = _weights_file(folder)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "generator" in state:
            state = state["generator"]
        model = UnitHiFiGAN(config)
        try:
            missing, unexpected = model.load_state_dict(fold_weight_norm(state), strict=False)
        except RuntimeError as e:  # shape mismatches
            raise ValueError(f"{weights} does not fit {config_path}: {e}") from None
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not fit {config_path}: missing {missing[:4]}, unexpected "
                f"{unexpected[:4]}"
            )
        return cls(model, source=str(weights), device=device)

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` + ``generator.pt`` (the layout :meth:`from_folder` reads)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.model.config.to_json(), indent=2))
        torch.save({"generator": self.model.state_dict()}, folder / "generator.pt")
        return folder

    @torch.no_grad()
    def __call__(self, units: np.ndarray | list[int] | tuple[int, ...]) -> np.ndarray:
        ids = torch.as_tensor(np.asarray(units, dtype=np.int64))
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError("a vocoder speaks a non-empty 1-D sequence of units")
        bad = ids[(ids < 0) | (ids >= self.num_units)]
        if len(bad):
            raise ValueError(f"unit {int(bad[0])} is outside the vocoder's [0, {self.num_units})")
        wav = self.model(ids[None].to(self.device))[0].float().cpu().numpy()
        return resample(wav, self._rate, SAMPLE_RATE) if self._rate != SAMPLE_RATE else wav
