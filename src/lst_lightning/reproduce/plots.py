"""The figures of ``docs/reproduction.md`` (matplotlib, Agg backend, PNG).

- ``bits_vs_flops.png``: speech bits per second and text bits per character against training
  FLOPs, one column per scale, every system (mean over seeds at 25/50/75/100 % of the budget,
  bars +- one sd), at equal FLOPs;
- ``benchmarks.png``: headline benchmark accuracy with 95 % Wilson intervals per system.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lst_lightning.reproduce.plan import SYSTEMS  # noqa: E402
from lst_lightning.reproduce.report import METRICS  # noqa: E402

COLORS = dict(
    zip(SYSTEMS, ("black", "grey", "tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True)
)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)
    return path


def bits_vs_flops(summary: dict, scales: list[tuple[str, str]], path: Path) -> Path:
    """Held-out bits against training FLOPs, equal-FLOPs runs, one column per scale."""
    fig, axes = plt.subplots(
        2, len(scales), figsize=(max(6.5, 5.2 * len(scales)), 7.5), squeeze=False
    )
    for col, (scale, label) in enumerate(scales):
        for row_i, metric in enumerate(METRICS):
            ax = axes[row_i][col]
            for row in summary["rows"]:
                if (row["scale"], row["kind"]) != (scale, "flops"):
                    continue
                xs = [c["flops"] for c in row["curve"]]
                ys = [c[metric][0] for c in row["curve"]]
                sd = [0.0 if c[metric][1] != c[metric][1] else c[metric][1] for c in row["curve"]]
                ax.errorbar(
                    xs, ys, yerr=sd, marker="o", capsize=3, color=COLORS[row["system"]],
                    label=f"{SYSTEMS[row['system']]} ({len(row['seeds'])} seeds)",
                )  # fmt: skip
            ax.set_xlabel("training FLOPs")
            ax.set_ylabel(METRICS[metric] + " (held-out, lower is better)")
            ax.grid(alpha=0.3)
            if row_i == 0:
                ax.set_title(f"{scale}: {label}", fontsize=8)
            ax.legend(fontsize=7)
    fig.suptitle(
        "Held-out bits vs training FLOPs\n(equal-FLOPs runs, checkpoints at 25/50/75/100 % of the "
        "budget; mean +- sd over seeds)",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, path)


def benchmark_plot(records: list[dict], path: Path) -> Path | None:
    """Headline accuracy with 95 % Wilson intervals, per set/direction and system (``None``, and
    no file, when no record holds benchmark scores)."""
    rows = [r for r in records if r.get("benchmarks") and not r.get("reused")]
    if not rows:
        return None
    columns: list[tuple[str, str]] = []
    for r in rows:
        for b in r["benchmarks"]:
            if (b["benchmark"], b["direction"]) not in columns:
                columns.append((b["benchmark"], b["direction"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(columns) * max(1, len(rows)) / 2), 4.5))
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs, ys, lo, hi = [], [], [], []
        for j, key in enumerate(columns):
            b = next((b for b in r["benchmarks"] if (b["benchmark"], b["direction"]) == key), None)
            if b is None:
                continue
            rule = b["headline_rule"]
            acc, iv = b["accuracy"].get(rule), (b["interval"] or {}).get(rule)
            if acc is None or not iv:
                continue
            xs.append(j + (i - (len(rows) - 1) / 2) * width)
            ys.append(100 * acc)
            lo.append(100 * (acc - iv[0]))
            hi.append(100 * (iv[1] - acc))
        p = r["plan"]
        ax.errorbar(
            xs, ys, yerr=[lo, hi], fmt="o", capsize=2, markersize=3,
            color=COLORS[p["system"]], label=f"{SYSTEMS[p['system']]} ({p['scale']})",
        )  # fmt: skip
    chance = {}
    for r in rows:
        for b in r["benchmarks"]:
            chance[(b["benchmark"], b["direction"])] = 100 * b["chance"]
    for j, key in enumerate(columns):
        ax.hlines(chance[key], j - 0.45, j + 0.45, colors="grey", linestyles="dotted")
    ax.set_xticks(range(len(columns)), [f"{b}\n{d}" for b, d in columns], fontsize=6)
    ax.set_ylabel("accuracy % (headline rule; 95 % Wilson interval)")
    ax.set_title("Zero-shot benchmarks at the budget stop (dotted: chance)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _save(fig, path)
