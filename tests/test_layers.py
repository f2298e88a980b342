"""The package's layers import one way: model <- data <- lit / callbacks / eval / entry points.

Checked statically over every ``import`` in every module (function-level imports included), so a
lazy import cannot hide a backwards arrow; and dynamically for the one rule that matters most to
users of the model code: importing it pulls in no Lightning.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lst_lightning"

# layer -> the layers of the kit it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "data.records": set(),
    "data.vocab": {"data.records"},
    "data.speech": {"data.records"},
    "data.stream": {"data.records", "data.vocab", "model"},
    "data.corpora": {"data.records", "data.vocab", "data.speech"},
    "data": {"data.records", "data.vocab", "data.speech", "data.stream", "data.corpora", "model"},
}


def layer_of(module: str) -> str:
    """``lst_lightning.data.stream.packing`` -> ``data.stream``; ``lst_lightning.model.x`` -> ``model``."""
    parts = module.split(".")[1:]
    if parts[:1] == ["data"] and len(parts) >= 2 and f"data.{parts[1]}" in ALLOWED:
        return f"data.{parts[1]}"
    return parts[0] if parts else ""


def kit_imports(path: Path) -> set[str]:
    """Every ``lst_lightning.*`` module the file imports, relative imports resolved."""
    module = "lst_lightning." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = (
        module.rsplit(".", 1)[0] if path.name != "__init__.py" else module[: -len(".__init__")]
    )
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lst_lightning"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("lst_lightning"):
                found.add(name)
                found.update(f"{name}.{a.name}" for a in node.names)
    return found


def modules_in(layer: str) -> list[Path]:
    folder = PACKAGE.joinpath(*layer.split("."))
    if folder.is_dir():
        return sorted(folder.rglob("*.py"))
    return [folder.with_suffix(".py")]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_flow_one_way(layer: str) -> None:
    bad = []
    for path in modules_in(layer):
        if layer == "data" and path.parent != PACKAGE / "data":
            continue  # the sub-packages have their own rows
        for name in kit_imports(path):
            target = layer_of(name)
            if not target or target == layer:
                continue
            if target not in ALLOWED[layer] and not (
                target == "data" and layer.startswith("data")  # the package itself
            ):
                bad.append(f"{path.relative_to(PACKAGE)} imports {name} ({target})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_layer_helper_reads_submodules() -> None:
    assert layer_of("lst_lightning.data.stream.packing") == "data.stream"
    assert layer_of("lst_lightning.data.records") == "data.records"
    assert layer_of("lst_lightning.model.lst") == "model"
    assert "lst_lightning.data.records" in kit_imports(PACKAGE / "data" / "vocab.py")


def test_model_and_data_do_not_import_lightning() -> None:
    code = (
        "import sys, lst_lightning.model, lst_lightning.data, lst_lightning.data.corpora.build, "
        "lst_lightning.data.speech.stages; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
