"""Shared test settings: hypothesis profiles and the golden-file switch.

Golden files are compared exactly; `SYMGRAD_ACCEPT=1 pytest` rewrites them for review in the diff.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
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


# A test that must bound a hang (a loop that never ends, work that grows without limit) fails after
# this many seconds instead of stopping CI. It is not a speed target: it is generous on purpose, far
# beyond what the work takes on a busy 2-core machine, so that load never fails it. Speed targets
# live in benchmarks/.
HANG_SECONDS = 120


@contextlib.contextmanager
def no_hang(what: str, seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail the test, naming `what`, if the block runs past `seconds` (a hang, not slowness)."""
    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} ran past {seconds:.0f} s: a hang")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def agreeing_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-element counter of the agreeing entries a comparison's table builds (each `Entry` the
    fast path did not make): tests of what reads a comparison without building its entries."""
    from symgrad.verdict import table as table_module

    built = [0]
    original = table_module.EntryTable._agreeing

    def counted(self: object, i: int) -> object:
        built[0] += 1
        return original(self, i)

    monkeypatch.setattr(table_module.EntryTable, "_agreeing", counted)
    return built
