"""Model configurations: plain dataclasses, one field per architectural choice.

Every size is a field so experiment YAMLs (and ``--model.*`` overrides) can set it. Named presets
(``tiny``, ``1b``) hold the shipped sizes; the 1B numbers are the paper's (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TransformerConfig:
    """A stack of Llama-style blocks (RMSNorm, RoPE self-attention, SwiGLU)."""

    n_layers: int = 2
    """Number of blocks. Paper 1B: 1 (patch encoder), 25 (global), 9 (patch decoder)."""
    d_model: int = 128
    """Width of the residual stream. Paper 1B: 1024 local, 2048 global."""
    n_heads: int = 4
    """Attention heads; ``d_model`` must be divisible by it. Paper: 16."""
    ffn_hidden: int | None = None
    """SwiGLU hidden width; ``None`` uses Llama's rule (8/3 d rounded up to a multiple of 64)."""
    window: int | None = None
    """Sliding attention window in tokens (a token sees itself and ``window - 1`` predecessors);
    ``None`` is full causal attention. Paper: 512 for the local models, full for the global one."""
    rope_theta: float = 500_000.0
    """RoPE base frequency. Paper: 5e5."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads"):
            _positive_int(name, getattr(self, name))
        if self.ffn_hidden is not None:
            _positive_int("ffn_hidden", self.ffn_hidden)
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta must be > 0, got {self.rope_theta}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head dimension must be even for RoPE")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None, got {self.window}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden(self) -> int:
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        return 64 * -(-int(8 * self.d_model / 3) // 64)


@dataclass
class LSTConfig:
    """The Latent Speech-Text Transformer: patch encoder -> global transformer -> patch decoder."""

    vocab_size: int = 1024
    """Size of the one token space (text BPE + specials + speech units); set from the data."""
    encoder: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(n_layers=1, d_model=128, n_heads=4, window=512)
    )
    """Patch encoder: local causal self-attention over tokens. Paper 1B: 1 x 1024, window 512."""
    global_model: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(n_layers=4, d_model=256, n_heads=4)
    )
    """Global transformer over patches. Paper 1B: 25 x 2048, 16 heads, RoPE theta 5e5."""
    decoder: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(n_layers=2, d_model=128, n_heads=4, window=512)
    )
    """Patch decoder: cross-attention to global outputs, then local causal self-attention.
    Paper 1B: 9 x 1024, window 512. Its width must equal the encoder's (it reads its token states)."""
    queries_per_patch: int = 2
    """``k``: query vectors per patch in the encoder (and key/value vectors per global output in the
    decoder's cross-attention). BLT/LST use 2 so that k x d_local = d_global at 1B."""
    cross_window_encoder: int = 512
    """``W_enc``: the queries of patch ``q`` cross-attend to the token states of patches
    ``q - W_enc + 1 .. q`` of the same document. Paper (release ``cross_attn_window_encoder``): 512;
    1 is the compact variant (own patch only, the ``tiny_lst_cross1`` ablation)."""
    cross_window_decoder: int = 512
    """``W_dec``: a token cross-attends to the last ``W_dec`` global outputs of its document that it
    may see (the newest is the last patch closed before it). Paper (release
    ``cross_attn_window_decoder``): 512; 1 reads only the newest."""
    release_compat: bool = False
    """Reproduce two quirks of the paper's code release: its cross-attention blocks return
    ``x + attn`` and the caller adds ``x`` again (the residual stream is doubled at every
    cross-attention), and its global transformer has no final norm. Off in the kit (README,
    "Fidelity to the paper")."""
    init_std: float = 0.02
    """Standard deviation of the normal weight initialisation."""

    def __post_init__(self) -> None:
        for name in ("cross_window_encoder", "cross_window_decoder"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.encoder.n_layers < 1:
            raise ValueError("encoder.n_layers must be >= 1: the patch queries are pooled after it")
        if self.encoder.d_model != self.decoder.d_model:
            raise ValueError(
                f"encoder.d_model={self.encoder.d_model} must equal decoder.d_model="
                f"{self.decoder.d_model}: the decoder starts from the encoder's token states"
            )
        _positive_int("queries_per_patch", self.queries_per_patch)
        if not self.init_std > 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std}")


@dataclass
class BaselineConfig:
    """Base SpeechLLM: one Llama-style decoder over the same token stream, no patching."""

    vocab_size: int = 1024
    """Size of the token space; set from the data."""
    transformer: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(n_layers=4, d_model=256, n_heads=4)
    )
    """The decoder. Compare with LST at the same global size (paper 1B: 25 x 2048... see DESIGN 5)."""
    init_std: float = 0.02
    """Standard deviation of the normal weight initialisation."""

    def __post_init__(self) -> None:
        if not self.init_std > 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std}")


def _positive_int(name: str, value: object) -> None:
    """An error naming the field when ``value`` is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def lst_preset(name: str) -> LSTConfig:
    """Named LST sizes: ``tiny`` (CPU, tests and laptops) and ``1b`` (the paper's main model)."""
    if name == "tiny":
        return LSTConfig()
    if name == "1b":
        return LSTConfig(
            vocab_size=32_000 + 8 + 501,
            encoder=TransformerConfig(n_layers=1, d_model=1024, n_heads=16, window=512),
            global_model=TransformerConfig(n_layers=25, d_model=2048, n_heads=16),
            decoder=TransformerConfig(n_layers=9, d_model=1024, n_heads=16, window=512),
            queries_per_patch=2,
        )
    raise ValueError(f"unknown LST preset {name!r}; known: tiny, 1b")
