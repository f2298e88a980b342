"""Where does LST beat the baseline? ``make reproduce`` (``lst-lightning reproduce [--quick]``).

Trains the paper's systems at **equal training FLOPs** (local models counted) and, for LST static
and the Base SpeechLLM, at **equal training tokens**, with several seeds (each seed sets both the
model initialisation and the data stream), at two scales/mixtures, every run's learning-rate
schedule ending at its own budget stop (:mod:`~lst_lightning.reproduce.plan`). Scores each run's
checkpoints at 25/50/75/100 % of its budget in speech bits per second and text bits per character
on one fixed held-out set (:mod:`~lst_lightning.reproduce.metrics`), the final checkpoint of the
first seed on the zero-shot benchmarks, and writes ``docs/reproduction.md`` with figures in
``docs/figures/`` (:mod:`~lst_lightning.reproduce.report`, :mod:`~lst_lightning.reproduce.plots`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from lst_lightning.reproduce import plan as planning
from lst_lightning.reproduce.report import (
    KIND_WORDS,
    benchmark_table,
    curve_table,
    paired_table,
    results_table,
    runs_table,
    summary,
)


def local_shares(root: Path, data_dir: str, quick: bool) -> tuple[dict[str, float], int]:
    """Share of LST static's training FLOPs outside the global model, per scale (first batch),
    and the corpus' vocabulary size."""
    from itertools import islice

    from lst_lightning.hub.checkpoint import network_from_hparams
    from lst_lightning.lit.datamodule import SpeechTextDataModule
    from lst_lightning.model.flops import Layout, forward_flops

    s = planning.settings(quick)
    out = {}
    for scale in planning.scales(quick):
        config = planning.run_config(
            planning.load_experiment(root, "tiny_lst_static"), "tiny_lst_static", scale, s, 0,
            s.ref_steps, data_dir,
        )  # fmt: skip
        dm = SpeechTextDataModule(**config["data"])
        dm.prepare_data()
        dm.setup("fit")
        batch = next(islice(dm.train_dataloader(), 1))
        import dataclasses

        net = dataclasses.replace(
            network_from_hparams(config["model"]["network"]), vocab_size=dm.vocab_size
        )
        count = forward_flops(net, Layout.from_batch(batch.doc_ids, batch.patch_lengths))
        out[scale.name] = 1 - count.component("global.blocks") / count.forward
    return out, dm.vocab_size


