"""Shared test settings: hypothesis profiles and the golden-file switch.

Golden files are compared exactly; `SYMGRAD_ACCEPT=1 pytest` rewrites them for review in the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GOLDEN = Path(__file__).parent / "golden"
ACCEPT = os.environ.get("SYMGRAD_ACCEPT") == "1"


def check_golden(relative: str, text: str) -> None:
    """Compare `text` with the golden file `tests/golden/<relative>` (rewrite with SYMGRAD_ACCEPT=1)."""
    path = GOLDEN / relative
    if ACCEPT:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing: run `SYMGRAD_ACCEPT=1 python -m pytest` and review it")
    expected = path.read_text()
    assert text == expected, f"{path} differs (rewrite with SYMGRAD_ACCEPT=1 and review the diff)"


@pytest.fixture
def golden():
    return check_golden
