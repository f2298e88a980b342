"""From run records to numbers: per-system means over seeds, paired differences, the markdown.

Everything here is a pure function of the records (dicts as :mod:`~lst_lightning.reproduce.run`
writes them), so the report can be rebuilt from ``runs/reproduce`` without training
(``--report-only``) and tested on made-up records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from lst_lightning.reproduce.metrics import mean_sd, paired_difference
from lst_lightning.reproduce.plan import BASELINE, LST_SYSTEMS, SYSTEMS

METRICS = {
    "speech_bits_per_second": "speech bits/s",
    "text_bits_per_char": "text bits/char",
}


def group(records: Sequence[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """``(scale, kind, system) -> records`` sorted by seed."""
    out: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in records:
        p = r["plan"]
        out[(p["scale"], p["kind"], p["system"])].append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r["plan"]["seed"])
    return dict(out)


def final(r: dict, metric: str) -> float:
    return float(r["curve"][-1][metric])


def summary(records: Sequence[dict]) -> dict:
    """Per (scale, kind, system): seeds, mean +- sd of each metric and counter; per LST system
    the paired difference to the baseline at the same scale and budget kind (shared seeds)."""
    groups = group(records)
    rows, paired = [], []
    for (scale, kind, system), rs in sorted(groups.items()):
        row = {
            "scale": scale,
            "kind": kind,
            "system": system,
            "seeds": [r["plan"]["seed"] for r in rs],
        }
        for key in ("steps", "flops", "tokens", "train_seconds"):
            row[key] = mean_sd([float(r[key]) for r in rs])
        for metric in METRICS:
            row[metric] = mean_sd([final(r, metric) for r in rs])
        row["curve"] = [
            {
                "fraction": c["fraction"],
                "flops": mean_sd([r["curve"][i]["flops"] for r in rs])[0],
                "tokens": mean_sd([r["curve"][i]["tokens"] for r in rs])[0],
                **{m: mean_sd([r["curve"][i][m] for r in rs]) for m in METRICS},
            }
            for i, c in enumerate(rs[0]["curve"])
        ]
        rows.append(row)
        base = groups.get((scale, kind, BASELINE))
        if system in LST_SYSTEMS and base:
            by_seed = {r["plan"]["seed"]: r for r in base}
            shared = [r for r in rs if r["plan"]["seed"] in by_seed]
            if shared:
                entry = {"scale": scale, "kind": kind, "system": system, "n": len(shared)}
                for metric in METRICS:
                    d = paired_difference(
                        [final(r, metric) for r in shared],
                        [final(by_seed[r["plan"]["seed"]], metric) for r in shared],
                    )
                    entry[metric] = d.__dict__
                paired.append(entry)
    return {"rows": rows, "paired": paired}


def _ms(pair: Sequence[float], digits: int = 1) -> str:
    mean, sd = pair
    return f"{mean:.{digits}f}" if sd != sd else f"{mean:.{digits}f} +- {sd:.{digits}f}"


def _interval(d: dict, digits: int) -> str:
    if d["low"] != d["low"]:
        return f"{d['mean']:+.{digits}f} (one seed: no interval)"
    return f"{d['mean']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"


KIND_WORDS = {"flops": "equal training FLOPs", "tokens": "equal training tokens"}


def results_table(s: dict, scale: str, kind: str) -> str:
    lines = [
        "| system | seeds | steps | train FLOPs | tokens | speech bits/s | text bits/char |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in s["rows"]:
        if (row["scale"], row["kind"]) != (scale, kind):
            continue
        lines.append(
            f"| {SYSTEMS[row['system']]} | {len(row['seeds'])} | {row['steps'][0]:.0f} | "
            f"{row['flops'][0]:.3g} | {row['tokens'][0]:.3g} | "
            f"{_ms(row['speech_bits_per_second'])} | {_ms(row['text_bits_per_char'], 3)} |"
        )
    return "\n".join(lines)


def paired_table(s: dict, scale: str, kind: str) -> str:
    lines = [
        "| LST system - Base SpeechLLM | seeds | speech bits/s (LST better in) | text bits/char (LST better in) |",
        "| --- | --- | --- | --- |",
    ]
    for e in s["paired"]:
        if (e["scale"], e["kind"]) != (scale, kind):
            continue
        sp, tx = e["speech_bits_per_second"], e["text_bits_per_char"]
        lines.append(
            f"| {SYSTEMS[e['system']]} | {e['n']} | {_interval(sp, 1)} ({sp['wins']}/{e['n']}) | "
            f"{_interval(tx, 3)} ({tx['wins']}/{e['n']}) |"
        )
    return "\n".join(lines)


def curve_table(s: dict, scale: str, kind: str) -> str:
    fractions = None
    lines = []
    for row in s["rows"]:
        if (row["scale"], row["kind"]) != (scale, kind):
            continue
        if fractions is None:
            fractions = [c["fraction"] for c in row["curve"]]
            head = " | ".join(f"{round(100 * f)} %" for f in fractions)
            lines += [f"| system | {head} |", "|" + " --- |" * (len(fractions) + 1)]
        cells = " | ".join(
            f"{c['speech_bits_per_second'][0]:.1f} / {c['text_bits_per_char'][0]:.3f}"
            for c in row["curve"]
        )
        lines.append(f"| {SYSTEMS[row['system']]} | {cells} |")
    return "\n".join(lines)


def runs_table(records: Sequence[dict]) -> str:
    lines = [
        "| run | seed (model = data) | budget | planned steps | steps taken | stopped at budget | train FLOPs | tokens | train wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(
        records,
        key=lambda r: (
            r["plan"]["scale"] + r["plan"]["system"] + r["plan"]["kind"] + str(r["plan"]["seed"])
        ),
    ):
        p = r["plan"]
        reused = f" (= {r['reused']})" if r.get("reused") else ""
        lines.append(
            f"| `{p['scale']}/{p['system']}`{reused} | {p['seed']} | {p['kind']} {p['budget']:.3g} | "
            f"{p['max_steps']} | {r['steps']} | {'yes' if r['stopped_at_budget'] else 'NO'} | "
            f"{r['flops']:.4g} | {r['tokens']} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def benchmark_table(records: Sequence[dict]) -> str:
    """Headline accuracy (%) with its 95 % Wilson interval, per system and set/direction."""
    with_bench = [r for r in records if r.get("benchmarks") and not r.get("reused")]
    if not with_bench:
        return "(no benchmark scores in these records)"
    columns: list[tuple[str, str]] = []
    for r in with_bench:
        for b in r["benchmarks"]:
            if (b["benchmark"], b["direction"]) not in columns:
                columns.append((b["benchmark"], b["direction"]))
    lines = [
        "| system (scale, seed) | " + " | ".join(f"{b} {d}" for b, d in columns) + " |",
        "|" + " --- |" * (len(columns) + 1),
    ]
    for r in with_bench:
        p = r["plan"]
        cell = {}
        for b in r["benchmarks"]:
            rule = b["headline_rule"]
            acc, iv = b["accuracy"].get(rule), (b["interval"] or {}).get(rule)
            cell[(b["benchmark"], b["direction"])] = (
                f"{100 * acc:.0f} [{100 * iv[0]:.0f}, {100 * iv[1]:.0f}]"
                if acc is not None and iv
                else ""
            )
        lines.append(
            f"| {SYSTEMS[p['system']]} ({p['scale']}, {p['seed']}) | "
            + " | ".join(cell.get(c, "") for c in columns)
            + " |"
        )
    return "\n".join(lines)
