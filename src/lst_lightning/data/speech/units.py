"""Speech units: audio -> one discrete unit per 25 Hz frame, behind one interface.

The paper tokenises speech with HuBERT features quantised by a 501-entry k-means codebook at 25 Hz,
and never deduplicates repeated units (DESIGN 1). Two tokenizers implement :class:`UnitTokenizer`:

- :class:`MelKMeansUnits`, the offline default: log-mel (or MFCC) features at 25 Hz, normalised,
  quantised by a k-means codebook the kit trains on the corpus. It needs no weights.
- :class:`HubertKMeansUnits`: a user-supplied HuBERT (a transformers ``HubertModel`` folder or a
  torchaudio ``hubert_base`` weights file), one transformer layer's 50 Hz features averaged over
  adjacent pairs to 25 Hz, and a k-means codebook (the user's ``.npy`` / ``.pt``, or trained here).

Frame convention, shared by every tokenizer and aligner in the kit: audio is mono float32 at
16 kHz, one frame is 640 samples (40 ms), a waveform of ``n`` samples has exactly ``n // 640``
frames, and frame ``i`` covers samples ``[640 i, 640 (i + 1))``. A time ``t`` in seconds is frame
``round(t * 25)``.

A tokenizer is saved to one file (``save``, atomic) and reopened with :func:`load_unit_tokenizer`.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torchaudio.transforms as T

from lst_lightning.data.records import DEFAULT_NUM_UNITS, write_bytes_atomic
from lst_lightning.data.speech.audio import SAMPLE_RATE, resample
from lst_lightning.data.speech.kmeans import nearest_centroid, train_kmeans

FRAME_RATE_HZ = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE_HZ
"""640 samples at 16 kHz: a waveform of ``n`` samples has ``n // 640`` unit frames."""
DEFAULT_HUBERT_LAYER = 6
"""Layer 6 of HuBERT base is the usual choice for unit discovery (GSLM); configurable."""
DEFAULT_MAX_FIT_FRAMES = 200_000
"""k-means is trained on at most this many frames (about 2.2 h at 25 Hz), drawn with the seed."""


def num_frames(num_samples: int) -> int:
    """Unit frames of a 16 kHz waveform: ``num_samples // 640``."""
    return num_samples // SAMPLES_PER_FRAME


def time_to_frame(seconds: float) -> int:
    """The 25 Hz frame index of a time in seconds: ``round(seconds * 25)``."""
    return round(seconds * FRAME_RATE_HZ)


