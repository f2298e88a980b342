from __future__ import annotations

import subprocess
import sys


def test_data_package_does_not_import_lightning():
    code = (
        "import sys, lst_lightning.data, lst_lightning.data.build; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
