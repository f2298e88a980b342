"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

MLS_FIXTURE = Path(__file__).parents[2] / "shared/fixtures/mls_english_aligned_units.jsonl"


@pytest.fixture(scope="session")
def mls_fixture_path() -> Path:
    """The 10 real MLS utterances in the paper's aligned-unit format (kept outside the repo)."""
    if not MLS_FIXTURE.is_file():
        pytest.skip(
            "the MLS fixture ../shared/fixtures/mls_english_aligned_units.jsonl is absent "
            f"(looked for {MLS_FIXTURE})"
        )
    return MLS_FIXTURE
