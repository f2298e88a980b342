"""``make bench``: LST vs the Base SpeechLLM, and our baseline vs transformers' Llama, side by side.

Writes ``docs/benchmarks.md`` (atomically) with the machine, the date and the versions, and:
1. training throughput of LST and the Base SpeechLLM at the same global size and the same global
   positions per row, on a speech-heavy and a text-heavy mixture: seconds of speech per second,
   analytic training FLOPs per second of speech, step time and peak memory;
2. the paper-proportion (1B) analytic FLOPs per second of speech of both models, from real packed
   rows of the same corpus at the paper's row sizes;
3. the baseline's forward+backward step time and peak memory against Hugging Face
   ``LlamaForCausalLM`` of the same shape, on the same batch.

Every measured case runs in its own subprocess (a clean peak-memory high-water mark), one after
the other on the same machine in one run. Sizes keep the paper's 1B proportions scaled down (local
width half the global width, 1 : 25 : 9 encoder : global : decoder layers rounded to 1 : 8 : 3) so
the whole run takes minutes on a CPU;
``--device cuda`` (the default where CUDA is available) measures in bf16 autocast on a GPU.

    .venv/bin/python benchmarks/bench.py [--out docs/benchmarks.md] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "embedded"
"""The default embedded corpus (`make data`); `make bench` builds it first."""
UNIT_HZ = 25.0
"""HuBERT units per second of speech (DESIGN 1)."""

# Bench sizes: the paper's 1B shape (encoder 1 x 1024, global 25 x 2048, decoder 9 x 1024, 16
# heads) at 1/8 of the width and about 1/3 of the depth; rows of 256 global positions (LST: at
# most 768 tokens), a sixteenth of the paper's 4096 / 12288.
LOCAL, GLOBAL, HEADS = 128, 256, 4
LAYERS = {"encoder": 1, "global": 8, "decoder": 3}
PAPER_LAYERS = {"encoder": 1, "global": 25, "decoder": 9}
ROW_POSITIONS, LST_ROW_TOKENS, ROWS = 256, 768, 4
MIXTURES = {
    "speech-heavy": {"interleaved": 0.0, "speech_only": 1.0},
    "text-heavy": {"interleaved": 1 / 3, "speech_only": 0.0},
}
"""speech-heavy: speech-only documents; text-heavy: the paper's mixture (1/3 of the tokens interleaved,
2/3 text-only; shares of tokens since the mixture options count tokens, not documents)."""


def network(kind: str, vocab_size: int, scale: int = 1):
    """LST or the Base SpeechLLM at the bench size (``scale=8``: the paper's 1B widths)."""
    from lst_lightning.model import BaselineConfig, LSTConfig, TransformerConfig

    local, glob = LOCAL * scale, GLOBAL * scale
    heads = 16 if scale > 1 else HEADS  # the paper's 16 heads at 1B
    layers = PAPER_LAYERS if scale > 1 else LAYERS

    def stack(layers: int, d: int, window: int | None) -> TransformerConfig:
        return TransformerConfig(n_layers=layers, d_model=d, n_heads=heads, window=window)

    if kind == "lst":
        return LSTConfig(
            vocab_size=vocab_size,
            encoder=stack(layers["encoder"], local, 512),
            global_model=stack(layers["global"], glob, None),
            decoder=stack(layers["decoder"], local, 512),
            queries_per_patch=2,
        )
    return BaselineConfig(vocab_size=vocab_size, transformer=stack(layers["global"], glob, None))


def datamodule(kind: str, mixture: str, positions: int, lst_tokens: int, rows: int):
    from lst_lightning.lit.datamodule import SpeechTextDataModule

    packing = {"mode": "patches", "max_patches": positions, "max_tokens": lst_tokens}
    if kind == "baseline":
        packing = {"mode": "tokens", "max_tokens": positions}
    dm = SpeechTextDataModule(
        corpus={"data_dir": str(CORPUS)},
        mixture=MIXTURES[mixture],
        packing=packing,
        loader={"batch_size": rows},
    )
    dm.setup("fit")
    return dm


def speech_seconds(batch, space) -> float:
    """Seconds of speech the batch's units stand for (frames at 25 Hz)."""
    frames = getattr(batch, "speech_frames", None)
    if frames is not None:
        return float(frames.sum()) / UNIT_HZ
    real = batch.doc_ids != -1
    return float((space.is_unit(batch.tokens) & real).sum()) / UNIT_HZ


def batches(dm) -> Iterator:
    """The datamodule's training stream (endless: it runs pass after pass over the corpus)."""
    return iter(dm.train_dataloader())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Memory:
    """Peak memory of the measured steps: CUDA allocator peak, or process peak RSS above the
    resident size before the first step (model, optimiser and data already in memory)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.before = rss_bytes()

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(peak - self.before, 0) / 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def timed_steps(
    data: Iterator, step: Callable[[object], None], steps: int, warmup: int, device: torch.device
) -> tuple[list[float], list, Memory]:
    """Run ``warmup`` unmeasured then ``steps`` measured calls of ``step`` on batches from
    ``data``; returns the measured step times, the measured batches and the peak-memory probe
    (started after the warm-up)."""
    times, measured, memory = [], [], None
    for i in range(warmup + steps):
        batch = next(data).to(device)
        if i == warmup:
            memory = Memory(device)
        sync(device)
        start = time.perf_counter()
        step(batch)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            measured.append(batch)
    return times, measured, memory


def case_train(kind: str, mixture: str, steps: int, warmup: int, device: torch.device) -> dict:
    """Full training steps (forward, loss, backward, AdamW) of one model on one mixture."""
    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.lit.optim import OptimConfig, build_optimizer
    from lst_lightning.model.flops import batch_training_flops

    dm = datamodule(kind, mixture, ROW_POSITIONS, LST_ROW_TOKENS, ROWS)
    torch.manual_seed(0)
    lm = SpeechTextLM(network(kind, dm.vocab_size)).to(device)
    optimizer, _ = build_optimizer(lm.net, OptimConfig(warmup_steps=1), total_steps=10_000)

    def step(batch) -> None:
        with autocast(device):
            loss = lm.losses(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times, measured, memory = timed_steps(batches(dm), step, steps, warmup, device)
    seconds = sum(speech_seconds(b, dm.token_space) for b in measured)
    flops = sum(
        batch_training_flops(lm.network_config, b.doc_ids, b.patch_lengths) for b in measured
    )
    tokens = sum(b.num_tokens for b in measured)
    total = sum(times)
    return {
        "params": sum(p.numel() for p in lm.net.parameters()),
        "step_s": statistics.median(times),
        "speech_s_per_s": seconds / total,
        "flops_per_speech_s": flops / seconds if seconds else float("nan"),
        "tokens_per_s": tokens / total,
        "flops_per_s": flops / total,
        "peak_mib": memory.peak_mib(),
    }


def case_fwd_bwd(impl: str, steps: int, warmup: int, device: torch.device) -> dict:
    """Forward + loss + backward of the baseline (``ours``) or transformers' Llama (``hf``) of the
    same shape, on the same packed token batches."""
    import torch.nn.functional as F

    from lst_lightning.data.stream.batch import IGNORE_INDEX
    from lst_lightning.model import SpeechLLM

    dm = datamodule("baseline", "text-heavy", ROW_POSITIONS, ROW_POSITIONS, ROWS)
    config = network("baseline", dm.vocab_size)
    torch.manual_seed(0)
    if impl == "ours":
        model = SpeechLLM(config)

        def logits_of(batch):
            return model(batch.tokens, batch.doc_ids)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        tc = config.transformer
        hf_config = LlamaConfig(
            vocab_size=config.vocab_size,
            hidden_size=tc.d_model,
            intermediate_size=tc.hidden,
            num_hidden_layers=tc.n_layers,
            num_attention_heads=tc.n_heads,
            num_key_value_heads=tc.n_heads,
            max_position_embeddings=4096,
            rms_norm_eps=tc.norm_eps,
            rope_theta=tc.rope_theta,
            tie_word_embeddings=False,
            attention_bias=False,
            mlp_bias=False,
        )
        model = LlamaForCausalLM._from_config(hf_config, attn_implementation="sdpa")

        def logits_of(batch):
            return model(input_ids=batch.tokens, use_cache=False).logits

    model.to(device).train()
    params = sum(p.numel() for p in model.parameters())

    def step(batch) -> None:
        with autocast(device):
            logits = logits_of(batch)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE_INDEX
        )
        loss.backward()
        model.zero_grad(set_to_none=True)

    times, _, memory = timed_steps(batches(dm), step, steps, warmup, device)
    return {"params": params, "step_s": statistics.median(times), "peak_mib": memory.peak_mib()}


def paper_proportions() -> dict:
    """Analytic training FLOPs per second of speech of the 1B models on real packed rows of the
    paper's sizes (LST: 4096 global positions / 12288 tokens; baseline: 4096 tokens)."""
    from lst_lightning.model.flops import batch_training_flops

    out = {}
    for mixture in MIXTURES:
        row = {}
        for kind in ("lst", "baseline"):
            dm = datamodule(kind, mixture, 4096, 12288, 2)
            config = network(kind, dm.vocab_size, scale=8)
            flops, seconds, positions = 0, 0.0, 0
            for batch in itertools.islice(dm.train_dataloader(), 4):
                flops += batch_training_flops(config, batch.doc_ids, batch.patch_lengths)
                seconds += speech_seconds(batch, dm.token_space)
                positions += batch.num_patches if kind == "lst" else batch.num_tokens
            row[kind] = {
                "flops_per_speech_s": flops / seconds if seconds else float("nan"),
                "flops_per_position": flops / positions,
            }
        out[mixture] = row
    return out


# ---------------------------------------------------------------------------------------------
# Orchestration and report


CASES = [f"train:{k}:{m}" for m in MIXTURES for k in ("lst", "baseline")] + [
    "fwdbwd:ours",
    "fwdbwd:hf",
]


def run_case(case: str, steps: int, warmup: int, device: str) -> dict:
    dev = torch.device(device)
    parts = case.split(":")
    if parts[0] == "train":
        return case_train(parts[1], parts[2], steps, warmup, dev)
    if parts[0] == "fwdbwd":
        return case_fwd_bwd(parts[1], steps, warmup, dev)
    raise SystemExit(f"bench.py: unknown case {case!r}; known: {', '.join(CASES)}")


def machine(device: str) -> dict[str, str]:
    import lightning
    import transformers

    import lst_lightning

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "host": f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} logical cores",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "device": device
        if device == "cpu"
        else f"{device} ({torch.cuda.get_device_name(torch.device(device))})",
        "torch threads": str(torch.get_num_threads()),
        "versions": (
            f"python {platform.python_version()}, torch {torch.__version__}, lightning "
            f"{lightning.__version__}, transformers {transformers.__version__}, lst-lightning "
            f"{getattr(lst_lightning, '__version__', 'dev')}"
        ),
    }
    return info


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}"


