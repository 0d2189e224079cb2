"""Results as data: `to_dict()` of comparisons, entries and sweeps is JSON and round-trips;
`Sweep.to_frame()`; the CLI's `--json`; short reprs; fixed inputs in a sweep's `over`."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.show.cli import main
from symgrad.tools.sweep import Region

x, y, a, b, c = sp.symbols("x y a b c")
x1, x2, x10 = sp.symbols("x1 x2 x10")
X = sp.MatrixSymbol("X", 2, 2)

CASES: list[tuple[str, Any, dict[Any, Any], dict[str, Any]]] = [
    ("kink", sp.Max(x, 0), {x: 0.0}, {}),
    ("detach", x * sg.detach(x**2), {x: 3.0}, {}),
    ("nan-trap", sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), {x: -1.0}, {"branches": "where"}),
    ("overflow", sp.log(sp.exp(x) + sp.exp(y)), {x: 1000.0, y: 0.0}, {}),
    ("rounding", (1 - sp.cos(x)) / x**2, {x: 1e-4}, {}),
    ("graph-break", x * sg.item(x), {x: 3.0}, {}),
    ("domain", sp.log(x), {x: -1.0}, {}),
    ("float32", sp.sin(x) * x, {x: 0.1}, {"dtype": "float32"}),
    ("matrix output", X * X, {X: [[1.0, 2.0], [3.0, 4.0]]}, {}),
    ("hessian", x**3 * y, {x: 0.5, y: 2.0}, {"order": 2}),
]


def _json(d: Any) -> Any:
    return json.loads(json.dumps(d, allow_nan=False))


@pytest.mark.parametrize(("f", "at", "kw"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_comparison_to_dict_is_json_and_round_trips_every_field_of_every_entry(f: Any, at: Any, kw: Any) -> None:
    cmp = sg.compare(f, at=at, **kw)
    d = cmp.to_dict()
    assert _json(d) == d
    assert d["cause"] == cmp.cause.id and d["ok"] == cmp.ok and d["dtype"] == cmp.dtype
    assert len(d["entries"]) == len(cmp.entries)
    fields = {"output", "wrt", "grad_symbolic", "one_sided", "grad_executed", "grad_autograd", "cause", "also",
              "ok", "node", "line", "explanation", "hint", "autograd_error", "source"}
    for e, row in zip(cmp.entries, d["entries"]):
        assert set(row) == fields
        assert row == _json(e.to_dict())
        assert row["wrt"] == str(e.wrt) and row["cause"] == e.cause.id and row["line"] == e.line
        assert row["explanation"] == e.explanation and row["hint"] == e.hint
        for side in ("grad_symbolic", "grad_executed"):
            value = getattr(e, side)
            if value is None:
                assert row[side] is None
            else:  # the exact value as a string SymPy reads back, and its float
                assert sp.Rational(row[side]["exact"]) == value if isinstance(value, sp.Rational) else True
                assert row[side]["float"] == (float(value) if math.isfinite(float(value)) else str(float(value)))
        auto = e.grad_autograd
        if auto is None:
            assert row["grad_autograd"] is None
        elif math.isfinite(auto):
            assert row["grad_autograd"] == auto
        else:
            assert row["grad_autograd"] in ("nan", "inf", "-inf") and float(row["grad_autograd"]) == auto or math.isnan(auto)


def test_non_finite_values_are_strings_and_none_means_no_value() -> None:
    trap = sg.compare(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), at={x: -1.0}, branches="where").to_dict()
    assert trap["entries"][0]["grad_autograd"] == "nan"
    kink = sg.compare(sp.Max(x, 0), at={x: 0.0}).to_dict()["entries"][0]
    assert kink["grad_symbolic"] is None
    assert kink["one_sided"] == [{"exact": "0", "float": 0.0}, {"exact": "1", "float": 1.0}]
    assert kink["grad_autograd"] == 0.0
    half = sg.compare(x**2, at={x: 0.1}).to_dict()
    assert half["point"]["x"] == {"exact": "3602879701896397/36028797018963968", "float": 0.1}


def test_entries_run_in_natural_order_for_a_bare_expression() -> None:
    cmp = sg.compare(x2 + x10 + x1, at={x1: 1.0, x2: 2.0, x10: 3.0})
    assert [str(e.wrt) for e in cmp.entries] == ["x1", "x2", "x10"]
    assert [e["wrt"] for e in cmp.to_dict()["entries"]] == ["x1", "x2", "x10"]
    assert [str(e.wrt) for e in sg.compare(b * x + a, at={"a": 1, "b": 2, "x": 3}).entries] == ["a", "b", "x"]


def test_comparison_repr_is_short() -> None:
    cmp = sg.compare(sp.Max(x, 0), at={x: 0.0})
    assert repr(cmp) == "<Comparison of 'Max(0, x)' at x = 0.0 (float64): kink, 1 entry>"
    wide = sg.compare(sum(sp.Symbol(f"w{k}") * k for k in range(40)), at={f"w{k}": 1.0 for k in range(40)})
    assert len(repr(wide)) < 300


# ---------------------------------------------------------------- sweeps


def test_sweep_to_dict_is_json_with_columns_regions_and_worst_points() -> None:
    s = sg.sweep(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), over={x: (-2, 2)}, n=41, branches="where")
    d = s.to_dict()
    assert _json(d) == d
    assert d["counts"] == s.counts and d["n_points"] == 41 and d["inputs"] == ["x"] and d["swept"] == ["x"]
    cols = d["points"]
    assert set(cols) == {"x", "f", "symbolic d/dx", "executed d/dx", "autograd d/dx", "cause"}
    assert cols["x"] == s.points[:, 0].tolist()
    assert cols["cause"] == s.causes.tolist()
    assert cols["autograd d/dx"][:20] == ["nan"] * 20  # the trap: autograd is NaN left of 0
    assert [r["cause"] for r in d["regions"]] == ["nan-trap", "kink"]
    assert d["regions"][0] == {"cause": "nan-trap", "count": 20, "symbol": "x", "low": -2.0,
                              "high": float(s.points[19, 0])}
    for w, c in zip(d["worst"], s.worst):
        assert w["cause"] == c.cause.id and w["point"] == {"x": float(c.point[x])}
    assert "points" not in s.to_dict(points=False)


def test_sweep_repr_is_short() -> None:
    s = sg.sweep(sp.Max(x, y), over={x: (-1, 1), y: (-1, 1)}, n=41)
    assert len(repr(s)) < 300
    assert repr(s) == "<Sweep of 'Max(x, y)' over 1,681 points (float64): {'agree': 1640, 'kink': 41}>"
    assert len(repr(s.regions)) < 300


def test_to_frame_without_pandas_says_how_to_get_it() -> None:
    pytest.importorskip("numpy")
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pandas is installed: the frame itself is tested below")
    s = sg.sweep(sp.Abs(x), over={x: (-1, 1)}, n=5)
    with pytest.raises(sg.OptionError) as err:
        s.to_frame()
    assert str(err.value).startswith("Sweep.to_frame() needs pandas, which is not installed here.\n")
    assert "Fix: `pip install pandas`" in str(err.value)


def test_to_frame_has_one_row_per_point() -> None:
    pd = pytest.importorskip("pandas")
    s = sg.sweep(sp.Abs(x), over={x: (-1, 1)}, n=5)
    frame = s.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    assert list(frame.columns) == ["x", "f", "symbolic d/dx", "executed d/dx", "autograd d/dx", "cause"]
    assert frame["cause"].tolist() == s.causes.tolist()


def test_a_fixed_input_in_over_sweeps_the_others_only() -> None:
    s = sg.sweep(sp.Max(x, y), over={x: (-2, 2), y: 0.0}, n=101)
    assert len(s.points) == 101
    assert np.all(s.points[:, 1] == 0.0)
    np.testing.assert_array_equal(s.points[:, 0], np.linspace(-2, 2, 101))
    assert s.grid == (101,) and s.swept == (0,)
    assert s.counts == {"agree": 100, "kink": 1}
    assert s.regions == {"kink": (Region("kink", 1, "x", 0.0, 0.0),)}
    assert s.to_dict(points=False)["fixed"] == {"y": 0.0}
    # A fixed value next to an explicit batch is repeated for every point of the batch.
    batch = sg.sweep(x * y, over={x: [1.0, 2.0, 3.0], y: 2})
    np.testing.assert_array_equal(batch.grad_autograd[:, 0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(batch.grad_autograd[:, 1], [1.0, 2.0, 3.0])


def test_every_input_fixed_is_refused_with_a_sentence() -> None:
    with pytest.raises(sg.PointError) as err:
        sg.sweep(x * y, over={x: 1.0, y: 2.0})
    assert str(err.value).startswith("`over` fixes every input (x, y): there is nothing to sweep.\n")


def test_the_executed_derivative_is_known_where_compared_or_agreeing() -> None:
    s = sg.sweep(sp.Abs(x), over={x: (-1, 1)}, n=5)
    np.testing.assert_array_equal(s.grad_executed[:, 0], [-1.0, -1.0, 0.0, 1.0, 1.0])


# ---------------------------------------------------------------- the command line


def test_cli_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "Max(x, 0)", "--at", "x=0", "--json"]) == 1  # a kink: they disagree
    out, err = capsys.readouterr()
    assert err == ""
    d = json.loads(out)
    assert d == sg.compare(sp.Max(x, 0), at={x: 0.0}).to_dict()


def test_cli_sweep_json_with_a_fixed_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "Max(x, y)", "--over", "x=-2:2,y=0", "-n", "101", "--json"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["n_points"] == 101 and d["counts"] == {"agree": 100, "kink": 1} and d["fixed"] == {"y": 0.0}


def test_json_keeps_exact_fractions_not_the_reports_spelling() -> None:
    """A report writes 18.75 (75/4); the dictionary keeps one exact number and its float."""
    d = sg.compare(x * sg.detach(x**2), at={x: 2.5}).to_dict()["entries"][0]
    assert d["grad_symbolic"] == {"exact": "75/4", "float": 18.75}
    assert d["grad_executed"] == {"exact": "25/4", "float": 6.25}
    from symgrad.show.data import exact

    long = exact(sp.Rational(2, 3**9000))  # past MAX_EXACT_CHARS: 40 digits, nothing beside them
    assert long["rounded"] is True and "(" not in long["exact"] and long["float"] == 0.0
    assert long["exact"] == "1.620830194962876662275081571192877139483e-4294"
    assert abs(sp.Rational(sp.Float(long["exact"], 45)) / sp.Rational(2, 3**9000) - 1) < sp.Rational(1, 10**38)