@runtime_checkable
class UnitTokenizer(Protocol):
    """Audio -> units: ``num_units`` codebook entries, one int64 unit per 25 Hz frame, never deduplicated."""

    num_units: int

    def __call__(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Units of a mono waveform (any sample rate; resampled to 16 kHz): ``n16k // 640`` of them."""
        ...


def _as_waveform(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate a mono waveform and bring it to 16 kHz float32."""
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(
            f"a unit tokenizer takes a mono 1-D waveform, got shape {waveform.shape} "
            "(downmix first: lst_lightning.data.speech.audio.to_mono)"
        )
    if not np.issubdtype(waveform.dtype, np.floating):
        raise ValueError(f"waveform must be floating point in [-1, 1], got dtype {waveform.dtype}")
    if not np.isfinite(waveform).all():
        raise ValueError("waveform contains NaN or infinite samples")
    return resample(waveform.astype(np.float32, copy=False), sample_rate, SAMPLE_RATE)


def _fix_length(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Trim or edge-pad ``[T, D]`` features to exactly ``frames`` rows."""
    if features.shape[0] >= frames:
        return features[:frames]
    if features.shape[0] == 0:
        return features.new_zeros(frames, features.shape[1])
    pad = features[-1:].expand(frames - features.shape[0], -1)
    return torch.cat([features, pad])


def _sample_frames(chunks: list[torch.Tensor], max_frames: int, seed: int) -> torch.Tensor:
    x = torch.cat(chunks)
    if x.shape[0] > max_frames:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        x = x[keep[:max_frames].sort().values]
    return x


def _save_state(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


# -- the offline default: log-mel / MFCC + k-means --------------------------------------------------------------


@dataclass(frozen=True)
class MelFeatureConfig:
    """Acoustic features of :class:`MelKMeansUnits` (no paper value: the paper uses HuBERT)."""

    kind: str = "logmel"
    """``"logmel"`` (log mel filterbank energies) or ``"mfcc"`` (their DCT)."""
    n_mels: int = 40
    """Mel bands."""
    n_mfcc: int = 13
    """Cepstral coefficients kept when ``kind == "mfcc"``."""
    window: int = 1024
    """Analysis window in samples (64 ms), centred on each 40 ms frame."""
    context: int = 1
    """Neighbouring frames stacked on each side (1: previous, current, next), so units see dynamics."""
    utterance_cmvn: bool = True
    """Per-utterance mean/variance normalisation, which removes much of the speaker and channel."""

    def __post_init__(self) -> None:
        if self.kind not in ("logmel", "mfcc"):
            raise ValueError(f"MelFeatureConfig.kind must be 'logmel' or 'mfcc', got {self.kind!r}")
        if self.window < SAMPLES_PER_FRAME:
            raise ValueError(f"MelFeatureConfig.window must be >= {SAMPLES_PER_FRAME} samples")
        if self.context < 0 or self.n_mels < 1 or not 1 <= self.n_mfcc <= self.n_mels:
            raise ValueError(f"invalid MelFeatureConfig: {self}")


class MelFeatures:
    """Waveform -> ``[n // 640, dim]`` normalised features at 25 Hz (before the global standardisation)."""

    def __init__(self, config: MelFeatureConfig) -> None:
        self.config = config
        melkwargs = dict(
            n_fft=config.window, hop_length=SAMPLES_PER_FRAME, n_mels=config.n_mels, center=False
        )
        if config.kind == "mfcc":
            self.transform: torch.nn.Module = T.MFCC(
                SAMPLE_RATE, n_mfcc=config.n_mfcc, log_mels=True, melkwargs=melkwargs
            )
        else:
            self.transform = T.MelSpectrogram(SAMPLE_RATE, **melkwargs)
        self.pad = (config.window - SAMPLES_PER_FRAME) // 2

    @property
    def dim(self) -> int:
        base = self.config.n_mfcc if self.config.kind == "mfcc" else self.config.n_mels
        return base * (2 * self.config.context + 1)

    def __call__(self, waveform16k: np.ndarray) -> torch.Tensor:
        frames = num_frames(len(waveform16k))
        if frames == 0:
            return torch.zeros(0, self.dim)
        # Pad so that window i is centred on frame i's 640 samples; with center=False the
        # transform then yields exactly n // 640 windows (plus at most one extra, trimmed).
        extra = self.config.window - 2 * self.pad
        wav = torch.nn.functional.pad(
            torch.from_numpy(np.ascontiguousarray(waveform16k)), (self.pad, self.pad + extra)
        )
        with torch.no_grad():
            spec = self.transform(wav)  # [bins, T]
        if self.config.kind == "logmel":
            spec = torch.log(spec + 1e-6)
        feats = _fix_length(spec.T.contiguous(), frames)
        if self.config.utterance_cmvn:
            feats = (feats - feats.mean(0)) / feats.std(0, correction=0).clamp_min(1e-3)
        c = self.config.context
        if c:
            padded = torch.cat([feats[:1].expand(c, -1), feats, feats[-1:].expand(c, -1)])
            feats = torch.cat([padded[i : i + frames] for i in range(2 * c + 1)], dim=1)
        return feats


class _CodebookUnits(ABC):
    """Features of 25 Hz frames quantised to the nearest codebook entry (both tokenizers)."""

    centroids: torch.Tensor

    @abstractmethod
    def encode_features(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """The ``[frames, dim]`` features the codebook quantises."""

    def __call__(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        feats = self.encode_features(waveform, sample_rate)
        if feats.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return nearest_centroid(feats, self.centroids).numpy()


class MelKMeansUnits(_CodebookUnits):
    """The offline default unit tokenizer: 25 Hz log-mel (or MFCC) features + a k-means codebook.

    Build one with :meth:`fit` on the corpus's audio; ``save`` / :meth:`load` keep the feature
    settings, the global mean/std and the codebook in one file.
    """

    kind = "mel_kmeans"

    def __init__(
        self,
        centroids: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        config: MelFeatureConfig | None = None,
    ) -> None:
        self.config = config or MelFeatureConfig()
        self.features = MelFeatures(self.config)
        dim = self.features.dim
        if centroids.ndim != 2 or centroids.shape[1] != dim:
            raise ValueError(
                f"codebook shape {tuple(centroids.shape)} does not match feature dim {dim}"
            )
        if mean.shape != (dim,) or std.shape != (dim,):
            raise ValueError(f"mean/std must have shape ({dim},)")
        self.centroids = centroids.to(torch.float32)
        self.mean = mean.to(torch.float32)
        self.std = std.to(torch.float32)
        self.num_units = int(centroids.shape[0])

    def encode_features(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """The standardised ``[frames, dim]`` features that the codebook quantises."""
        return (self.features(_as_waveform(waveform, sample_rate)) - self.mean) / self.std

    @classmethod
    def fit(
        cls,
        waveforms: Iterable[np.ndarray],
        num_units: int = DEFAULT_NUM_UNITS,
        seed: int = 0,
        config: MelFeatureConfig | None = None,
        max_frames: int = DEFAULT_MAX_FIT_FRAMES,
        iterations: int = 25,
        sample_rate: int = SAMPLE_RATE,
    ) -> MelKMeansUnits:
        """Train the codebook on ``waveforms`` (mono, ``sample_rate``): deterministic from ``seed``.

        Features of every waveform are computed, standardised with their global mean/std, and at
        most ``max_frames`` of them (a seeded random subset) train a ``num_units``-entry k-means.
        """
        config = config or MelFeatureConfig()
        features = MelFeatures(config)
        chunks = [features(_as_waveform(w, sample_rate)) for w in waveforms]
        chunks = [c for c in chunks if c.shape[0]]
        if not chunks:
            raise ValueError("MelKMeansUnits.fit got no audio of at least one frame (640 samples)")
        x = _sample_frames(chunks, max_frames, seed)
        mean = x.mean(0)
        std = x.std(0, correction=0).clamp_min(1e-5)
        centroids = train_kmeans((x - mean) / std, num_units, seed=seed, iterations=iterations)
        return cls(centroids, mean, std, config)

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config": asdict(self.config),
            "centroids": self.centroids,
            "mean": self.mean,
            "std": self.std,
        }

    def save(self, path: str | Path) -> None:
        """Write settings, normalisation and codebook to one file, atomically."""
        _save_state(path, self.state())

    @classmethod
    def load(cls, path: str | Path) -> MelKMeansUnits:
        state = _load_state(path, cls.kind)
        return cls(
            state["centroids"], state["mean"], state["std"], MelFeatureConfig(**state["config"])
        )


# -- HuBERT + k-means -------------------------------------------------------------------------------------


def _conv_geometry(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """Receptive field and hop (in samples) of a stack of 1-D convolutions."""
    field, hop = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        field += (k - 1) * hop
        hop *= s
    return field, hop


class HubertKMeansUnits(_CodebookUnits):
    """HuBERT layer features, pooled to 25 Hz, quantised by a k-means codebook.

    ``model`` is a transformers ``HubertModel`` or a torchaudio ``Wav2Vec2Model`` (``hubert_base``).
    ``layer`` is 1-based: the output of that transformer layer. A 50 Hz model's frames are averaged
    in adjacent pairs; the waveform is right-padded so that the model yields ``n // hop`` frames and
    the result is exactly ``n // 640`` frames. ``source`` is the path the model came from, which
    ``save`` records so that :func:`load_unit_tokenizer` can reopen it.
    """

    kind = "hubert_kmeans"

    def __init__(
        self,
        model: torch.nn.Module,
        centroids: torch.Tensor,
        layer: int = DEFAULT_HUBERT_LAYER,
        source: str | Path | None = None,
        normalize_waveform: bool = False,
    ) -> None:
        self.model = model.eval()
        self.layer = layer
        self.source = None if source is None else str(source)
        self.normalize_waveform = normalize_waveform
        self.is_transformers = hasattr(model, "config") and hasattr(model.config, "conv_kernel")
        if self.is_transformers:
            kernels, strides = list(model.config.conv_kernel), list(model.config.conv_stride)
            num_layers = model.config.num_hidden_layers
            width = model.config.hidden_size
        elif hasattr(model, "feature_extractor") and hasattr(model, "extract_features"):
            convs = [block.conv for block in model.feature_extractor.conv_layers]
            kernels = [c.kernel_size[0] for c in convs]
            strides = [c.stride[0] for c in convs]
            num_layers = len(model.encoder.transformer.layers)
            width = model.encoder.feature_projection.projection.out_features
        else:
            raise TypeError(
                f"unsupported HuBERT model {type(model).__name__}: expected a transformers HubertModel "
                "or a torchaudio Wav2Vec2Model (torchaudio.models.hubert_base)"
            )
        if not 1 <= layer <= num_layers:
            raise ValueError(f"HuBERT layer must be in [1, {num_layers}], got {layer}")
        self.field, self.hop = _conv_geometry(kernels, strides)
        if SAMPLES_PER_FRAME % self.hop:
            raise ValueError(
                f"the model's frame hop ({self.hop} samples) does not divide the 25 Hz frame "
                f"({SAMPLES_PER_FRAME} samples), so its frames cannot be pooled to 25 Hz"
            )
        self.pool = SAMPLES_PER_FRAME // self.hop
        if centroids.ndim != 2 or centroids.shape[1] != width:
            raise ValueError(
                f"codebook shape {tuple(centroids.shape)} does not match the model's width {width}"
            )
        self.centroids = centroids.to(torch.float32)
        self.num_units = int(centroids.shape[0])

    @torch.no_grad()
    def encode_features(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """``[n // 640, width]`` features: layer ``layer``'s output averaged over ``pool`` frames."""
        return hubert_features(
            self.model, _as_waveform(waveform, sample_rate), self.layer, self.normalize_waveform
        )

    @classmethod
    def fit(
        cls,
        model: torch.nn.Module | str | Path,
        waveforms: Iterable[np.ndarray],
        num_units: int = DEFAULT_NUM_UNITS,
        seed: int = 0,
        layer: int = DEFAULT_HUBERT_LAYER,
        max_frames: int = DEFAULT_MAX_FIT_FRAMES,
        iterations: int = 25,
        normalize_waveform: bool = False,
    ) -> HubertKMeansUnits:
        """Train a ``num_units`` codebook on the model's layer features of ``waveforms`` (16 kHz)."""
        source = None if isinstance(model, torch.nn.Module) else model
        module = (model if isinstance(model, torch.nn.Module) else load_hubert(model)).eval()
        chunks = [
            hubert_features(module, _as_waveform(w, SAMPLE_RATE), layer, normalize_waveform)
            for w in waveforms
        ]
        chunks = [c for c in chunks if c.shape[0]]
        if not chunks:
            raise ValueError(
                "HubertKMeansUnits.fit got no audio of at least one frame (640 samples)"
            )
        x = _sample_frames(chunks, max_frames, seed)
        centroids = train_kmeans(x, num_units, seed=seed, iterations=iterations)
        return cls(module, centroids, layer, source, normalize_waveform)

    @classmethod
    def from_pretrained(
        cls,
        model_path: str | Path,
        codebook: str | Path,
        layer: int = DEFAULT_HUBERT_LAYER,
        normalize_waveform: bool = False,
    ) -> HubertKMeansUnits:
        """Open a local HuBERT (transformers folder or torchaudio weights file) and a codebook file."""
        return cls(
            load_hubert(model_path), load_codebook(codebook), layer, model_path, normalize_waveform
        )

    def save(self, path: str | Path) -> None:
        """Write the model's path, the layer and the codebook (not the model weights), atomically."""
        if self.source is None:
            raise ValueError(
                "this HubertKMeansUnits was built from an in-memory model: save the model "
                "(save_pretrained or torch.save of its state_dict) and build it from that path"
            )
        _save_state(
            path,
            {
                "kind": self.kind,
                "model": str(Path(self.source).resolve()),
                "layer": self.layer,
                "normalize_waveform": self.normalize_waveform,
                "centroids": self.centroids,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> HubertKMeansUnits:
        state = _load_state(path, cls.kind)
        return cls(
            load_hubert(state["model"]),
            state["centroids"],
            state["layer"],
            state["model"],
            state["normalize_waveform"],
        )


@torch.no_grad()
def hubert_features(
    model: torch.nn.Module, waveform16k: np.ndarray, layer: int, normalize_waveform: bool = False
) -> torch.Tensor:
    """One layer's features of a 16 kHz waveform, pooled to 25 Hz: ``[n // 640, width]``.

    The model must be in eval mode: in training mode HuBERT drops layers at random (LayerDrop).
    """
    if model.training:
        raise ValueError("hubert_features needs the model in eval mode (call model.eval())")
    if hasattr(model, "config") and hasattr(model.config, "conv_kernel"):
        kernels, strides = list(model.config.conv_kernel), list(model.config.conv_stride)
    else:
        convs = [block.conv for block in model.feature_extractor.conv_layers]
        kernels, strides = [c.kernel_size[0] for c in convs], [c.stride[0] for c in convs]
    field, hop = _conv_geometry(kernels, strides)
    pool = SAMPLES_PER_FRAME // hop
    frames = num_frames(len(waveform16k))
    wav = torch.from_numpy(np.ascontiguousarray(waveform16k, dtype=np.float32))
    if normalize_waveform:
        wav = (wav - wav.mean()) / wav.std(correction=0).clamp_min(1e-7)
    # Right-pad by (field - hop) so the convolution stack yields exactly n // hop frames.
    wav = torch.nn.functional.pad(wav, (0, field - hop)).unsqueeze(0)
    device = next(model.parameters()).device
    wav = wav.to(device)
    if hasattr(model, "config") and hasattr(model.config, "conv_kernel"):
        out = model(wav, output_hidden_states=True)
        hidden = out.hidden_states[layer][0]
    else:
        hidden = model.extract_features(wav, num_layers=layer)[0][layer - 1][0]
    hidden = hidden.float().cpu()
    usable = (hidden.shape[0] // pool) * pool
    pooled = hidden[:usable].reshape(-1, pool, hidden.shape[1]).mean(1)
    return _fix_length(pooled, frames)


def load_hubert(path: str | Path) -> torch.nn.Module:
    """A local HuBERT: a transformers ``HubertModel`` folder, or a torchaudio ``hubert_base`` state dict."""
    path = Path(path)
    if path.is_dir():
        from transformers import HubertModel

        try:
            return HubertModel.from_pretrained(path, local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a transformers HubertModel folder ({e})") from None
    if path.is_file():
        import torchaudio.models

        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model = torchaudio.models.hubert_base()
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"{path}: not torchaudio hubert_base weights ({e})") from None
        return model.eval()
    raise FileNotFoundError(
        f"HuBERT model {path} does not exist (a transformers folder or a .pt file)"
    )


def load_codebook(path: str | Path) -> torch.Tensor:
    """A k-means codebook ``[num_units, dim]`` from ``.npy`` or ``.pt`` (a tensor or {"centroids": ...})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"codebook {path} does not exist")
    if path.suffix == ".npy":
        value: Any = torch.from_numpy(np.load(path))
    else:
        value = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(value, dict):
            if "centroids" not in value:
                raise ValueError(f"{path}: a codebook dict needs a 'centroids' entry")
            value = value["centroids"]
    if not isinstance(value, torch.Tensor) or value.ndim != 2:
        raise ValueError(f"{path}: a codebook must be a 2-D [num_units, dim] array")
    return value.to(torch.float32)


# -- opening a saved tokenizer -------------------------------------------------------------------------------


def _load_state(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"unit tokenizer {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path}: not a saved unit tokenizer ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "kind" not in state:
        raise ValueError(f"{path}: not a saved unit tokenizer (no 'kind' entry)")
    if kind is not None and state["kind"] != kind:
        raise ValueError(f"{path}: holds a {state['kind']!r} tokenizer, expected {kind!r}")
    return state


TOKENIZERS: dict[str, type] = {
    MelKMeansUnits.kind: MelKMeansUnits,
    HubertKMeansUnits.kind: HubertKMeansUnits,
}


def load_unit_tokenizer(spec: str | Path) -> UnitTokenizer:
    """Open a tokenizer saved by ``MelKMeansUnits.save`` or ``HubertKMeansUnits.save``."""
    state = _load_state(spec)
    if state["kind"] not in TOKENIZERS:
        raise ValueError(f"{spec}: unknown unit tokenizer kind {state['kind']!r}")
    return TOKENIZERS[state["kind"]].load(spec)
