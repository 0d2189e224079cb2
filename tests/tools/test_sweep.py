"""`symgrad.sweep`: counts and regions on known functions, checked point by point against
`compare()` and against PyTorch itself; the plot, the HTML, progress, devices, bad input, the CLI.

Ground truth (DESIGN.md section 10): the cause at a point is what `symgrad.compare()` says there
(exact arithmetic), and autograd's value is what an independent torch computation, written here by
hand, gives at that point. The sweep's float flagging is an optimisation and must never change an
answer: a point the sweep calls "agree" must be one where `compare()` agrees too.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, While

import symgrad as sg
from cases import d2l_control_flow
from symgrad.show.cli import main
from symgrad.tools.sweep import MAX_POINTS, Region

x, y, z = sp.symbols("x y z")
a, b, c = sp.symbols("a b c")

SQRT_OR_ZERO = sp.Piecewise((sp.sqrt(x), x > 0), (0, True))
LOG_OR_SQRT = sp.Piecewise((sp.log(x), x > 0), (sp.sqrt(-x - 1), True))  # undefined on (-1, 0]
ONE_MINUS_COS = (1 - sp.cos(x)) / x**2
LOGSUMEXP = sp.log(sp.exp(x) + sp.exp(y))
D2L = d2l_control_flow()
D2L_BATCH = [0.48828125, 0.0, 0.3, -0.7, 1.5]


# ---------------------------------------------------------------- independent torch references
# Each takes scalar tensors and returns a scalar tensor: the program a student would write by hand.


def _d2l_torch(a: torch.Tensor) -> torch.Tensor:
    b = 2 * a
    while torch.abs(b) < 1000:
        b = 2 * b
    return b if b > 0 else 100 * b


REFERENCES: dict[str, Callable[..., torch.Tensor]] = {
    "abs": torch.abs,
    "floor+max": lambda x: torch.floor(x) + torch.relu(x),
    "sqrt-or-0 where": lambda x: torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x)),
    "sqrt-or-0 if": lambda x: torch.sqrt(x) if x > 0 else x * 0,
    "log-or-sqrt if": lambda x: torch.log(x) if x > 0 else torch.sqrt(-x - 1),
    "1-cos": lambda x: (1 - torch.cos(x)) / x**2,
    "logsumexp grid": lambda x, y: torch.log(torch.exp(x) + torch.exp(y)),
    "d2l batch": _d2l_torch,
    "sqrt-or-0 where float32": lambda x: torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x)),
    "1-cos float32": lambda x: (1 - torch.cos(x)) / x**2,
}

# name -> (function, its input symbols in order, over, keyword arguments)
CASES: dict[str, tuple[Any, tuple[sp.Symbol, ...], dict[Any, Any], dict[str, Any]]] = {
    "abs": (sp.Abs(x), (x,), {x: (-1, 1)}, {"n": 5}),
    "floor+max": (sp.floor(x) + sp.Max(x, 0), (x,), {x: (-2, 2)}, {"n": 401}),
    "sqrt-or-0 where": (SQRT_OR_ZERO, (x,), {x: (-2, 2)}, {"n": 401, "branches": "where"}),
    "sqrt-or-0 if": (SQRT_OR_ZERO, (x,), {x: (-2, 2)}, {"n": 401, "branches": "if"}),
    "log-or-sqrt if": (LOG_OR_SQRT, (x,), {x: (-2, 2)}, {"n": 401, "branches": "if"}),
    "1-cos": (ONE_MINUS_COS, (x,), {x: (1e-5, 1e-2)}, {"n": 101}),
    "logsumexp grid": (LOGSUMEXP, (x, y), {x: (0, 1000), y: (0, 1000)}, {"n": 11}),
    "d2l batch": (D2L, (a,), {a: D2L_BATCH}, {}),
    "sqrt-or-0 where float32": (SQRT_OR_ZERO, (x,), {x: (-2, 2)}, {"n": 101, "branches": "where", "dtype": "float32"}),
    "1-cos float32": (ONE_MINUS_COS, (x,), {x: (1e-3, 1)}, {"n": 101, "dtype": "float32"}),
}


@functools.cache
def swept(name: str) -> sg.Sweep:
    f, _, over, kw = CASES[name]
    return sg.sweep(f, over=over, **kw)


def torch_grad(fn: Callable[..., torch.Tensor], point: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """autograd's gradient at one point, computed by torch alone (scalar tensors, no symgrad)."""
    ts = [torch.tensor(float(v), dtype=dtype, requires_grad=True) for v in point]
    out = fn(*ts)
    grads = torch.autograd.grad(out, ts, allow_unused=True, materialize_grads=True)
    return np.array([g.item() for g in grads], dtype=np.float64)


def at_point(symbols: tuple[sp.Symbol, ...], row: np.ndarray) -> dict[sp.Symbol, float]:
    return {s: float(v) for s, v in zip(symbols, row)}


def regions_1d(s: sg.Sweep, cause: str) -> list[tuple[float | None, float | None, int]]:
    return [(r.low, r.high, r.count) for r in s.regions[cause]]


# ---------------------------------------------------------------- counts and regions


