"""Every script in `examples/` runs, and what it prints is its golden file.

The golden files are `tests/golden/examples/<script>.txt`; rewrite them with
`SYMGRAD_ACCEPT=1 python -m pytest tests/test_examples.py` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))


def test_the_examples_are_there():
    names = [p.name for p in SCRIPTS]
    assert names == [
        "01_detach.py",
        "02_control_flow.py",
        "03_graph_break.py",
        "04_relu_three_ways.py",
        "05_nan_trap.py",
        "06_quadratic_loss.py",
        "07_rank_one_pitfall.py",
        "08_cross_entropy.py",
        "09_gaussian_nll.py",
        "10_gradient_descent_step.py",
        "11_bayes_rule.py",
        "12_quadratic_loss_derivation.py",
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_prints_its_golden_report(script, golden):
    env = dict(os.environ, PYTHONWARNINGS="error")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=EXAMPLES.parent, timeout=300
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stderr}"
    assert done.stderr == "", f"{script.name} wrote to stderr:\n{done.stderr}"
    golden(f"examples/{script.stem}.txt", done.stdout)
