"""A second TTS judge that reads units directly: a small CTC recogniser trained on the corpus.

Whisper hears Griffin-Lim audio of the log-mel units poorly (``docs/downstream.md``), so its CER on
a TTS system's vocoded output is bounded by the vocoder more than by the system. This judge skips
the vocoder: it maps 25 Hz units to the characters of the normalised transcript
(:func:`~lst_lightning.downstream.metrics.normalize_transcript`) with CTC, trained on the corpus's
training split only. Its topline is its CER on the ground-truth units of held-out utterances.

Model: unit embeddings, dilated residual convolution blocks and a character softmax
that emits two slots per unit frame (50 Hz, so CTC has room for read speech at ~15 characters
per second plus blanks; blank 0). Greedy CTC decoding. Plain PyTorch; deterministic from its seed on the CPU.

``python -m lst_lightning.downstream.unit_ctc --corpus data/embedded --out runs/downstream/unit_ctc.pt``
trains it and prints its CER/WER on ``valid.jsonl`` and ``heldout_voice.jsonl``.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lst_lightning.data.records import read_aligned_jsonl, write_bytes_atomic
from lst_lightning.downstream.metrics import ErrorRates, error_rates, normalize_transcript

BLANK = 0


@dataclass(frozen=True)
class UnitCTCConfig:
    """Size of the unit recogniser (no paper value: the paper judges with Whisper only)."""

    num_units: int = 501
    """Unit codebook size of the corpus."""
    dim: int = 96
    """Width of the embeddings and convolutions."""
    conv_layers: int = 4
    """Residual convolution blocks (kernel 5, dilations 1, 2, 4, 1...) at 25 Hz: a receptive
    field of about 1.3 s, enough context for a character without recurrence (a GRU was several
    times slower on these CPUs)."""
    upsample: int = 2
    """Character slots per unit frame: the head emits this many per 25 Hz frame (CTC needs at
    least as many slots as characters plus repeats; read speech has ~15 characters per second)."""


class UnitCTC(nn.Module):
    """Units ``[batch, frames]`` -> character log-probabilities ``[batch, frames * upsample, chars]``."""

    def __init__(self, config: UnitCTCConfig, num_chars: int) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.num_units, config.dim)
        dilations = [2 ** (i % 3) for i in range(config.conv_layers)]
        self.convs = nn.ModuleList(
            nn.Conv1d(config.dim, config.dim, 5, padding=2 * d, dilation=d) for d in dilations
        )
        self.norms = nn.ModuleList(nn.LayerNorm(config.dim) for _ in range(config.conv_layers))
        self.num_chars = num_chars
        self.head = nn.Linear(config.dim, num_chars * config.upsample)

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        x = self.embed(units)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = x + F.gelu(conv(norm(x).transpose(1, 2)).transpose(1, 2))
        b, t, _ = x.shape
        return self.head(x).view(b, t * self.config.upsample, self.num_chars).log_softmax(-1)


class UnitRecognizer:
    """A trained :class:`UnitCTC` with its character set: units -> transcript."""

    def __init__(self, model: UnitCTC, chars: str) -> None:
        self.model = model.eval()
        self.chars = chars  # index i + 1 is chars[i]; 0 is the blank

    @torch.no_grad()
    def transcribe_units(self, units: Sequence[int]) -> str:
        ids = torch.as_tensor(np.asarray(units, dtype=np.int64))[None]
        if ids.numel() == 0:
            return ""
        best = self.model(ids)[0].argmax(-1).tolist()
        out, prev = [], BLANK
        for i in best:
            if i != prev and i != BLANK:
                out.append(self.chars[i - 1])
            prev = i
        return " ".join("".join(out).split())

    def transcribe_all(self, unit_sequences: Sequence[Sequence[int]]) -> list[str]:
        return [self.transcribe_units(u) for u in unit_sequences]

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        state = {
            "kind": "unit_ctc",
            "config": asdict(self.model.config),
            "chars": self.chars,
            "model": self.model.state_dict(),
        }
        torch.save(state, buffer)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> UnitRecognizer:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("kind") != "unit_ctc":
            raise ValueError(f"{path} is not a saved unit CTC recogniser")
        model = UnitCTC(UnitCTCConfig(**state["config"]), len(state["chars"]) + 1)
        model.load_state_dict(state["model"])
        return cls(model, state["chars"])


def train_unit_ctc(
    pairs: Sequence[tuple[Sequence[int], str]],
    config: UnitCTCConfig,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    log_every: int = 0,
) -> UnitRecognizer:
    """Train on ``(units, transcript)`` pairs (transcripts are normalised here)."""
    texts = [normalize_transcript(t) for _, t in pairs]
    data = [(list(u), t) for (u, _), t in zip(pairs, texts, strict=True) if len(u) and t]
    if not data:
        raise ValueError("no (units, transcript) pair with units and a non-empty transcript")
    chars = "".join(sorted({c for _, t in data for c in t}))
    index = {c: i + 1 for i, c in enumerate(chars)}
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = UnitCTC(config, len(chars) + 1)
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(data) + batch_size - 1) // batch_size)
    warmup = max(1, steps // 10)

    def factor(i: int) -> float:  # linear warm-up, then cosine to zero
        if i < warmup:
            return (i + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optim, factor)
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            batch = [data[i] for i in order[start : start + batch_size]]
            lengths = torch.tensor([len(u) for u, _ in batch])
            units = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
            for row, (u, _) in enumerate(batch):
                units[row, : len(u)] = torch.tensor(u)
            targets = torch.tensor([index[c] for _, t in batch for c in t])
            target_lengths = torch.tensor([len(t) for _, t in batch])
            logp = model(units).transpose(0, 1)  # [T, B, C]
            loss = F.ctc_loss(
                logp, targets, lengths * config.upsample, target_lengths, BLANK, zero_infinity=True
            )
            optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            schedule.step()
            step += 1
            if log_every and step % log_every == 0:
                print(f"unit_ctc: step {step}/{steps} loss {loss.item():.3f}", flush=True)
    return UnitRecognizer(model, chars)


def evaluate(recognizer: UnitRecognizer, pairs: Sequence[tuple[Sequence[int], str]]) -> ErrorRates:
    hyps = recognizer.transcribe_all([u for u, _ in pairs])
    return error_rates(hyps, [t for _, t in pairs])


REPORT_START, REPORT_END = "<!-- unit_ctc:start -->", "<!-- unit_ctc:end -->"


def write_report(
    doc: Path, rows: list[str], args: argparse.Namespace, n: int, seconds: float
) -> None:
    """The second judge's topline as a section of ``doc`` (between its own markers)."""
    from lst_lightning.downstream.topline import write_section

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        REPORT_START,
        "## Second judge: unit CTC recogniser (reads ground-truth units, no vocoder)",
        "",
        f"Trained on the {n} utterances of `train.jsonl` for {args.epochs} epochs (batch "
        f"{args.batch_size}, seed {args.seed}, {UnitCTCConfig()}) in {seconds / 60:.1f} min on "
        f"{os.cpu_count()} CPU cores (load average {load:.1f} at the end), {date}; "
        f"`python -m lst_lightning.downstream.unit_ctc --epochs {args.epochs}`. WER / CER in % of "
        "its greedy transcripts of every utterance's ground-truth units (its topline):",
        "",
        "| set | utterances | WER | CER |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        REPORT_END,
    ]
    write_section(doc, "\n".join(lines), REPORT_START, REPORT_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lst_lightning.downstream.unit_ctc")
    parser.add_argument("--corpus", default="data/embedded")
    parser.add_argument("--out", default="runs/downstream/unit_ctc.pt")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc", default="docs/downstream.md", help="report section goes here")
    args = parser.parse_args(argv)
    corpus = Path(args.corpus)
    torch.set_num_threads(2)
    try:
        train = read_aligned_jsonl(corpus / "train.jsonl")
        pairs = [(u.units, u.transcript) for u in train]
        started = time.perf_counter()
        recognizer = train_unit_ctc(
            pairs, UnitCTCConfig(), args.epochs, args.batch_size, seed=args.seed, log_every=100
        )
        seconds = time.perf_counter() - started
        print(f"unit_ctc: trained in {seconds:.0f} s")
        recognizer.save(args.out)
        rows = []
        for name in ("valid", "heldout_voice"):
            held = read_aligned_jsonl(corpus / f"{name}.jsonl")
            rates = evaluate(recognizer, [(u.units, u.transcript) for u in held])
            print(f"unit_ctc: {name}: WER {100 * rates.wer:.1f} CER {100 * rates.cer:.1f}")
            rows.append(
                f"| {name} | {rates.utterances} | {100 * rates.wer:.1f} | {100 * rates.cer:.1f} |"
            )
        write_report(Path(args.doc), rows, args, len(pairs), seconds)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