def crossover_section(root: Path, quick: bool, vocab_size: int) -> list[str]:
    """The analytic cost table of :mod:`~lst_lightning.reproduce.crossover`, as markdown lines."""
    import dataclasses

    import yaml

    from lst_lightning.hub.checkpoint import network_from_hparams
    from lst_lightning.reproduce.crossover import cost_ratios, mixture_ratio, sweep

    def net(config: dict):
        return dataclasses.replace(
            network_from_hparams(config["model"]["network"]), vocab_size=vocab_size
        )

    st = planning.settings(quick)
    lines = [
        "| LST model (locals fixed) | global model | speech | text | mixture, 20 % speech | 50 % speech |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for sc in (planning.MAIN, planning.SPEECH_HEAVY):
        config = planning.run_config(
            planning.load_experiment(root, "tiny_lst_static"), "tiny_lst_static", sc, st, 0,
            100, "unused",
        )  # fmt: skip
        for layers, width, r in sweep(net(config), [(4, 256), (8, 512), (16, 1024), (25, 2048)]):
            lines.append(
                f"| `{sc.name}` locals | {layers}x{width} | {r['speech']:.2f} | {r['text']:.2f} | "
                f"{mixture_ratio(r, 0.2):.2f} | {mixture_ratio(r, 0.5):.2f} |"
            )
    r = cost_ratios(net(yaml.safe_load((root / "experiments" / "lst_1b.yaml").read_text())))
    lines.append(
        f"| `lst_1b` (1x1024 + 9x1024) | 25x2048 | {r['speech']:.2f} | {r['text']:.2f} | "
        f"{mixture_ratio(r, 0.2):.2f} | {mixture_ratio(r, 0.5):.2f} |"
    )
    return lines


def verdicts(s: dict) -> list[str]:
    """One generated sentence per (scale, budget, LST system): better, worse or not separated."""
    out = []
    for e in s["paired"]:
        parts = []
        for metric, word in (("speech_bits_per_second", "speech"), ("text_bits_per_char", "text")):
            d = e[metric]
            if d["low"] != d["low"]:
                parts.append(f"{word}: {d['mean']:+.3g} (one seed, no interval)")
            elif d["high"] < 0:
                parts.append(f"{word}: **LST better** ({d['mean']:+.3g}, interval below 0)")
            elif d["low"] > 0:
                parts.append(f"{word}: **LST worse** ({d['mean']:+.3g}, interval above 0)")
            else:
                parts.append(f"{word}: not separated ({d['mean']:+.3g}, interval spans 0)")
        out.append(
            f"- `{e['scale']}`, {KIND_WORDS[e['kind']]}, {planning.SYSTEMS[e['system']]} - Base "
            f"SpeechLLM ({e['n']} seeds): " + "; ".join(parts) + "."
        )
    return out


def document(records, s, budgets, shares, meta, quick, figures_rel, crossover, missing=()) -> str:
    """The markdown page; ``missing``: planned runs without a record (a partial run)."""
    scales = planning.scales(quick)
    st = planning.settings(quick)
    parts = [
        "# Reproduction: where does LST beat the baseline?",
        "",
        f"Written by `make reproduce{' ARGS=--quick' if quick else ''}` "
        f"(`python -m lst_lightning reproduce`; `--report-only` rebuilds this page from the run "
        f"records in `{meta['runs']}`).",
        f"{meta['date']}, {meta['machine']}, {meta['cores']} logical cores, torch threads "
        f"{meta['threads']}, wall time {meta['wall']} (the runs' own train + evaluation time "
        f"summed: {meta['run_minutes']:.1f} min); load average at the start {meta['load']} "
        "(the machine was shared with other jobs unless this is near 0).",
        "",
        *(
            [
                f"**Partial: {len(missing)} of the {len(missing) + len(records)} planned runs have "
                "no record yet; the full plan was not completed.** This page was built with "
                "`--report-only` from the runs finished so far (runs train in groups, headline "
                "comparisons first, each group seed by seed; `make reproduce` continues the plan, "
                "reusing the finished runs). The finished runs took "
                f"{meta['run_minutes']:.0f} min of training and evaluation, "
                f"{meta['run_minutes'] / max(1, meta['trained']):.1f} min per trained run on this "
                "machine at the load below, so the whole plan needs about "
                f"{meta['run_minutes'] / max(1, meta['trained']) * (len(missing) + meta['trained']) / 60:.1f} h "
                "here. Missing: " + ", ".join(f"`{m}`" for m in missing),
                "",
            ]
            if missing
            else []
        ),
        "## What was run",
        "",
        f"- Seeds {list(st.seeds)}: seed *s* sets both `seed_everything` (model initialisation) "
        "and `data.seed` (mixture, interleavings, order), so systems are paired by seed.",
        f"- Rows: {st.batch_size} per step, {st.max_patches} global positions per LST row "
        f"(at most {st.max_tokens} tokens), {st.max_patches} tokens per baseline row (the tiny "
        "experiments' rows, shrunk to fit the CPU); each system's recipe otherwise as in its "
        "`experiments/tiny_*.yaml` (lr 2e-3, warm-up 10 % of the run, cosine to 0.01x).",
        f"- **Equal FLOPs**: the budget at each scale is what LST static spends in {st.ref_steps} "
        "steps (seed 0), in the kit's analytic training FLOPs (`lst_lightning.model.flops`, local "
        "encoder and decoder counted). **Equal tokens**: LST static's input tokens at that stop.",
        "- Every run's `trainer.max_steps` is the step at which its own budget binds, found before "
        "training by replaying its data stream through the analytic FLOPs (the curriculum by a "
        "fixed point, its T = that step): the cosine and the curriculum end at the budget stop, "
        "and the budget callback (a guard) stops at the same step (column `stopped at budget`).",
        "- Held-out metrics on one fixed set for every run (does not depend on the seed): speech "
        "**bits per second of audio** over "
        + ("all" if st.speech_every == 1 else f"one in {st.speech_every} of the")
        + " 120 `valid.jsonl` utterances and the 100 utterances of the held-out voice "
        "(`heldout_voice.jsonl`), each a speech-only document; "
        f"text **bits per character** over the first {st.text_chars} characters of "
        "`text_valid.txt`. Checkpoints (weights) at 25/50/75/100 % of each budget.",
        (
            f"- Zero-shot benchmarks: the final checkpoint of seed {st.seeds[0]} of each system at "
            f"the main scale at equal FLOPs, the first {st.bench_items} items of each set only (the sets hold "
            "500-600), so the intervals are wide."
            if st.bench_items
            else "- Zero-shot benchmarks: not scored by this plan (`--quick`); the full plan scores them."
        ),
        "",
        "| scale | what | systems | LST's FLOPs outside the global model | FLOPs budget | token budget |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for sc in scales:
        parts.append(
            f"| `{sc.name}` | {sc.label} | {', '.join(planning.SYSTEMS[x] for x in sc.systems)} | "
            f"{100 * shares.get(sc.name, float('nan')):.0f} % | {budgets[sc.name]['flops']:.3g} | "
            f"{budgets[sc.name]['tokens']:.3g} |"
        )
    parts += [
        "",
        "## Headline: held-out bits vs training FLOPs",
        "",
        f"![bits vs FLOPs]({figures_rel}/bits_vs_flops.png)",
        "",
        "Where LST beats the baseline (paired by seed, final checkpoint, 95 % t interval of "
        "LST minus baseline; generated from the numbers below):",
        "",
        *verdicts(s),
        "",
    ]
    for sc in scales:
        for kind in planning.KINDS:
            table = results_table(s, sc.name, kind)
            if table.count("\n") < 2:
                continue
            parts += [
                f"### `{sc.name}` at {KIND_WORDS[kind]}",
                "",
                "Final checkpoint, mean +- sd over seeds (lower is better):",
                "",
                table,
                "",
                "LST minus Base SpeechLLM, paired by seed: mean difference and 95 % t interval "
                "(negative = LST better), and the seeds at which LST is better:",
                "",
                paired_table(s, sc.name, kind),
                "",
                "Curves (speech bits/s / text bits/char, mean over seeds) at shares of the budget:",
                "",
                curve_table(s, sc.name, kind),
                "",
            ]
    parts += [
        "## Zero-shot benchmarks",
        "",
        *(
            [
                f"![benchmarks]({figures_rel}/benchmarks.png)",
                "",
                "Headline rule accuracy % [95 % Wilson interval]:",
                "",
                benchmark_table(records),
            ]
            if st.bench_items
            else ["Not scored by this plan."]
        ),
        "",
        "## Analytic cost: where patching can pay for itself",
        "",
        "LST / Base SpeechLLM training FLOPs per speech token and per text token with the same "
        "global model (`lst_lightning.reproduce.crossover`: synthetic one-document rows of 1024 "
        "tokens, static p = 4 on speech, one patch per text piece), and on mixtures by speech "
        "token share. Below 1, LST is cheaper. Assumption of this estimate: LST models the data "
        "per global position as well as the baseline does per token; then it wins at equal FLOPs "
        "where its mixture ratio is below 1. That is necessary, not sufficient: the measured "
        "tables above say how well LST learns per position at this size.",
        "",
        *crossover,
        "",
        "## Every run",
        "",
        runs_table(records),
        "",
    ]
    return "\n".join(parts)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lst-lightning reproduce", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="the smaller plan (~15 min on 2 cores)"
    )
    parser.add_argument("--runs", default=None, help="default runs/reproduce[-quick]")
    parser.add_argument("--out", default=None, help="default docs/reproduction[-quick].md")
    parser.add_argument("--figures", default="docs/figures", help="folder of the PNGs")
    parser.add_argument("--root", default=".", help="repository root (holds experiments/)")
    parser.add_argument("--data-dir", default="data/embedded")
    parser.add_argument("--plan-only", action="store_true", help="print the plan and stop")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from records")
    args = parser.parse_args(argv)
    import torch

    from lst_lightning.reproduce.plots import benchmark_plot, bits_vs_flops
    from lst_lightning.reproduce.run import HeldOutCache, execute, write_json

    tag = "-quick" if args.quick else ""
    root = Path(args.root).resolve()
    runs_root = Path(args.runs or f"runs/reproduce{tag}").resolve()
    out = Path(args.out or f"docs/reproduction{tag}.md")
    figures = Path(args.figures)
    data_dir = str(Path(args.data_dir).resolve())
    if not (Path(data_dir) / "valid.jsonl").is_file():
        print(f"lst-lightning reproduce: no corpus in {data_dir} (make data)", file=sys.stderr)
        return 2
    start, load = time.perf_counter(), os.getloadavg()
    plan_path = runs_root / "plan.json"
    if args.report_only:
        saved = json.loads(plan_path.read_text())
        specs = [planning.RunSpec(**r) for r in saved["runs"]]
        budgets = saved["budgets"]
    else:
        specs, budgets = planning.build_plan(root, data_dir, args.quick)
        write_json(plan_path, {"runs": [r.__dict__ for r in specs], "budgets": budgets})
    if args.plan_only:
        return 0
    s = planning.settings(args.quick)
    scales = {sc.name: sc for sc in planning.scales(args.quick)}
    cache = HeldOutCache(Path(data_dir), s.text_chars, s.speech_every)
    records: dict[str, dict] = {}
    specs = planning.run_order(specs)
    for i, spec in enumerate(specs, start=1):
        if args.report_only:
            path = runs_root / spec.name / "record.json"
            if path.is_file():
                records[spec.name] = json.loads(path.read_text())
            continue
        t0 = time.perf_counter()
        bench = (
            s.bench_items > 0
            and spec.kind == "flops"
            and spec.seed == s.seeds[0]
            and spec.scale == planning.MAIN.name
        )
        records[spec.name] = execute(
            spec, planning.load_experiment(root, spec.system), scales[spec.scale], s, runs_root,
            data_dir, cache, bench, records,
        )  # fmt: skip
        print(
            f"[{i}/{len(specs)}] {spec.name}: {records[spec.name]['steps']} steps, "
            f"{time.perf_counter() - t0:.0f} s (at {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    rs = list(records.values())
    summ = summary(rs)
    write_json(runs_root / "summary.json", summ)
    scale_list = [(sc.name, sc.label) for sc in planning.scales(args.quick)]
    bits_vs_flops(summ, scale_list, figures / f"bits_vs_flops{tag}.png")
    benchmark_plot(rs, figures / f"benchmarks{tag}.png")
    wall = time.perf_counter() - start
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "wall": f"{wall / 60:.1f} min" + (" (report only)" if args.report_only else ""),
        "load": " ".join(f"{x:.1f}" for x in load),
        "runs": os.path.relpath(runs_root, Path.cwd()),
        "trained": sum(1 for r in rs if not r.get("reused")),
        "run_minutes": sum(
            r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in rs if not r.get("reused")
        )
        / 60,
    }
    shares, vocab = local_shares(root, data_dir, args.quick)
    rel = os.path.relpath(figures, out.parent)
    cross = crossover_section(root, args.quick, vocab)
    missing = [spec.name for spec in specs if spec.name not in records]
    text = document(rs, summ, budgets, shares, meta, args.quick, rel, cross, missing)
    text = text.replace("bits_vs_flops.png", f"bits_vs_flops{tag}.png").replace(
        "benchmarks.png", f"benchmarks{tag}.png"
    )
    write_atomic(out, text)
    print(f"wrote {out} and {figures}/*{tag}.png in {wall / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