def sci(x: float) -> str:
    return f"{x:.3g}".replace("e+", "e")


def report(info: dict, results: dict, paper: dict, steps: int, warmup: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/bench.py`); rerun it to refresh every figure. All",
        "cases ran one after the other in one run on this machine, each in its own process.",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| steps | {warmup} warm-up + {steps} measured per case (median step time) |",
        "",
        "## 1. Training throughput: LST vs Base SpeechLLM at the same global size",
        "",
        f"Global transformer {LAYERS['global']} x {GLOBAL} ({HEADS} heads) in both; LST adds a "
        f"{LAYERS['encoder']} x {LOCAL} patch encoder and a {LAYERS['decoder']} x {LOCAL} patch "
        f"decoder (window 512, k = 2, static patches of 4). Both see {ROW_POSITIONS} global "
        f"positions per row (LST: at most {LST_ROW_TOKENS} tokens), {ROWS} rows per step, on the "
        "embedded corpus. A full training step: forward, loss, backward, AdamW. Speech seconds "
        "are unit frames / 25 Hz; FLOPs are the analytic training FLOPs of "
        "`lst_lightning.model.flops` (causal attention convention).",
        "",
        "| mixture | model | params | step (s) | speech s / s | training FLOPs per speech s "
        "| tokens / s | peak memory (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mixture in MIXTURES:
        for kind in ("lst", "baseline"):
            r = results[f"train:{kind}:{mixture}"]
            name = "LST" if kind == "lst" else "Base SpeechLLM"
            lines.append(
                f"| {mixture} | {name} | {r['params'] / 1e6:.1f} M | {fmt(r['step_s'])} "
                f"| {fmt(r['speech_s_per_s'])} | {sci(r['flops_per_speech_s'])} "
                f"| {r['tokens_per_s']:.0f} | {r['peak_mib']:.0f} |"
            )
    lines += ["", "Ratios LST / baseline, measured side by side:", ""]
    lines += [
        "| mixture | speech s / s | FLOPs per speech s | peak memory |",
        "| --- | --- | --- | --- |",
    ]
    for mixture in MIXTURES:
        a, b = results[f"train:lst:{mixture}"], results[f"train:baseline:{mixture}"]
        lines.append(
            f"| {mixture} | {a['speech_s_per_s'] / b['speech_s_per_s']:.2f}x "
            f"| {a['flops_per_speech_s'] / b['flops_per_speech_s']:.2f}x "
            f"| {a['peak_mib'] / max(b['peak_mib'], 1e-9):.2f}x |"
        )
    lines += [
        "",
        "## 2. At the paper's proportions (1B, analytic)",
        "",
        "The paper's 1B sizes (LST 1 x 1024 / 25 x 2048 / 9 x 1024, baseline 25 x 2048, 16 heads,",
        "window 512), on rows packed from the same corpus at the paper's sizes (LST 4096 global",
        "positions / 12288 tokens, baseline 4096 tokens). Goal of the kit: LST <= 0.4x the",
        "baseline's FLOPs per second of speech on speech-only data.",
        "",
        "| mixture | LST FLOPs per speech s | baseline FLOPs per speech s | ratio | "
        "LST FLOPs per global position | baseline FLOPs per global position |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mixture, row in paper.items():
        a, b = row["lst"], row["baseline"]
        lines.append(
            f"| {mixture} | {sci(a['flops_per_speech_s'])} | {sci(b['flops_per_speech_s'])} "
            f"| {a['flops_per_speech_s'] / b['flops_per_speech_s']:.3f}x "
            f"| {sci(a['flops_per_position'])} | {sci(b['flops_per_position'])} |"
        )
    ours, hf = results["fwdbwd:ours"], results["fwdbwd:hf"]
    lines += [
        "",
        "## 3. Base SpeechLLM vs transformers' LlamaForCausalLM, same shape",
        "",
        f"{LAYERS['global']} x {GLOBAL}, {HEADS} heads, SwiGLU {network('baseline', 1).transformer.hidden}, "
        f"untied head; forward + cross-entropy + backward on the same {ROWS} x {ROW_POSITIONS}-token "
        "packed batches. Ours masks attention per packed document (as training needs); Llama "
        '(`attn_implementation="sdpa"`, no attention mask given) attends causally across the '
        "whole row, which is less work.",
        "",
        "| implementation | params | step (s) | peak memory (MiB) |",
        "| --- | --- | --- | --- |",
        f"| lst_lightning SpeechLLM | {ours['params'] / 1e6:.1f} M | {fmt(ours['step_s'])} "
        f"| {ours['peak_mib']:.0f} |",
        f"| transformers LlamaForCausalLM | {hf['params'] / 1e6:.1f} M | {fmt(hf['step_s'])} "
        f"| {hf['peak_mib']:.0f} |",
        "",
        f"Step time ours / Llama: {ours['step_s'] / hf['step_s']:.2f}x (goal of the kit: <= 1.0x).",
        "",
    ]
    return "\n".join(lines)


def data_and_units() -> str:
    """Sections 4-5: the data pipeline and the unit tokenizer, measured in this process with one
    thread (what one DataLoader worker has)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_data
    import bench_units

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data_rows = bench_data.run(CORPUS, seconds=5.0)
        unit_rows = bench_units.run()
    finally:
        torch.set_num_threads(threads)
    return "\n".join(
        [
            "",
            "## 4. Data pipeline: interleave + patch + pack, one worker",
            "",
            f"`benchmarks/bench_data.py` on `{CORPUS.relative_to(ROOT)}` (train split), one process "
            "with one thread, as one DataLoader worker runs.",
            "",
            bench_data.markdown(data_rows),
            "",
            "## 5. Unit tokenizer speed",
            "",
            "`benchmarks/bench_units.py`: seconds of 16 kHz audio turned into 25 Hz units per "
            "second of wall time, one thread.",
            "",
            bench_units.markdown(unit_rows),
            "",
        ]
    )


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--steps", type=int, default=3, help="measured steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps per case")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("need --steps >= 1 and --warmup >= 0")
    if args.case:
        print(json.dumps(run_case(args.case, args.steps, args.warmup, args.device)))
        return

    from lst_lightning.lit.datamodule import SpeechTextDataModule

    SpeechTextDataModule(
        corpus={"data_dir": str(CORPUS)}
    )  # builds the embedded corpus if it is missing
    info = machine(args.device)
    results = {}
    started = time.perf_counter()
    for case in CASES:
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"bench.py: case {case} failed (exit {done.returncode})")
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{case}: {results[case]} ({time.perf_counter() - t0:.0f} s)", flush=True)
    paper = paper_proportions()
    pipeline = data_and_units()
    info["bench wall time"] = f"{time.perf_counter() - started:.0f} s"
    write_atomic(args.out, report(info, results, paper, args.steps, args.warmup) + pipeline)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
