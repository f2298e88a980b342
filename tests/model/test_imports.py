"""The model layer is plain PyTorch: importing it must not pull in Lightning."""

from __future__ import annotations

import subprocess
import sys


def test_model_package_does_not_import_lightning() -> None:
    code = (
        "import sys, lst_lightning.model, lst_lightning.data.batch; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
