"""k-means for speech-unit codebooks, in plain torch (k-means++ init, chunked Lloyd iterations).

Both unit tokenizers (log-mel and HuBERT features) quantise frames with a k-means codebook, and the
kit trains that codebook itself when the user brings none. Hours of audio at 25 Hz are a few
hundred thousand frames: the distance matrix is computed in chunks so memory stays bounded, and
every random draw comes from one seeded generator so a codebook is reproducible from its seed.
"""

from __future__ import annotations

import torch

DEFAULT_ITERATIONS = 25
DEFAULT_INIT_SAMPLE = 20_000
"""k-means++ seeds from at most this many frames: its cost is ``k x sample`` distance updates."""
CHUNK_ROWS = 16_384


def nearest_centroid(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (squared Euclidean) for every row of ``x``, computed in chunks."""
    if x.ndim != 2 or centroids.ndim != 2 or x.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"features {tuple(x.shape)} and centroids {tuple(centroids.shape)} do not match: "
            "both must be 2-D with the same feature width"
        )
    x = x.to(centroids.dtype)
    c_sq = (centroids * centroids).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for lo in range(0, x.shape[0], CHUNK_ROWS):
        chunk = x[lo : lo + CHUNK_ROWS]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 does not change the argmin.
        out[lo : lo + CHUNK_ROWS] = torch.addmm(c_sq, chunk, centroids.T, alpha=-2.0).argmin(1)
    return out


def _min_sq_distance(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    c_sq = (centroids * centroids).sum(1)
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for lo in range(0, x.shape[0], CHUNK_ROWS):
        chunk = x[lo : lo + CHUNK_ROWS]
        d = (chunk * chunk).sum(1, keepdim=True) - 2.0 * chunk @ centroids.T + c_sq
        out[lo : lo + CHUNK_ROWS] = d.min(1).values.clamp_min(0.0)
    return out


def _cluster_sums(x: torch.Tensor, assign: torch.Tensor, k: int) -> torch.Tensor:
    """Per-cluster sums of the rows of ``x`` as a sparse one-hot product (much faster than index_add_ on CPU)."""
    n = x.shape[0]
    indices = torch.stack([assign, torch.arange(n, device=x.device)])
    one_hot = torch.sparse_coo_tensor(
        indices, torch.ones(n, dtype=x.dtype, device=x.device), (k, n), check_invariants=False
    )
    return torch.sparse.mm(one_hot, x)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to squared distance."""
    n = x.shape[0]
    x_sq = (x * x).sum(1)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    d2 = (x_sq - 2.0 * (x @ x[chosen[0]]) + x_sq[chosen[0]]).clamp_min(0.0)
    for _ in range(1, k):
        cumulative = torch.cumsum(d2, 0)
        total = float(cumulative[-1])
        if total <= 0.0:  # every frame already sits on a centre: pick uniformly
            idx = int(torch.randint(n, (1,), generator=generator))
        else:
            draw = torch.rand(1, generator=generator, dtype=cumulative.dtype) * total
            idx = min(int(torch.searchsorted(cumulative, draw)), n - 1)
        chosen.append(idx)
        d2 = torch.minimum(d2, (x_sq - 2.0 * (x @ x[idx]) + x_sq[idx]).clamp_min(0.0))
    return x[chosen].clone()


def train_kmeans(
    features: torch.Tensor,
    k: int,
    seed: int = 0,
    iterations: int = DEFAULT_ITERATIONS,
    init_sample: int = DEFAULT_INIT_SAMPLE,
    tolerance: float = 1e-4,
) -> torch.Tensor:
    """Fit ``k`` centroids to the rows of ``features`` ([frames, dim]); returns ``[k, dim]`` float32.

    Lloyd iterations stop early when no centroid moves by more than ``tolerance`` (relative to the
    feature scale). A cluster that empties is re-seeded on the frame farthest from its centroid, so
    the codebook always has ``k`` distinct, used entries when the data allows it.
    """
    if features.ndim != 2:
        raise ValueError(
            f"k-means needs a 2-D [frames, dim] tensor, got shape {tuple(features.shape)}"
        )
    if k < 1:
        raise ValueError(f"k-means needs k >= 1, got {k}")
    n = features.shape[0]
    if n < k:
        raise ValueError(
            f"k-means with k={k} needs at least {k} frames, got {n}: "
            "use more audio or a smaller codebook"
        )
    x = features.detach().to(torch.float32).contiguous()
    if not torch.isfinite(x).all():
        raise ValueError("k-means features contain NaN or infinite values")
    generator = torch.Generator().manual_seed(seed)
    sample = x
    if n > init_sample:
        sample = x[torch.randperm(n, generator=generator)[:init_sample]]
    centroids = kmeans_plus_plus(sample, k, generator)
    scale = float(x.std()) or 1.0
    for _ in range(iterations):
        assign = nearest_centroid(x, centroids)
        sums = _cluster_sums(x, assign, k)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        new = sums / counts.clamp_min(1.0).unsqueeze(1)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            far = _min_sq_distance(x, centroids).topk(len(empty)).indices
            new[empty] = x[far]
        shift = float((new - centroids).abs().max())
        centroids = new
        if shift <= tolerance * scale:
            break
    return centroids
