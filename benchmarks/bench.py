"""``make bench``: LST vs the Base SpeechLLM, and our baseline vs transformers' Llama, side by side.

Writes ``docs/benchmarks.md`` (atomically) with the machine, the date and the versions, and:
1. training throughput of LST and the Base SpeechLLM at the same global size and the same global
   positions per row, on a speech-heavy and a text-heavy mixture: seconds of speech per second,
   analytic training FLOPs per second of speech, step time and peak memory;
2. the paper-proportion (1B) analytic FLOPs per second of speech of both models, from real packed
   rows of the same corpus at the paper's row sizes;
3. the baseline's forward+backward step time and peak memory against Hugging Face
   ``LlamaForCausalLM`` of the same shape, on the same batch.

Every measured case runs in its own worker subprocess (a clean peak-memory high-water mark), all
alive at once, and the steps are **interleaved**: round after round, each case runs one step in turn
(A B C ... A B C ...), so a change in machine load hits every case alike. Ratios are the median
over rounds of the pairwise ratio within a round. Cases compared: LST (cross-attention windows 512,
the paper's) and the Base SpeechLLM, LST with windows 1 (the compact ablation), our baseline and
transformers' Llama. Sizes keep the paper's 1B proportions scaled down (local width half the global
width, 1 : 25 : 9 encoder : global : decoder layers rounded to 1 : 8 : 3) so the whole run takes
minutes on a CPU; ``--device cuda`` (the default where CUDA is available) measures in bf16 autocast
on a GPU.

    .venv/bin/python benchmarks/bench.py [--out docs/benchmarks.md] [--steps 12] [--device cpu]
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
    """LST (``lst``: cross-attention windows 512; ``lst_cross1``: windows 1) or the Base SpeechLLM
    at the bench size (``scale=8``: the paper's 1B widths)."""
    from lst_lightning.model import BaselineConfig, LSTConfig, TransformerConfig

    local, glob = LOCAL * scale, GLOBAL * scale
    heads = 16 if scale > 1 else HEADS  # the paper's 16 heads at 1B
    layers = PAPER_LAYERS if scale > 1 else LAYERS

    def stack(layers: int, d: int, window: int | None) -> TransformerConfig:
        return TransformerConfig(n_layers=layers, d_model=d, n_heads=heads, window=window)

    if kind in ("lst", "lst_cross1"):
        cross = 512 if kind == "lst" else 1
        return LSTConfig(
            vocab_size=vocab_size,
            encoder=stack(layers["encoder"], local, 512),
            global_model=stack(layers["global"], glob, None),
            decoder=stack(layers["decoder"], local, 512),
            queries_per_patch=2,
            cross_window_encoder=cross,
            cross_window_decoder=cross,
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


class Case:
    """One measured case, stepped on demand: :meth:`step` runs one step on the next batch and
    returns its wall time and what the batch holds; :meth:`summary` reports the whole case."""

    def __init__(self, data: Iterator, step: Callable[[object], None], device: torch.device):
        self.data, self.run, self.device = data, step, device
        self.memory: Memory | None = None
        self.params = 0

    def step(self, measured: bool) -> dict:
        batch = next(self.data).to(self.device)
        if measured and self.memory is None:
            self.memory = Memory(self.device)  # after the warm-up
        sync(self.device)
        start = time.perf_counter()
        self.run(batch)
        sync(self.device)
        return {"time": time.perf_counter() - start, **self.describe(batch)}

    def describe(self, batch) -> dict:
        return {}

    def summary(self) -> dict:
        return {"params": self.params, "peak_mib": self.memory.peak_mib() if self.memory else 0.0}


def case_train(kind: str, mixture: str, device: torch.device) -> Case:
    """Full training steps (forward, loss, backward, AdamW) of one model on one mixture."""
    from lst_lightning.lit.module import SpeechTextLM
    from lst_lightning.lit.optim import OptimConfig, build_optimizer
    from lst_lightning.model.flops import batch_training_flops

    dm = datamodule(
        "baseline" if kind == "baseline" else "lst", mixture, ROW_POSITIONS, LST_ROW_TOKENS, ROWS
    )
    torch.manual_seed(0)
    lm = SpeechTextLM(network(kind, dm.vocab_size)).to(device)
    optimizer, _ = build_optimizer(lm.net, OptimConfig(warmup_steps=1), total_steps=10_000)

    def step(batch) -> None:
        with autocast(device):
            loss = lm.losses(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    case = Case(batches(dm), step, device)
    case.params = sum(p.numel() for p in lm.net.parameters())
    case.describe = lambda b: {  # type: ignore[method-assign]
        "speech_s": speech_seconds(b, dm.token_space),
        "flops": batch_training_flops(lm.network_config, b.doc_ids, b.patch_lengths),
        "tokens": b.num_tokens,
    }
    return case


def case_fwd_bwd(impl: str, device: torch.device) -> Case:
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

        from lst_lightning.hub.llama import llama_config

        hf_config = LlamaConfig.from_dict(llama_config(config, None, max_positions=4096))
        model = LlamaForCausalLM._from_config(hf_config, attn_implementation="sdpa")

        def logits_of(batch):
            return model(input_ids=batch.tokens, use_cache=False).logits

    model.to(device).train()

    def step(batch) -> None:
        with autocast(device):
            logits = logits_of(batch)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE_INDEX
        )
        loss.backward()
        model.zero_grad(set_to_none=True)

    case = Case(batches(dm), step, device)
    case.params = sum(p.numel() for p in model.parameters())
    return case


def paper_proportions() -> dict:
    """Analytic training FLOPs per second of speech of the 1B models on real packed rows of the
    paper's sizes (LST: 4096 global positions / 12288 tokens; baseline: 4096 tokens)."""
    from lst_lightning.model.flops import batch_training_flops

    out = {}
    for mixture in MIXTURES:
        row = {}
        for kind in ("lst", "baseline", "lst_cross1"):
            dm = datamodule("baseline" if kind == "baseline" else "lst", mixture, 4096, 12288, 2)
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


CASES = [f"train:{k}:{m}" for m in MIXTURES for k in ("lst", "baseline", "lst_cross1")] + [
    "fwdbwd:ours",
    "fwdbwd:hf",
]


def build_case(case: str, device: str) -> Case:
    dev = torch.device(device)
    parts = case.split(":")
    if parts[0] == "train":
        return case_train(parts[1], parts[2], dev)
    if parts[0] == "fwdbwd":
        return case_fwd_bwd(parts[1], dev)
    raise SystemExit(f"bench.py: unknown case {case!r}; known: {', '.join(CASES)}")


def serve(case: str, device: str) -> None:
    """Worker: builds ``case``, then answers one JSON line per command read from stdin
    (``warmup``, ``step``: one step; ``summary``: the case's totals, then exits)."""
    built = build_case(case, device)
    print(json.dumps({"ready": case}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "summary":
            print(json.dumps(built.summary()), flush=True)
            return
        print(json.dumps(built.step(measured=command == "step")), flush=True)


class Worker:
    """The parent's handle on one :func:`serve` subprocess."""

    def __init__(self, case: str, device: str) -> None:
        self.case = case
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", case, "--device", device],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ask(None)  # wait until it is built

    def ask(self, command: str | None) -> dict:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench.py: case {self.case} died (exit {self.proc.wait()})")
        return json.loads(line)


def run_interleaved(cases: list[str], steps: int, warmup: int, device: str) -> dict[str, dict]:
    """Round-robin ``warmup`` then ``steps`` steps over every case, one step each per round;
    returns per case its summary and the list of measured steps (round by round)."""
    workers = [Worker(c, device) for c in cases]  # one at a time: building is not measured
    rounds: dict[str, list[dict]] = {c: [] for c in cases}
    try:
        for i in range(warmup + steps):
            for w in workers:
                out = w.ask("warmup" if i < warmup else "step")
                if i >= warmup:
                    rounds[w.case].append(out)
        return {w.case: {**w.ask("summary"), "steps": rounds[w.case]} for w in workers}
    finally:
        for w in workers:
            w.proc.stdin.close()
            w.proc.wait()


def case_stats(r: dict) -> dict:
    """Totals of one case's measured steps."""
    steps = r["steps"]
    total = sum(x["time"] for x in steps)
    out = {"params": r["params"], "peak_mib": r["peak_mib"]}
    out["step_s"] = statistics.median(x["time"] for x in steps)
    if "speech_s" in steps[0]:
        seconds = sum(x["speech_s"] for x in steps)
        flops = sum(x["flops"] for x in steps)
        out.update(
            speech_s_per_s=seconds / total,
            flops_per_speech_s=flops / seconds if seconds else float("nan"),
            tokens_per_s=sum(x["tokens"] for x in steps) / total,
            flops_per_s=flops / total,
        )
    return out


def paired(a: dict, b: dict, rate: Callable[[dict], float]) -> float:
    """Median over rounds of ``rate(step of a) / rate(step of b)``, steps of the same round."""
    return statistics.median(rate(x) / rate(y) for x, y in zip(a["steps"], b["steps"], strict=True))


def step_time(x: dict) -> float:
    return x["time"]


def speech_rate(x: dict) -> float:
    return x["speech_s"] / x["time"]


def flop_rate(x: dict) -> float:
    return x["flops"] / x["time"]


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


def report(info: dict, raw: dict, paper: dict | None, steps: int, warmup: int) -> str:
    """The markdown of sections 1-3 from the interleaved runs (sections whose cases did not run,
    with ``--cases``, are left out)."""
    results = {case: case_stats(r) for case, r in raw.items()}
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/bench.py`); rerun it to refresh every figure. Each",
        "case runs in its own worker process, all alive at once, and the measured steps are",
        "interleaved: round after round every case runs one step in turn. Ratios are the median",
        "over rounds of the ratio within a round (robust to load that changes during the run).",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| steps | {warmup} warm-up + {steps} measured rounds (one step per case per round) |",
    ]
    train = [m for m in MIXTURES if f"train:lst:{m}" in results]
    if train:
        lines += [
            "",
            "## 1. Training throughput: LST vs Base SpeechLLM at the same global size",
            "",
            f"Global transformer {LAYERS['global']} x {GLOBAL} ({HEADS} heads) in both; LST adds a "
            f"{LAYERS['encoder']} x {LOCAL} patch encoder and a {LAYERS['decoder']} x {LOCAL} patch "
            f"decoder (local window 512, k = 2, static patches of 4; cross-attention windows 512, "
            f"the paper's, or 1 for the compact ablation). Both see {ROW_POSITIONS} global "
            f"positions per row (LST: at most {LST_ROW_TOKENS} tokens), {ROWS} rows per step, on "
            "the embedded corpus. A full training step: forward, loss, backward, AdamW. Speech "
            "seconds are unit frames / 25 Hz; FLOPs are the analytic training FLOPs of "
            "`lst_lightning.model.flops` (causal attention convention: pairs inside the windows).",
            "",
            "| mixture | model | params | step (s, median) | speech s / s | training FLOPs per "
            "speech s | achieved GFLOP/s | tokens / s | peak memory (MiB) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        names = {"lst": "LST", "lst_cross1": "LST, cross windows 1", "baseline": "Base SpeechLLM"}
        for mixture in train:
            for kind, name in names.items():
                r = results.get(f"train:{kind}:{mixture}")
                if r is None:
                    continue
                lines.append(
                    f"| {mixture} | {name} | {r['params'] / 1e6:.1f} M | {fmt(r['step_s'])} "
                    f"| {fmt(r['speech_s_per_s'])} | {sci(r['flops_per_speech_s'])} "
                    f"| {r['flops_per_s'] / 1e9:.0f} | {r['tokens_per_s']:.0f} "
                    f"| {r['peak_mib']:.0f} |"
                )
        lines += [
            "",
            "Ratios, interleaved (median of per-round ratios):",
            "",
            "| mixture | LST / baseline: speech s / s | achieved FLOP/s | FLOPs per speech s "
            "| peak memory | LST W=512 / W=1: step time | FLOPs per step |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for mixture in train:
            a, b = raw[f"train:lst:{mixture}"], raw[f"train:baseline:{mixture}"]
            sa, sb = results[f"train:lst:{mixture}"], results[f"train:baseline:{mixture}"]
            row = (
                f"| {mixture} | {paired(a, b, speech_rate):.2f}x | {paired(a, b, flop_rate):.2f}x "
                f"| {sa['flops_per_speech_s'] / sb['flops_per_speech_s']:.2f}x "
                f"| {sa['peak_mib'] / max(sb['peak_mib'], 1e-9):.2f}x"
            )
            c = raw.get(f"train:lst_cross1:{mixture}")
            if c is not None:
                flops = sum(x["flops"] for x in a["steps"]) / sum(x["flops"] for x in c["steps"])
                row += f" | {paired(a, c, step_time):.2f}x | {flops:.3f}x |"
            else:
                row += " | | |"
            lines.append(row)
    if paper is not None:
        lines += [
            "",
            "## 2. At the paper's proportions (1B, analytic)",
            "",
            "The paper's 1B sizes (LST 1 x 1024 / 25 x 2048 / 9 x 1024, baseline 25 x 2048, 16",
            "heads, local and cross-attention windows 512), on rows packed from the same corpus at",
            "the paper's sizes (LST 4096 global positions / 12288 tokens, baseline 4096 tokens).",
            "Goal of the kit: LST <= 0.4x the baseline's FLOPs per second of speech on speech-only",
            "data. The last column is LST with cross-attention windows 1 (the compact variant).",
            "",
            "| mixture | LST FLOPs per speech s | baseline FLOPs per speech s | ratio | "
            "LST FLOPs per global position | baseline FLOPs per global position | "
            "ratio with cross windows 1 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for mixture, row in paper.items():
            a, b, c = row["lst"], row["baseline"], row["lst_cross1"]
            lines.append(
                f"| {mixture} | {sci(a['flops_per_speech_s'])} | {sci(b['flops_per_speech_s'])} "
                f"| {a['flops_per_speech_s'] / b['flops_per_speech_s']:.3f}x "
                f"| {sci(a['flops_per_position'])} | {sci(b['flops_per_position'])} "
                f"| {c['flops_per_speech_s'] / b['flops_per_speech_s']:.3f}x |"
            )
    if "fwdbwd:ours" in results and "fwdbwd:hf" in results:
        ours, hf = results["fwdbwd:ours"], results["fwdbwd:hf"]
        ratio = paired(raw["fwdbwd:ours"], raw["fwdbwd:hf"], step_time)
        lines += [
            "",
            "## 3. Base SpeechLLM vs transformers' LlamaForCausalLM, same shape",
            "",
            f"{LAYERS['global']} x {GLOBAL}, {HEADS} heads, SwiGLU "
            f"{network('baseline', 1).transformer.hidden}, untied head; forward + cross-entropy + "
            f"backward on the same {ROWS} x {ROW_POSITIONS}-token packed batches. Ours masks "
            'attention per packed document (as training needs); Llama (`attn_implementation="sdpa"`, '
            "no attention mask given) attends causally across the whole row, which is less work.",
            "",
            "| implementation | params | step (s, median) | peak memory (MiB) |",
            "| --- | --- | --- | --- |",
            f"| lst_lightning SpeechLLM | {ours['params'] / 1e6:.1f} M | {fmt(ours['step_s'])} "
            f"| {ours['peak_mib']:.0f} |",
            f"| transformers LlamaForCausalLM | {hf['params'] / 1e6:.1f} M | {fmt(hf['step_s'])} "
            f"| {hf['peak_mib']:.0f} |",
            "",
            f"Step time ours / Llama, interleaved: {ratio:.2f}x (goal of the kit: <= 1.0x).",
        ]
    lines.append("")
    return "\n".join(lines)


def data_and_units() -> str:
    """Sections 4-6: the data pipeline and the unit tokenizer, measured in this process with one
    thread (what one DataLoader worker has), and batched vs one-at-a-time decoding."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_data
    import bench_decode
    import bench_units

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data_rows = bench_data.run(CORPUS, seconds=5.0)
        unit_rows = bench_units.run()
        decode_info = bench_decode.machine()
        decode_rows = bench_decode.run(rounds=3)
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
            bench_decode.markdown(decode_rows, 3, decode_info),
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
    parser.add_argument("--steps", type=int, default=12, help="measured rounds (a step per case)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--cases",
        help="comma-separated prefixes of the cases to run (default: all), e.g. 'train:' for "
        "section 1 only; with it, sections 2, 4 and 5 are skipped unless --cases names 'paper'",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: a worker process
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("need --steps >= 1 and --warmup >= 0")
    if args.serve:
        serve(args.serve, args.device)
        return
    prefixes = args.cases.split(",") if args.cases else None
    cases = [c for c in CASES if prefixes is None or any(c.startswith(p) for p in prefixes)]
    if prefixes is not None and not cases and "paper" not in prefixes:
        parser.error(f"--cases {args.cases} matches none of {', '.join(CASES)}")

    from lst_lightning.lit.datamodule import SpeechTextDataModule

    SpeechTextDataModule(
        corpus={"data_dir": str(CORPUS)}
    )  # builds the embedded corpus if it is missing
    info = machine(args.device)
    started = time.perf_counter()
    raw = run_interleaved(cases, args.steps, args.warmup, args.device) if cases else {}
    for case, r in raw.items():
        print(f"{case}: {case_stats(r)}", flush=True)
    full = prefixes is None
    paper = paper_proportions() if full or "paper" in prefixes else None
    pipeline = data_and_units() if full else ""
    info["bench wall time"] = f"{time.perf_counter() - started:.0f} s"
    write_atomic(args.out, report(info, raw, paper, args.steps, args.warmup) + pipeline)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
