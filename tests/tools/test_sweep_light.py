"""A sweep decides the flagged points that are not the first of their run without compare()'s
report (`tools/sweep_light.py`): a run of cancelling points by `rounding_only`, a run where
autograd is not finite (a NaN trap, an overflow, a domain edge) by `cause_only`. Every field of
the sweep is what it is when compare() decides those points (main's algorithm, which compared
them in full), the points compared exactly are the same, and each shows compare()'s cause and
executed derivative.

Ground truth: compare() itself at each point (whose sides are checked against SymPy and torch
elsewhere), and, for `cause_only`, autograd's value from torch run here by hand (lambdify onto
torch's functions) and the exact derivative from SymPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import Phase, given, settings, strategies as st

import symgrad as sg
from symgrad.sides.lowering import lower
from symgrad.tools.sweep_light import Light, worst_key
from symgrad.verdict.compare import cause_only

x = sp.Symbol("x")
SQRT_OR_ZERO = sp.Piecewise((sp.sqrt(x), x > 0), (0, True))

# (function, sweep options, range) whose flagged runs are of every signature on no threshold
CASES: list[tuple[sp.Basic, dict[str, Any], tuple[float, float]]] = [
    (SQRT_OR_ZERO, {"branches": "where"}, (-1.0, 1.0)),  # a NaN trap for x < 0
    (sp.exp(x) / (1 + sp.exp(x)), {}, (700.0, 720.0)),  # exp overflows past 709.78: inf / inf
    (sp.log(x) + x, {}, (-1.0, 1.0)),  # outside log's domain for x < 0
    ((1 - sp.cos(x)) / x**2, {}, (1e-4, 0.5)),  # cancellation
    (sp.sqrt(x) * sp.sin(x), {}, (-0.5, 0.5)),
]


def _by_hand(f: sp.Basic, branches: str) -> Any:
    if branches == "where":  # torch.where(x > 0, sqrt(x), 0), as the program is lowered
        return lambda t: torch.where(t > 0, torch.sqrt(t), torch.zeros_like(t))
    return sp.lambdify(x, f, [{"cos": torch.cos, "exp": torch.exp, "sqrt": torch.sqrt, "log": torch.log,
                               "sin": torch.sin}])


@pytest.mark.parametrize("f, options, span", CASES[:3] + CASES[4:])
def test_cause_only_says_what_compare_says(f: sp.Basic, options: dict[str, Any], span: tuple[float, float]) -> None:
    branches = options.get("branches", "if")
    by_hand = _by_hand(f, branches)
    lowered = lower(f, branches=branches)
    seen = set()
    for p in np.linspace(*span, 23):
        t = torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(by_hand(t), t)
        if math.isfinite(g.item()):
            continue
        got = cause_only(lowered, [float(p)], [0], [g.item()], "float64", 1e-9)
        full = sg.compare(f, at={x: float(p)}, **options)
        assert got is not None
        cause, values, first = got
        assert cause == full.cause.id, f"at x = {p!r}: {full}"
        (entry,) = full.entries
        want = math.nan if entry.grad_executed is None else float(entry.grad_executed)
        assert values[0] == want or (math.isnan(values[0]) and math.isnan(want))
        assert (None if full.ok else (cause, *first)) == worst_key(full)
        assert entry.grad_autograd is None or entry.grad_autograd == g.item() or (
            math.isnan(entry.grad_autograd) and math.isnan(g.item()))
        seen.add(cause)
    assert seen  # every range has points where autograd is not finite
    if f is SQRT_OR_ZERO:
        assert "nan-trap" in seen  # (and the kink at x = 0)


def _fields(s: sg.Sweep) -> dict[str, Any]:
    return {
        "counts": s.counts, "codes": s.codes.tolist(), "exact_points": s.exact_points,
        "inferred_points": s.inferred_points, "skipped_points": s.skipped_points, "regions": s.regions,
        "notes": s.notes, "executed": s.grad_executed.tobytes(), "autograd": s.grad_autograd.tobytes(),
        "value": s.value.tobytes(),
        "worst": [(c.cause.id, worst_key(c), str(c)) for c in s.worst],
    }


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # (no shrinking: a
# failing case names its range)
@given(case=st.sampled_from(CASES), a=st.floats(0.0, 0.45), b=st.floats(0.55, 1.0), n=st.integers(40, 300))
def test_a_sweep_with_light_checks_is_the_sweep_compare_makes_of_every_point(
        case: tuple[sp.Basic, dict[str, Any], tuple[float, float]], a: float, b: float, n: int) -> None:
    f, options, (lo, hi) = case
    over = {x: (lo + a * (hi - lo), lo + b * (hi - lo))}
    light = sg.sweep(f, over=over, n=n, progress=False, **options)
    decide = Light.decide
    with pytest.MonkeyPatch.context() as mp:
        # main's algorithm: cancelling points by `rounding_only`, every other point by compare()
        mp.setattr(Light, "decide", lambda self, i, point, auto:
                   decide(self, i, point, auto) if int(self.runs.signature(np.array([i]))[0]) == 1 else None)
        full = sg.sweep(f, over=over, n=n, progress=False, **options)
    assert _fields(light) == _fields(full)
    # the points compared exactly (an executed value at a flagged point) show compare()'s own
    flagged = light.executed.flagged
    shown = flagged[~np.isnan(light.grad_executed[flagged, 0])]
    for i in shown[:: max(1, len(shown) // 8)]:
        c = sg.compare(f, at={x: float(light.points[i, 0])}, **options)
        (e,) = c.entries
        assert light.causes[i] == c.cause.id
        want = math.nan if e.grad_executed is None else float(e.grad_executed)
        assert light.grad_executed[i, 0] == want or (math.isnan(want) and math.isnan(light.grad_executed[i, 0]))


def test_a_nan_trap_run_is_decided_without_a_report_after_its_first_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run of x < 0 under sqrt-or-0: compare() makes one comparison of it (its first point),
    the light check decides the rest of its compared points, each a NaN trap whose executed
    derivative is torch's 0 (the where's unselected branch), autograd's NaN."""
    import symgrad.tools.sweep as sweep_module

    calls: list[float] = []
    real = sweep_module.compare

    def counted(f: Any, at: Any, **kw: Any) -> Any:
        calls.append(float(at[x]))
        return real(f, at, **kw)

    monkeypatch.setattr(sweep_module, "compare", counted)
    s = sg.sweep(SQRT_OR_ZERO, over={x: (-2, 2)}, n=4001, branches="where", progress=False)
    assert s.counts["nan-trap"] == 2000
    # compare() at the run's first point and at the kink x = 0 (on its threshold), nowhere else
    assert s.exact_points >= 8 and calls == [-2.0, 0.0]
    assert s.counts == {"agree": 2000, "kink": 1, "nan-trap": 2000}
    run = s.grad_executed[:2000, 0]  # x < 0: compared points 0, inferred ones NaN
    assert np.isnan(s.grad_autograd[:2000, 0]).all() and (run[~np.isnan(run)] == 0).all()
    assert np.sum(~np.isnan(run)) == s.exact_points - 1


y = sp.Symbol("y")


@pytest.mark.parametrize("f, options, over", [
    (sp.Piecewise((sp.sqrt(x * y), x * y > 0), (0, True)) + y, {"branches": "where"}, {x: (-1, 1), y: (0.5, 2)}),
    (sp.log(x) * y + sp.exp(y), {}, {x: (-1, 1), y: (-2, 710)}),  # outside log's domain, and exp's overflow
])
def test_a_grid_sweep_with_light_checks_is_main_s(f: sp.Basic, options: dict[str, Any], over: dict[Any, Any]) -> None:
    """Two inputs, one gradient column each: the same fields as main's algorithm makes."""
    light = sg.sweep(f, over=over, n=21, progress=False, **options)
    decide = Light.decide
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Light, "decide", lambda self, i, point, auto:
                   decide(self, i, point, auto) if int(self.runs.signature(np.array([i]))[0]) == 1 else None)
        full = sg.sweep(f, over=over, n=21, progress=False, **options)
    assert _fields(light) == _fields(full)
    assert set(light.counts) - {"agree", "kink"}  # runs where autograd is not finite were compared
