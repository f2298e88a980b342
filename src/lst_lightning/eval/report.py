"""Results as ``results.json``, a markdown table and TensorBoard scalars."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lst_lightning.data.records import write_text_atomic
from lst_lightning.eval.heuristics import (
    flagged,
    format_accuracy,
    heuristics_markdown,
    read_heuristics,
    wilson_interval,
)
from lst_lightning.eval.runner import EvalResult
from lst_lightning.eval.scoring import HEADLINE_RULE, MINIMAL_PAIR_RULE, RULES

RULE_TITLES = {
    "per_char": "acc/char",
    "per_token": "acc/token",
    "sum": "acc/sum",
}


def direction_tag(direction: str) -> str:
    """``S->T`` -> ``s2t``: TensorBoard tags allow no ``>``."""
    return direction.replace("->", "2").lower()


def _cell(r: EvalResult, rule: str) -> str:
    acc = r.accuracy.get(rule)
    if acc is None:
        return "n/a"
    interval = (r.interval or {}).get(rule) or wilson_interval(acc, r.items)
    return format_accuracy(acc, interval)


def best_heuristic(heuristics: dict | None, r: EvalResult) -> str:
    """The strongest no-model heuristic on the form the ending of ``r``'s direction is in."""
    rows = (heuristics or {}).get("sets", {}).get(r.benchmark)
    form = "spoken" if r.direction.endswith("S") else "written"
    rows = [x for x in rows or () if x["form"] == form]
    if not rows:
        return "n/a"
    best = max(rows, key=lambda x: x["accuracy"])
    text = f"{best['heuristic']} {100 * best['accuracy']:.1f}"
    return f"**{text} (!)**" if best["flagged"] else text


def markdown_table(results: Sequence[EvalResult], heuristics: dict | None = None) -> str:
    """Rows: benchmark x direction; columns: the row's headline accuracy, the accuracy under
    each rule (all in % with a 95% Wilson interval), items, chance and, given the heuristics
    report of the sets, the strongest no-model heuristic for that ending form."""
    head = ["benchmark", "direction", "headline", *(RULE_TITLES[r] for r in RULES), "items"]
    head += ["chance"]
    if heuristics is not None:
        head.append("best no-model heuristic")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        rule = r.headline_rule
        cells = [r.benchmark, r.direction, f"{_cell(r, rule)} ({RULE_TITLES[rule]})"]
        cells += [_cell(r, x) for x in RULES]
        cells += [str(r.items), f"{100 * r.chance:.1f}"]
        if heuristics is not None:
            cells.append(best_heuristic(heuristics, r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_document(results: Sequence[EvalResult], **meta: Any) -> dict[str, Any]:
    return {**meta, "headline_rule": HEADLINE_RULE, "results": [r.to_json() for r in results]}


RULES_NOTE = (
    "Accuracy in % with its 95% Wilson score interval in brackets. Headline rule: story sets "
    f"{RULE_TITLES[HEADLINE_RULE]} (log-likelihood of the ending per character of its text), "
    f"minimal pairs {RULE_TITLES[MINIMAL_PAIR_RULE]} (summed, as the Zero Resource protocol); "
    "also per scored token and summed. Continuation tokens only."
)


def write_results(
    out_dir: str | Path, results: Sequence[EvalResult], **meta: Any
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir`` atomically; return their paths.

    When ``meta`` names a ``sets_dir`` holding ``heuristics.json``, the no-model heuristics are
    printed beside the models' accuracies and in a table of their own.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    heuristics = read_heuristics(meta["sets_dir"]) if meta.get("sets_dir") else None
    doc = results_document(results, **meta)
    if heuristics is not None:
        doc["heuristics"] = heuristics
    json_path, md_path = out / "results.json", out / "results.md"
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    title = f"Zero-shot multiple choice: {meta.get('checkpoint', 'model')}"
    step = meta.get("step")
    if step is not None:
        title += f" (step {step})"
    text = f"# {title}\n\n" + markdown_table(results, heuristics) + f"\n{RULES_NOTE}\n"
    if heuristics is not None:
        text += "\n## No-model heuristics on the same sets\n\n" + heuristics_markdown(heuristics)
        marked = {s: f for s, f in flagged(heuristics).items() if f}
        if marked:
            text += "\nFlagged sets (a heuristic beats chance by > 2 SE): " + "; ".join(
                f"{s} ({', '.join(f)})" for s, f in marked.items()
            )
            text += ".\n"
    write_text_atomic(md_path, text)
    return json_path, md_path


def scalar_logs(results: Sequence[EvalResult], prefix: str = "eval") -> dict[str, float]:
    """``eval/<benchmark>/<dir>/<rule>`` -> accuracy, for TensorBoard or ``LightningModule.log``."""
    out = {}
    for r in results:
        for rule, value in r.accuracy.items():
            if value is not None:
                out[f"{prefix}/{r.benchmark}/{direction_tag(r.direction)}/{rule}"] = value
    return out


def log_tensorboard(
    log_dir: str | Path, results: Sequence[EvalResult], step: int, prefix: str = "eval"
) -> None:
    """Append the accuracies and the table (as text) to the TensorBoard run in ``log_dir``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for tag, value in scalar_logs(results, prefix).items():
            writer.add_scalar(tag, value, step)
        writer.add_text(f"{prefix}/table", markdown_table(results), step)
    finally:
        writer.close()