def test_abs_has_one_kink_at_zero() -> None:
    s = swept("abs")
    assert s.counts == {"agree": 4, "kink": 1}
    assert s.regions == {"kink": (Region("kink", 1, "x", 0.0, 0.0),)}
    assert list(s.causes) == ["agree", "agree", "kink", "agree", "agree"]
    np.testing.assert_array_equal(s.points[:, 0], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(s.value, [1.0, 0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(s.grad_autograd[:, 0], [-1.0, -1.0, 0.0, 1.0, 1.0])  # abs'(0) = 0
    assert [cmp.cause.id for cmp in s.worst] == ["kink"]
    assert s.worst[0].entries[0].one_sided == (-1, 1)
    assert (s.exact_points, s.inferred_points, s.skipped_points) == (1, 0, 0)
    assert str(s.regions["kink"][0]).startswith("kink: x = 0 (1 point")


def test_floor_plus_max_jumps_at_each_integer() -> None:
    s = swept("floor+max")
    assert s.counts == {"agree": 396, "jump": 5}
    assert regions_1d(s, "jump") == [(-2.0, -2.0, 1), (-1.0, -1.0, 1), (0.0, 0.0, 1), (1.0, 1.0, 1), (2.0, 2.0, 1)]
    assert set(s.regions) == {"jump"}  # the relu kink at 0 is outranked by floor's jump there
    jumps = s.points[s.causes == "jump", 0]
    np.testing.assert_array_equal(jumps, [-2.0, -1.0, 0.0, 1.0, 2.0])


def test_where_piecewise_nan_trap_for_every_negative_x_and_kink_at_zero() -> None:
    s = swept("sqrt-or-0 where")
    xs = s.points[:, 0]
    assert s.counts == {"agree": 200, "kink": 1, "nan-trap": 200}
    assert set(s.regions) == {"nan-trap", "kink"}
    [trap] = s.regions["nan-trap"]
    assert (trap.symbol, trap.count, trap.low) == ("x", 200, -2.0)
    assert trap.high == pytest.approx(-0.01, abs=1e-15)  # the last grid point left of 0
    assert regions_1d(s, "kink") == [(0.0, 0.0, 1)]
    assert np.all(s.causes[xs < 0] == "nan-trap")
    assert np.all(s.causes[xs > 0] == "agree")
    assert np.all(np.isnan(s.grad_autograd[xs < 0, 0]))  # 0 * nan in torch.where's backward
    np.testing.assert_array_equal(s.grad_symbolic[xs < 0, 0], 0.0)


def test_if_piecewise_is_control_flow_at_zero_only() -> None:
    s = swept("sqrt-or-0 if")
    assert s.counts == {"agree": 400, "control-flow": 1}
    assert s.regions == {"control-flow": (Region("control-flow", 1, "x", 0.0, 0.0),)}
    assert np.all(np.isfinite(s.grad_autograd))  # only the taken branch ran: no NaN trap


def test_one_minus_cos_rounds_at_small_x() -> None:
    s = swept("1-cos")
    xs = s.points[:, 0]
    assert set(s.counts) <= {"agree", "rounding"}
    assert s.causes[0] == "rounding"  # x = 1e-5: 1 - cos(x) cancels
    first = s.regions["rounding"][0]
    assert first.low == xs.min() == 1e-5
    assert first.high is not None and first.high <= 1e-2
    assert [cmp.cause.id for cmp in s.worst[:1]] == ["rounding"]


def test_logsumexp_grid_overflows_where_x_or_y_is_large() -> None:
    s = swept("logsumexp grid")
    assert s.grid == (11, 11)
    assert s.points.shape == (121, 2)
    assert s.counts == {"agree": 64, "overflow": 57}
    [region] = s.regions["overflow"]
    assert region.symbol == "x, y" and region.count == 57 and region.low is None
    expected = {(px, py) for px in range(0, 1001, 100) for py in range(0, 1001, 100) if max(px, py) >= 800}
    assert set(region.points) == {(float(px), float(py)) for px, py in expected}
    large = s.points.max(axis=1) >= 800  # exp(800) overflows float64 (max about exp(709.78))
    assert np.all(s.causes[large] == "overflow") and np.all(s.causes[~large] == "agree")


def test_logsumexp_underflow_is_found_as_compare_finds_it() -> None:
    # exp(-800) underflows to 0, so autograd's d/dx is 0 where the exact one is exp(-160).
    points = {x: [-800.0, 0.0], y: [-640.0, 0.0]}
    s = sg.sweep(LOGSUMEXP, over=points)
    truth = [sg.compare(LOGSUMEXP, at={x: px, y: py}).cause.id for px, py in zip(points[x], points[y])]
    assert truth == ["overflow", "agree"]
    assert list(s.causes) == truth


def test_d2l_program_batch_threshold_and_endless_loop() -> None:
    s = swept("d2l batch")
    assert list(s.causes) == ["control-flow", "skipped", "agree", "agree", "agree"]
    assert s.counts == {"agree": 3, "control-flow": 1}
    assert s.skipped_points == 1
    assert sum(s.counts.values()) + s.skipped_points == len(D2L_BATCH)
    assert regions_1d(s, "control-flow") == [(0.48828125, 0.48828125, 1)]
    assert "skipped: a loop passed max_iterations" in str(s)
    # b = 2a doubled until |b| >= 1000; c = b (b > 0) or 100 b: gradients 2 * 2^k (times 100)
    ok = s.causes != "skipped"
    np.testing.assert_array_equal(s.grad_autograd[ok, 0], [2048.0, 4096.0, 204800.0, 1024.0])
    np.testing.assert_array_equal(s.value[ok], [1000.0, 1228.8, -143360.0, 1536.0])
    assert [cmp.cause.id for cmp in s.worst] == ["control-flow"]


def test_float32_sweep_uses_float32_points_and_autograd() -> None:
    s = swept("sqrt-or-0 where float32")
    assert s.dtype == "float32"
    assert s.counts == {"agree": 50, "kink": 1, "nan-trap": 50}
    np.testing.assert_array_equal(s.points, s.points.astype(np.float32).astype(np.float64))
    xs = s.points[:, 0]
    t = torch.tensor(xs, dtype=torch.float32, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.where(t > 0, torch.sqrt(t), torch.zeros_like(t)).sum(), t)
    np.testing.assert_array_equal(s.grad_autograd[:, 0], expected.double().numpy())
    finite = s.grad_autograd[np.isfinite(s.grad_autograd)]
    np.testing.assert_array_equal(finite, finite.astype(np.float32).astype(np.float64))  # float32 values
    assert np.all(np.isnan(s.grad_autograd[xs < 0, 0]))


# ---------------------------------------------------------------- cross-check against compare() and torch


@pytest.mark.parametrize("name", list(CASES))
def test_sweep_agrees_with_compare_and_torch_at_sampled_points(name: str) -> None:
    f, symbols, _, _ = CASES[name]
    s = swept(name)
    n = len(s.points)
    rng = np.random.default_rng(20240611)
    sample = rng.choice(n, size=min(n, 40), replace=False)
    not_agree = np.flatnonzero(s.causes != "agree")[:5]  # and a few of the interesting points
    idx = np.unique(np.concatenate([sample, not_agree]))
    dtype = torch.float32 if s.dtype == "float32" else torch.float64
    branches: Literal["if", "where"] = "where" if s.branches == "where" else "if"
    wrong_cause, wrong_grad = [], []
    for i in idx:
        at = at_point(symbols, s.points[i])
        if s.causes[i] == "skipped":
            with pytest.raises(sg.LoopLimitError):
                sg.compare(f, at=at, dtype=s.dtype, branches=branches)
            continue
        truth = sg.compare(f, at=at, dtype=s.dtype, branches=branches).cause.id
        if truth != s.causes[i]:
            wrong_cause.append((tuple(float(v) for v in s.points[i]), f"sweep {s.causes[i]}", f"compare {truth}"))
        expected = torch_grad(REFERENCES[name], s.points[i], dtype)
        if not np.array_equal(s.grad_autograd[i], expected, equal_nan=True):
            wrong_grad.append((tuple(float(v) for v in s.points[i]), s.grad_autograd[i].tolist(), expected.tolist()))
    assert not wrong_cause, f"{len(wrong_cause)} of {len(idx)} sampled points: {wrong_cause[:5]}"
    assert not wrong_grad, f"{len(wrong_grad)} of {len(idx)} sampled points: {wrong_grad[:5]}"


def test_float32_rounding_between_rtol_and_ten_rtol_is_not_called_agree() -> None:
    # float32 rtol is 1e-4; at x = 0.12088 autograd is off by 4.4e-4 (compare: rounding).
    s = swept("1-cos float32")
    i = int(np.argmin(np.abs(s.points[:, 0] - 0.12088)))
    assert sg.compare(ONE_MINUS_COS, at={x: float(s.points[i, 0])}, dtype="float32").cause.id == "rounding"
    assert s.causes[i] == "rounding"


def test_max_exact_infers_causes_of_the_rest() -> None:
    full = swept("sqrt-or-0 where")
    few = sg.sweep(SQRT_OR_ZERO, over={x: (-2, 2)}, n=401, branches="where", max_exact=10)
    assert few.counts == full.counts
    assert list(few.causes) == list(full.causes)
    assert 1 <= few.exact_points <= 10  # "at most max_exact" (the worst and an even spread)
    assert few.inferred_points == 201 - few.exact_points  # 201 flagged: x <= 0
    assert f"the causes of {few.inferred_points} more were inferred" in str(few)


# ---------------------------------------------------------------- executed control flow is per point


def test_if_runs_each_branch_only_on_its_own_points() -> None:
    s = swept("log-or-sqrt if")
    xs = s.points[:, 0]
    defined = (xs > 0) | (xs < -1)  # log(x) for x > 0, sqrt(-x - 1) for x < -1
    assert np.array_equal(np.isfinite(s.grad_autograd[:, 0]), defined)
    np.testing.assert_array_equal(s.grad_autograd[xs > 0, 0], 1 / xs[xs > 0])
    assert s.counts == {"agree": 300, "domain": 101}
    assert regions_1d(s, "domain") == [(-1.0, 0.0, 101)]

    where = sg.sweep(LOG_OR_SQRT, over={x: (-2, 2)}, n=401, branches="where")
    assert not np.any(np.isfinite(where.grad_autograd[xs > 0, 0]))  # both branches ran there
    assert where.counts == {"agree": 100, "domain": 101, "nan-trap": 200}


# ---------------------------------------------------------------- plot


def test_plot_writes_a_png_of_800_by_500(tmp_path: Path) -> None:
    s = swept("sqrt-or-0 where")
    path = tmp_path / "s.png"
    s.plot(str(path))
    assert path.exists()
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert struct.unpack(">II", head[16:24]) == (800, 500)


def test_plot_draws_the_sweeps_data_on_given_axes() -> None:
    from matplotlib.figure import Figure

    s = swept("sqrt-or-0 where")
    fig = Figure()
    ax = fig.subplots()
    assert s.plot(ax=ax) is fig
    xs = s.points[:, 0]
    f_line, sym_line, exe_line, auto_line = ax.lines
    for line in ax.lines:
        np.testing.assert_array_equal(line.get_xdata(), xs)
    np.testing.assert_array_equal(f_line.get_ydata(), s.value)
    np.testing.assert_array_equal(sym_line.get_ydata(), s.grad_symbolic[:, 0])
    np.testing.assert_array_equal(exe_line.get_ydata(), s.grad_executed[:, 0])
    np.testing.assert_array_equal(auto_line.get_ydata(), s.grad_autograd[:, 0])
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["f", "symbolic f'", "executed f'", "autograd f'", "kink", "nan-trap"]
    marked = {coll.get_label(): np.asarray(coll.get_offsets())[:, 0] for coll in ax.collections}
    assert set(marked) == {"kink", "nan-trap"}
    for cause, at in marked.items():
        np.testing.assert_array_equal(np.asarray(at), xs[s.causes == cause])
    assert ax.get_xlabel() == "x"
    # A band under each region, in its cause's colour, covering its points.
    from matplotlib.colors import to_rgb

    from symgrad.show.report import CAUSE_COLORS

    bands = [(p.get_facecolor()[:3], p.get_x(), p.get_x() + p.get_width()) for p in ax.patches]
    expected = [r for rs in s.regions.values() for r in rs]
    assert len(bands) == len(expected)
    for (colour, lo, hi), r in zip(bands, expected):
        assert np.allclose(colour, to_rgb(CAUSE_COLORS[r.cause]))
        assert lo < r.low <= r.high < hi


def test_the_executed_derivative_is_the_exact_one_at_compared_points() -> None:
    s = swept("sqrt-or-0 where")
    known = np.isfinite(s.grad_executed[:, 0])
    assert known.sum() >= s.counts["agree"]
    for c in s.worst:
        k = int(np.flatnonzero(s.points[:, 0] == float(c.point[x]))[0])
        assert s.grad_executed[k, 0] == float(c.entries[0].grad_executed)


def test_2d_plot_pixels_match_the_cause_map(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    from symgrad.show.report import MAP_COLORS

    s = sg.sweep(sp.Max(x, y), over={x: (-1, 1), y: (-1, 1)}, n=41)
    assert s.counts == {"agree": 1640, "kink": 41}
    path = tmp_path / "map.png"
    fig = s.plot(str(path))
    image = imread(str(path))
    assert image.shape[:2] == (500, 1200)
    cause_ax, heat_ax = fig.axes[:2]
    assert "cause" in cause_ax.get_title() and "exact" in heat_ax.get_title()
    labels = [t.get_text() for t in cause_ax.get_legend().get_texts()]
    assert labels == ["kink", "agree", "worst points"]
    worst = [cause_ax.transData.transform((float(c.point[x]), float(c.point[y]))) for c in s.worst]
    height = image.shape[0]
    grid = s.points.reshape(41, 41, 2)
    causes = s.causes.reshape(41, 41)
    checked = {"agree": 0, "kink": 0}
    for i in range(41):
        for j in range(41):
            if (i + j) % 3 and i != j:
                continue  # every third point, and the whole diagonal
            px, py = cause_ax.transData.transform(grid[i, j])
            if any(abs(px - wx) < 10 and abs(py - wy) < 10 for wx, wy in worst):
                continue  # under a worst point's marker
            pixel = image[int(height - py), int(px), :3]
            want = to_rgb(MAP_COLORS[causes[i, j]])
            assert np.allclose(pixel, want, atol=0.02), (grid[i, j], causes[i, j], pixel)
            checked[causes[i, j]] += 1
    assert checked["kink"] >= 39 and checked["agree"] > 400


def test_more_than_two_swept_inputs_plot_says_to_fix_some() -> None:
    s = sg.sweep(x * y * z, over={x: (-1, 1), y: (-1, 1), z: (-1, 1)}, n=3)
    with pytest.raises(sg.OptionError) as err:
        s.plot()
    msg = str(err.value)
    assert msg.startswith("Sweep.plot() draws one or two swept inputs; this sweep runs over 3 (x, y, z).\n")
    assert "Fix: hold the others fixed in `over`, e.g. `over={x: (-1, 1), y: (-1, 1), z: 0.0}`" in msg
    fixed = sg.sweep(x * y * z, over={x: (-1, 1), y: (-1, 1), z: 0.5}, n=3)
    assert len(fixed.plot().axes) >= 2  # a map and a heat map (and its colour bar)


# ---------------------------------------------------------------- HTML


class _CountsTable(HTMLParser):
    """Rows of `<table class="symgrad-counts">`: (cells' text, classes of the badge span)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.rows: list[tuple[list[str], list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = (dict(attrs).get("class") or "").split()
        if tag == "table" and "symgrad-counts" in cls:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append(([], []))
        elif self.inside and tag in ("td", "th"):
            self.cell = []
        elif self.inside and tag == "span":
            self.rows[-1][1].extend(cls)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1][0].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_repr_html_has_counts_table_with_a_badge_per_cause() -> None:
    s = swept("sqrt-or-0 where")
    parser = _CountsTable()
    parser.feed(s._repr_html_())
    header, *rows = parser.rows
    assert header == (["cause", "points"], [])
    assert len(rows) == len(s.counts)
    assert rows == [([cause, str(n)], ["symgrad-cause", f"symgrad-{cause}"]) for cause, n in s.counts.items()]
    assert rows[1:] == [(["kink", "1"], ["symgrad-cause", "symgrad-kink"]),
                        (["nan-trap", "200"], ["symgrad-cause", "symgrad-nan-trap"])]
    assert "Piecewise((sqrt(x), x &gt; 0), (0, True))" in s._repr_html_()


# ---------------------------------------------------------------- progress


def test_no_progress_on_stderr_when_it_is_not_a_terminal(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert not sys.stderr.isatty()
    monkeypatch.setattr(sys.modules["symgrad.tools.sweep"], "PER_RUN", 1000)  # every flagged point compared exactly
    s = sg.sweep(SQRT_OR_ZERO, over={x: (-2, 2)}, n=401, branches="where", progress=None)
    assert s.exact_points == 201  # more than 50 compared exactly: progress would show on a terminal
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")


# ---------------------------------------------------------------- device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_sweep_matches_cpu() -> None:  # pragma: no cover - needs a GPU
    for name in ("sqrt-or-0 where", "floor+max", "logsumexp grid", "d2l batch"):
        f, _, over, kw = CASES[name]
        gpu = sg.sweep(f, over=over, device="cuda", **kw)
        cpu = swept(name)
        assert gpu.device.startswith("cuda")
        assert gpu.counts == cpu.counts, name
        assert list(gpu.causes) == list(cpu.causes), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_an_option_error() -> None:
    with pytest.raises(sg.OptionError) as err:
        sg.sweep(sp.Abs(x), over={x: (-1, 1)}, n=5, device="cuda")
    msg = str(err.value)
    assert msg.startswith("device='cuda', but torch sees no GPU here.\n")
    assert 'Fix: use device="cpu".' in msg


# ---------------------------------------------------------------- bad input


BAD_INPUT = [
    ("unknown symbol", sp.Abs(x), {z: (-1, 1)}, {}, sg.PointError,
     "`over` names z, which the function does not use (inputs: x)."),
    ("missing symbol", x * y, {x: (-1, 1)}, {}, sg.PointError, "`over` gives no values for y."),
    ("ranges and arrays", x * y, {x: (-1, 1), y: [0.0, 1.0]}, {}, sg.PointError,
     "`over` mixes ranges and explicit values."),
    ("NaN in a batch", sp.Abs(x), {x: [0.0, float("nan")]}, {}, sg.PointError,
     "`over` contains NaN or infinite values (after rounding to the dtype)."),
    ("NaN in a range", sp.Abs(x), {x: (float("nan"), 1.0)}, {}, sg.PointError,
     "`over` contains NaN or infinite values (after rounding to the dtype)."),
    ("overflows float32", sp.Abs(x), {x: (0.0, 1e39)}, {"dtype": "float32"}, sg.PointError,
     "`over` contains NaN or infinite values (after rounding to the dtype)."),
    ("n=0", sp.Abs(x), {x: (-1, 1)}, {"n": 0}, sg.OptionError, "n=0 is not a positive number of points."),
    ("batches of two lengths", x * y, {x: [1.0, 2.0], y: [1.0]}, {}, sg.PointError,
     "The explicit batches in `over` have different lengths."),
    ("empty over", sp.Abs(x), {}, {}, sg.PointError,
     "`over` must map input symbols to (low, high) ranges or to arrays of values."),
    ("bad branches", sp.Abs(x), {x: (-1, 1)}, {"branches": "iff"}, sg.OptionError, "branches='iff'"),
    # Found while writing these tests: the next four are not SymgradErrors today.
    ("unknown wrt", x * y, {x: (-1, 1), y: (-1, 1)}, {"wrt": [z], "n": 3}, sg.OptionError, "wrt names z"),
    ("empty batch", sp.Abs(x), {x: []}, {}, sg.PointError, "`over`"),
    ("a string in a batch", sp.Abs(x), {x: ["a"]}, {}, sg.PointError, "`over`"),
    ("unknown device", sp.Abs(x), {x: (-1, 1)}, {"device": "tpu", "n": 3}, sg.OptionError, "device='tpu'"),
]


@pytest.mark.parametrize(("f", "over", "kw", "error", "first"), [case[1:] for case in BAD_INPUT],
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_gets_a_sentence(f: Any, over: dict[Any, Any], kw: dict[str, Any], error: type,
                                   first: str) -> None:
    with pytest.raises(sg.SymgradError) as err:
        sg.sweep(f, over=over, **kw)
    assert isinstance(err.value, error)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert msg.startswith(first), msg
    assert "Fix:" in msg
    assert msg.splitlines()[0].endswith(".")
    assert msg.splitlines()[-1].startswith("See docs/errors.md#")


# ---------------------------------------------------------------- command line


def test_cli_sweep_prints_counts_and_writes_the_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.png"
    rc = main(["sweep", "Abs(x)", "--over", "x=-1:1", "-n", "5", "--plot", str(path)])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith('symgrad sweep: Abs(x) over 5 points (float64, branches="if", ')
    assert lines[1:3] == ["  kink          1", "  agree         4"]
    assert lines[3].startswith("  where kink: x = 0 (1 point")
    assert lines[-1] == f"plot written to {path}"
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (800, 500)


@pytest.mark.parametrize(("over", "first"), [
    ("x=-1", "symgrad: `over` fixes every input (x): there is nothing to sweep."),
    ("x=a:b", "symgrad: --over 'x=a:b' is not NAME=LOW:HIGH or NAME=VALUE."),
    ("x", "symgrad: --over 'x' is not NAME=LOW:HIGH or NAME=VALUE."),
    ("y=-1:1", "symgrad: `over` names y, which the function does not use (inputs: x)."),
])
def test_cli_sweep_bad_over_exits_2_with_a_sentence(over: str, first: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sweep", "Abs(x)", "--over", over, "-n", "5"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    assert err.splitlines()[0] == first
    assert "Fix:" in err


@pytest.mark.parametrize("state", ["no_grad", "inference_mode", "detect_anomaly", "default_float32"])
def test_sweep_is_the_same_in_any_user_torch_state_and_restores_it(state: str) -> None:
    x = sp.Symbol("x")
    f = sp.Abs(x) + sp.sqrt(x**2)
    outside = sg.sweep(f, over={x: (-1, 1)}, n=5)
    contexts = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
                "detect_anomaly": lambda: torch.autograd.set_detect_anomaly(True)}
    default = torch.get_default_dtype()
    try:
        if state == "default_float32":
            torch.set_default_dtype(torch.float32)
        with contexts.get(state, torch.enable_grad)():
            before = (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.is_anomaly_enabled(),
                      torch.get_default_dtype())
            inside = sg.sweep(f, over={x: (-1, 1)}, n=5)
            after = (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.is_anomaly_enabled(),
                     torch.get_default_dtype())
    finally:
        torch.set_default_dtype(default)
    assert after == before
    assert inside.counts == outside.counts == {"agree": 4, "kink": 1}
    np.testing.assert_array_equal(inside.grad_autograd, outside.grad_autograd)


class _NoAllocation:
    """`numpy` as symgrad.tools.sweep sees it, except that every call that would build the grid or
    copy the user's batch fails the test: a sweep refused for its size must be refused before it
    allocates anything of that size (a structural check; the memory itself is a benchmark row,
    benchmarks/run.py, "peak memory of a sweep refused for its size")."""

    ALLOCATING = ("linspace", "meshgrid", "full", "stack", "array", "empty", "zeros", "ones", "concatenate")

    def __getattr__(self, name: str) -> Any:
        if name in self.ALLOCATING:
            def refused(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError(f"np.{name} was called before the size was refused")
            return refused
        return getattr(np, name)


@pytest.mark.parametrize("over, n, points, fits", [
    ("x", 10**9, 10**9, 20_000_000),
    ("xy", 100_000, 10**10, 4472),
    ("xy", 4473, 4473**2, 4472),
    ("xyz", 300, 300**3, 271),
])
def test_a_sweep_too_large_is_refused_before_allocating(over: str, n: int, points: int, fits: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import symgrad.tools.sweep as sweep_module

    syms = sp.symbols(" ".join(over), seq=True)
    f = sum(s**2 for s in syms)
    sg.lower(f)  # lowered first, with numpy as it is
    monkeypatch.setattr(sweep_module, "np", _NoAllocation())
    with pytest.raises(sg.OptionError) as err:
        sg.sweep(f, over={s: (0, 1) for s in syms}, n=n)
    monkeypatch.undo()
    text = str(err.value)
    assert f"This sweep would have {points:,} points" in text
    assert f"MAX_POINTS = {MAX_POINTS:,}" in text
    gib = points * len(syms) * 8 / 2**30
    assert f"{gib:,.1f} GiB" in text
    assert f"n={fits:,} gives {fits ** len(syms):,} points" in text
    assert fits ** len(syms) <= 20_000_000 < (fits + 1) ** len(syms)
    assert text.endswith("See docs/errors.md#optionerror")


def test_a_sweep_at_the_limit_still_runs_and_a_large_batch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import symgrad.tools.sweep as sweep_module

    x = sp.Symbol("x")
    s = sg.sweep(x**2, over={x: (0, 1)}, n=200_000)
    assert s.counts == {"agree": 200_000}
    batch = np.broadcast_to(np.float64(0.5), (20_000_001,))  # a view of one float: no memory
    seen: list[Any] = []
    real_asarray = np.asarray

    def asarray(v: Any, *args: Any, **kwargs: Any) -> Any:
        out = real_asarray(v, *args, **kwargs)
        seen.append(out)
        return out

    no_alloc = _NoAllocation()
    monkeypatch.setattr(sweep_module, "np", no_alloc)
    monkeypatch.setattr(_NoAllocation, "asarray", staticmethod(asarray), raising=False)
    with pytest.raises(sg.OptionError, match="20,000,001 points \\(an explicit batch\\)"):
        sg.sweep(x**2, over={x: batch})
    monkeypatch.undo()
    # the batch was read as it is, never copied: every array made of it is still the one-float view
    assert all(a.size < 1000 or np.shares_memory(a, batch) for a in seen if isinstance(a, np.ndarray))
    with pytest.raises(sg.OptionError, match="not a positive number"):
        sg.sweep(x**2, over={x: (0, 1)}, n=True)


def test_a_run_of_flagged_points_is_decided_by_its_representatives() -> None:
    s = sg.sweep(SQRT_OR_ZERO, over={x: (-2, 2)}, n=4001, branches="where", progress=False)
    assert s.counts["nan-trap"] == 2000  # x < 0: every point of the run, 8 of them compared exactly
    assert s.exact_points <= 20 and s.inferred_points >= 1980


def test_sweep_agree_means_what_compare_says_on_a_cancellation_range() -> None:
    """(1 - cos(x))/x**2 cancels near 0: a float confirmation would share autograd's error. Every
    point the sweep compared says what compare() says there, and the sweep's own verdict at
    sampled points (compared or inferred) matches compare() wherever it was compared exactly."""
    f = (1 - sp.cos(x)) / x**2
    s = sg.sweep(f, over={x: (1e-4, 0.5)}, n=2000, progress=False)
    codes = s.causes
    checked = 0
    for k in range(0, 2000, 37):
        c = sg.compare(f, at={x: float(s.points[k, 0])})
        if c.cause.id == "rounding":
            assert codes[k] != "agree", f"the sweep says agree at x = {s.points[k, 0]!r}, compare() says rounding"
            checked += 1
    assert checked >= 3
    assert sg.compare(f, at={x: 0.014354277138569283}).cause.id == "rounding"


def test_plot_without_matplotlib_suggests_a_command_that_works_from_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    s = sg.sweep(sp.Abs(x), over={x: (-1, 1)}, n=5)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(sg.OptionError) as err:
        s.plot("never.png")
    msg = str(err.value)
    assert msg.startswith("Sweep.plot() needs matplotlib, which is not installed.\n")
    assert "`pip install matplotlib`" in msg and '`pip install -e ".[plot]"`' in msg
    assert "symgrad[plot]" not in msg


def test_grad_symbolic_is_sympys_derivative_at_every_point() -> None:
    """The float symbolic derivative is computed when asked for (the sweep itself checks it on a
    sample): its values are SymPy's derivative, evaluated here independently with lambdify."""
    f = sp.sin(x) * x**3 + sp.exp(-x)
    s = sg.sweep(f, over={x: (-2, 2)}, n=3001, progress=False)
    want = sp.lambdify(x, sp.diff(f, x), "numpy")(s.points[:, 0])
    np.testing.assert_allclose(s.grad_symbolic[:, 0], want, rtol=1e-12, atol=1e-12)
    assert s.counts == {"agree": 3001}


def test_a_mismatch_no_flag_predicts_is_still_found_by_the_symbolic_cross_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the batch runner did not record relu's corner (its tie test removed), the float symbolic
    derivative, checked on a sample of the points, still disagrees at 0 (SymPy's Heaviside(0) is
    1/2, torch's relu'(0) is 0), and the sweep then compares it with autograd everywhere: the
    kink is found."""
    batch_module = sys.modules["symgrad.sides.batch"]  # the batch runner
    monkeypatch.delitem(batch_module._TIE_TEST, "relu")
    s = sg.sweep(sp.Max(x, 0) + x**2, over={x: (-1, 1)}, n=5, progress=False)
    assert s.counts == {"agree": 4, "kink": 1}
    assert s.causes[2] == "kink"
    assert list(s.grad_symbolic[:, 0]) == [-2.0, -1.0, 0.5, 2.0, 3.0]


def test_float32_sweep_checks_every_point_against_the_float64_derivative() -> None:
    """In float32 the float64 symbolic derivative is the more precise one: a point where
    (1 - cos x)/x**2 rounds past rtol without a subtraction flagging it is still compared."""
    f = (1 - sp.cos(x)) / x**2
    point = 0.27072998881340027  # a float32: autograd is off by 1.4e-4 > rtol = 1e-4
    assert sg.compare(f, at={x: point}, dtype="float32").cause.id == "rounding"
    s = sg.sweep(f, over={x: np.array([0.25, point, 0.3])}, dtype="float32", progress=False)
    assert s.causes[1] == "rounding"


def test_a_mixed_run_that_fits_in_max_exact_is_compared_point_by_point() -> None:
    """Near the end of (1 - cos x)/x**2's cancellation range rounding comes and goes from point to
    point. Where the run fits in max_exact every flagged point is compared, and the sweep says
    exactly what compare() says at each; with a small max_exact the run is bisected, the compared
    points are still exact and the rest take the cause of their nearest compared neighbour."""
    f = (1 - sp.cos(x)) / x**2
    full = sg.sweep(f, over={x: (1e-4, 0.5)}, n=2001, progress=False)
    assert full.inferred_points == 0
    flagged = np.flatnonzero(np.isnan(full.grad_executed[:, 0]) | (full.codes != 0))
    for k in flagged:
        assert full.causes[k] == sg.compare(f, at={x: float(full.points[k, 0])}).cause.id
    truth = full.causes
    assert 50 < np.sum(truth == "rounding") < 200
    few = sg.sweep(f, over={x: (1e-4, 0.5)}, n=2001, progress=False, max_exact=30)
    assert few.exact_points <= 30 and few.inferred_points > 0
    assert few.causes[0] == "rounding" and few.regions["rounding"][0].low == 1e-4
    wrong = np.sum(few.causes != truth)
    assert wrong < 0.3 * len(flagged), f"{wrong} of {len(flagged)} flagged points inferred wrongly"


@pytest.mark.parametrize("f", [(1 - sp.cos(x)) / x**2, (sp.exp(x) - 1 - x) / x**2, sp.sqrt(x**2 + 1) - x])
def test_rounding_only_decides_as_compare_does(f: sp.Basic) -> None:
    """The sweep's report-free decision for cancelling points says what compare() says, with
    autograd's value taken from an independent torch run written here by hand (lambdify onto
    torch's functions)."""
    from symgrad.verdict.compare import rounding_only
    from symgrad.sides.lowering import lower

    by_hand = sp.lambdify(x, f, [{"cos": torch.cos, "exp": torch.exp, "sqrt": torch.sqrt}])
    lowered = lower(f)
    decided = 0
    for p in np.geomspace(1e-5, 3.0, 41):
        t = torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
        g = torch.autograd.grad(by_hand(t), t)[0].item()
        quick = rounding_only(lowered, [float(p)], [0], [g], "float64", 1e-9)
        full = sg.compare(f, at={x: float(p)})
        if quick is not None:
            decided += 1
            assert quick[0] == full.cause.id, f"at x = {p!r}: {full}"
            assert quick[1][0] == float(full.entries[0].grad_executed)
    assert decided >= 35


def test_softplus_above_its_threshold_is_what_compare_says() -> None:
    """torch's softplus is its argument itself above 20: its slope 1 against the mathematics'
    sigmoid(x) is within float64's tolerance there (1 - sigmoid(21) = 7.6e-10), so compare() and
    the sweep agree at every point, and say the same; with a tolerance tighter than the kernel's
    shortcut, both name it as control flow."""
    f = sg.softplus(x)
    s = sg.sweep(f, over={x: (15, 70)}, n=56, progress=False)
    assert s.counts == {"agree": 56}
    for p, cause in zip(s.points[:, 0], s.causes):
        assert cause == sg.compare(f, at={x: float(p)}).cause.id, f"at x = {p}"


def test_sweeps_in_threads_say_what_one_sweep_says() -> None:
    """Caches shared between sweeps (compiled lines, which nodes read symbols) under four
    threads at once: every thread gets the single-threaded codes."""
    import threading

    f = (1 - sp.cos(x)) / x**2 + sp.Max(x - sp.Rational(1, 4), 0)
    alone = sg.sweep(f, over={x: (1e-4, 0.5)}, n=3001, progress=False)
    out: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            out.append(sg.sweep(f, over={x: (1e-4, 0.5)}, n=3001, progress=False).codes)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(out) == 4 and all(np.array_equal(c, alone.codes) for c in out)
    assert set(alone.counts) == {"agree", "rounding"} and alone.exact_points > 8


# ---------------------------------------------------------------- chunks

CHUNKED = {
    "1-cos": (ONE_MINUS_COS, {"branches": "if"}),
    "sqrt-or-0 where": (SQRT_OR_ZERO, {"branches": "where"}),
    "log-or-sqrt if": (LOG_OR_SQRT, {"branches": "if"}),
    "kinks, ties, softplus": (sp.Abs(x - 0.5) + sp.Max(x, y) + sg.softplus(20 * x) + sp.floor(y), {"branches": "if"}),
    "detach, unused input": (sg.detach(x**2) * sp.exp(x) + 0 * y, {"branches": "if"}),
}


@pytest.mark.parametrize("name", list(CHUNKED))
def test_run_batch_in_chunks_is_the_one_piece_run_bit_for_bit(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    batch_module = importlib.import_module("symgrad.sides.batch")
    f, kw = CHUNKED[name]
    lowered = sg.lower(f, **kw)
    rng = np.random.default_rng(7)
    cols = [torch.from_numpy(np.round(rng.uniform(-2, 2, 1000), 1)) for _ in lowered.symbols]
    whole_cancel: list[torch.Tensor] = []
    whole = batch_module.run_batch(lowered, cols, cancel_out=whole_cancel)
    monkeypatch.setattr(batch_module, "CHUNK", 37)  # chunks of 37 points, the last one shorter
    sizes = _counting_pieces(batch_module, monkeypatch)
    parts_cancel: list[torch.Tensor] = []
    parts = batch_module.run_batch(lowered, cols, cancel_out=parts_cancel)
    assert sorted(sizes, reverse=True) == [37] * 27 + [1]  # it did run in chunks (workers take them in any order)
    value, grads, tie, stuck = parts
    assert torch.equal(value.isnan(), whole[0].isnan())
    assert torch.equal(value.nan_to_num(), whole[0].nan_to_num())
    assert len(grads) == len(whole[1]) == len(cols)
    for g, h in zip(grads, whole[1]):
        assert torch.equal(g.isnan(), h.isnan()) and torch.equal(g.nan_to_num(), h.nan_to_num())
    assert torch.equal(tie, whole[2]) and torch.equal(stuck, whole[3])
    assert torch.equal(parts_cancel[0], whole_cancel[0])
    assert tie.any() or parts_cancel[0].any() or name in ("detach, unused input", "sqrt-or-0 where",
                                                          "log-or-sqrt if")


def test_a_sweep_in_chunks_says_what_a_one_piece_sweep_says(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    batch_module = importlib.import_module("symgrad.sides.batch")
    f = sp.Piecewise((sp.sqrt(x), x > 0), (1 - sp.cos(x), True)) / (x**2 + 1e-3)
    whole = sg.sweep(f, over={x: (-1, 1)}, n=2001, branches="where")
    monkeypatch.setattr(batch_module, "CHUNK", 100)
    sizes = _counting_pieces(batch_module, monkeypatch)
    parts = sg.sweep(f, over={x: (-1, 1)}, n=2001, branches="where")
    assert sorted(sizes[:21], reverse=True) == [100] * 20 + [1]  # the batch run in chunks (then the exact checks' own runs)
    assert np.array_equal(parts.codes, whole.codes)
    assert np.array_equal(parts.grad_autograd, whole.grad_autograd, equal_nan=True)
    assert np.array_equal(parts.value, whole.value, equal_nan=True)
    assert np.array_equal(parts.grad_executed, whole.grad_executed, equal_nan=True)
    assert whole.counts == parts.counts and set(whole.counts) >= {"agree", "nan-trap"}


def _counting_pieces(batch_module: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the pieces run_batch runs, as it runs them."""
    calls: list[int] = []
    inner = batch_module._run_batch

    def counting(lowered: Any, columns: Any, *args: Any) -> Any:
        calls.append(columns[0].shape[0])
        return inner(lowered, columns, *args)

    monkeypatch.setattr(batch_module, "_run_batch", counting)
    return calls


def test_a_program_with_a_loop_runs_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    batch_module = importlib.import_module("symgrad.sides.batch")
    calls = _counting_pieces(batch_module, monkeypatch)
    monkeypatch.setattr(batch_module, "CHUNK", 2)
    cols = [torch.tensor(D2L_BATCH, dtype=torch.float64)]
    value, grads, _, stuck = batch_module.run_batch(sg.lower(D2L), cols)
    assert calls == [len(D2L_BATCH)]
    assert stuck.tolist() == [v == 0 for v in D2L_BATCH]  # 0 doubles forever
    expected = [torch_grad(_d2l_torch, np.array([v]), torch.float64)[0] for v in D2L_BATCH if v != 0]
    assert grads[0][~stuck].tolist() == expected
    calls.clear()
    batch_module.run_batch(sg.lower(ONE_MINUS_COS), [torch.linspace(0.1, 1, 5, dtype=torch.float64)])
    assert calls == [2, 2, 1]


def test_grad_executed_is_built_on_first_use_from_autograd_and_the_exact_rows() -> None:
    s = sg.sweep(SQRT_OR_ZERO, over={x: (-2, 2)}, n=401, branches="where")
    assert s.executed._values is None  # the sweep itself did not build it
    g = s.grad_executed
    flagged = set(s.executed.flagged.tolist())
    for k in range(len(s.points)):
        if k in s.executed.known:
            assert g[k, 0] == s.executed.known[k][0]
        elif k in flagged:
            assert np.isnan(g[k, 0])
        else:
            assert g[k, 0] == s.grad_autograd[k, 0]
    assert s.grad_executed is g  # built once
    assert s.counts["agree"] >= len(s.points) - len(flagged) and s.executed.known
