"""Results as ``results.json``, a markdown table and TensorBoard scalars."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lst_lightning.data.records import write_text_atomic
from lst_lightning.eval.runner import EvalResult
from lst_lightning.eval.scoring import HEADLINE_RULE, RULES

RULE_TITLES = {
    "per_char": "acc/char",
    "per_token": "acc/token",
    "sum": "acc/sum",
}


def direction_tag(direction: str) -> str:
    """``S->T`` -> ``s2t``: TensorBoard tags allow no ``>``."""
    return direction.replace("->", "2").lower()


def markdown_table(results: Sequence[EvalResult]) -> str:
    """Rows: benchmark x direction; columns: accuracy (%) under each rule, items, chance."""
    rules = [HEADLINE_RULE, *(r for r in RULES if r != HEADLINE_RULE)]
    head = ["benchmark", "direction", *(f"{RULE_TITLES[r]}" for r in rules), "items", "chance"]
    head[2] += " (headline)"
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        cells = [r.benchmark, r.direction]
        cells += [
            "n/a" if r.accuracy.get(x) is None else f"{100 * r.accuracy[x]:.1f}" for x in rules
        ]
        cells += [str(r.items), f"{100 * r.chance:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_document(results: Sequence[EvalResult], **meta: Any) -> dict[str, Any]:
    return {**meta, "headline_rule": HEADLINE_RULE, "results": [r.to_json() for r in results]}


def write_results(
    out_dir: str | Path, results: Sequence[EvalResult], **meta: Any
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir`` atomically; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = results_document(results, **meta)
    json_path, md_path = out / "results.json", out / "results.md"
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    title = f"Zero-shot multiple choice: {meta.get('checkpoint', 'model')}"
    step = meta.get("step")
    if step is not None:
        title += f" (step {step})"
    note = (
        f"\nAccuracy in %. Headline rule: log-likelihood of the ending per character of its text "
        f"({HEADLINE_RULE}); also per scored token and summed. Continuation tokens only.\n"
    )
    write_text_atomic(md_path, f"# {title}\n\n" + markdown_table(results) + note)
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
