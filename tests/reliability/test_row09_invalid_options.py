"""Row 9: ``n_heads 0`` and ``max_steps -1`` are errors naming the option, not a
ZeroDivisionError or an OverflowError."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import cli_fit


def test_zero_heads_names_the_option(generated_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises((ValueError, SystemExit)) as error:
        cli_fit(generated_corpus, tmp_path, "--model.network.global_model.n_heads=0")
    assert not isinstance(error.value.__context__, ZeroDivisionError)
    assert "n_heads must be an integer >= 1, got 0" in str(error.value)


def test_unbounded_max_steps_names_the_option(generated_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trainer.max_steps=-1 .* finite run length"):
        cli_fit(generated_corpus, tmp_path, "--trainer.max_steps=-1")
