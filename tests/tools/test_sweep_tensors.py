"""A sweep over the scalars of a function that computes with tensors (issue 20): the scalar inputs
run over their ranges, the tensors are held fixed (`fixed=`, a traced function's example tensors,
its data and constants).

Ground truth (DESIGN.md section 10): autograd's value at a point is torch's own, the function as
written run on that point alone (never the batch the sweep ran); the cause at a point is what
`compare()` says there, and where the derivative is simple enough it is checked against an exact
computation written here with `fractions.Fraction` (the exact binary values the tensors hold).
"""

from __future__ import annotations

import json
import textwrap
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from user_code import load_module, same_floats

import symgrad as sg
from symgrad.sides import batch_tensors
from symgrad.sides.batch_tensors import run_tensor_batch

SOURCE = textwrap.dedent('''
    import torch

    C = torch.tensor([[1.0, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    V = torch.tensor([[1.0, -2.0], [0.5, 4.0]], dtype=torch.float64)


    def relu_scaled(x, W):
        return torch.relu(x * W).sum()


    def relu_layer(x, W, b):
        return torch.relu(x * W + b).sum()


    def relu_of_data(x):
        return torch.relu(x * V + C).sum()


    def branchy(x, W):
        if x > 0:
            return torch.relu(x * W - 1).sum()
        return torch.tanh(x * W).sum()


    def half_detached(x, W):
        return (x * W).sum() * (x * W).detach().sum()


    def layer(x, W, X):
        return torch.relu(X @ (x * W)).sum()


    def classify(x, W, y):
        return torch.nn.functional.cross_entropy(x * W, y)


    def linear(x, W):
        return (x * W).sum()


    def tanh_sum(x, W):
        return torch.tanh(x * W).sum()


    def leaky_twice(x, W):
        return torch.nn.functional.leaky_relu(x * W, 0.1).sum() + torch.nn.functional.hardtanh(x * W, -0.5, 0.5).sum()


    def leaky(x):
        return torch.nn.functional.leaky_relu(x, 0.1)


    def hard(x):
        return torch.nn.functional.hardtanh(x, -0.5, 0.5)


    def elu2(x):
        return torch.nn.functional.elu(x, 2.0)


    def rounded(x):
        return torch.round(x) * x


    def leaky_layer(x, W):
        u = x * W  # (once: `x * W` written twice is read as one product, see the report)
        return torch.nn.functional.leaky_relu(u, 0.1).sum() + torch.nn.functional.hardtanh(u, -0.5, 0.5).sum()


    def two_scalars(x, y, W):
        return torch.abs(x * W + y).sum()
''')


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("sweep_tensors"), "user_sweep_tensors")


def f64(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def torch_at(fn: Any, scalars: list[float], tensors: list[torch.Tensor], dtype: torch.dtype) -> list[float]:
    """torch itself: `fn` run on this one point (the scalars first), its value and the gradient
    with respect to each scalar."""
    leaves = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in scalars]
    out = fn(*leaves, *tensors)
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return [float(out.detach()), *(float("nan") if g is None else float(g) for g in grads)]


def assert_torch_per_point(s: sg.Sweep, fn: Any, tensors: list[torch.Tensor], dtype: torch.dtype = torch.float64) -> None:
    """The sweep's value and autograd columns are torch's at each point, bit for bit; where torch's
    batched kernels round otherwise than one point's run (a reduction over a batch), within two
    units in the last place, and the sweep says so in its notes."""
    parted = 0
    eps = torch.finfo(dtype).eps
    for k, row in enumerate(s.points.tolist()):
        mine = [float(s.value[k]), *(float(v) for v in s.grad_autograd[k])]
        truth = torch_at(fn, row, tensors, dtype)
        if not same_floats(mine, truth):
            parted += 1
            assert all(abs(a - b) <= 2 * eps * abs(b) for a, b in zip(mine, truth)), (row, mine, truth)
    if parted:
        assert any("rounded otherwise than a run of one point" in n for n in s.notes), s.notes


def assert_compare_per_point(s: sg.Sweep, fn: Any, held: dict[str, Any], rows: Any = None) -> None:
    """The sweep's cause at each of `rows` (every point by default) is compare()'s at that point
    alone, the function read again there."""
    names = [v.name for v in s.symbols]
    for k in range(len(s.points)) if rows is None else rows:
        at = {**held, **dict(zip(names, s.points[k].tolist()))}
        c = sg.compare(fn, at=at, wrt=[w.name for w in s.wrt], dtype=s.dtype)
        assert c.cause.id == s.causes[k], (at, c.cause.id, s.causes[k])


def relu_truth(x: float, W: Any, C: Any) -> tuple[str, Fraction | None]:
    """d/dx sum(relu(x*W + C)) exactly: ("kink", None) where an element with W != 0 is exactly
    at relu's corner (the one-sided slopes differ by |W|), else ("agree", the slope)."""
    slope, fx = Fraction(0), Fraction(x)
    for w, c in zip(np.asarray(W, dtype=np.float64).ravel().tolist(), np.asarray(C, dtype=np.float64).ravel().tolist()):
        u = fx * Fraction(w) + Fraction(c)
        if u == 0 and w != 0:
            return "kink", None
        if u > 0:
            slope += Fraction(w)
    return "agree", slope


# ---------------------------------------------------------------- the batch is torch's own, point by point


def test_relu_of_a_scalar_times_a_fixed_tensor(module: Any) -> None:
    W = f64([[1.0, -2.0], [0.5, 3.0]])
    s = sg.trace(module.relu_scaled, 0.5, W).sweep({"x": (-2, 2)}, n=17)
    assert [w.name for w in s.wrt] == ["x"] and s.points.shape == (17, 1) and s.checked_points == 17
    assert_torch_per_point(s, module.relu_scaled, [W])
    # x = 0 puts every element on relu's corner: slope -2 on the left, 4.5 on the right.
    assert s.counts == {"agree": 16, "kink": 1} and s.causes[8] == "kink"
    for k, xv in enumerate(s.points[:, 0].tolist()):
        cause, slope = relu_truth(xv, W, np.zeros((2, 2)))
        assert s.causes[k] == cause
        if slope is not None:
            assert Fraction(float(s.grad_autograd[k, 0])) == slope
    worst = s.worst[0]
    assert worst.cause.id == "kink" and float(worst.point[sp.Symbol("x", real=True)]) == 0.0
    left, right = next(e for e in worst.entries if not e.ok).one_sided
    assert (left, right) == (-2, sp.Rational(9, 2))
    assert "The tensor input W (2, 2) was held fixed" in str(s)
    assert_compare_per_point(s, module.relu_scaled, {"W": W}, rows=[0, 5, 8, 11, 16])


def test_data_and_constant_tensors_are_held_as_read(module: Any) -> None:
    # V and C are module globals: constants of the translation. Kinks where x*V + C = 0:
    # x = -1, 0.5, -2, -1/8 (the last is not a grid point: a clean neighbour either side).
    s = sg.trace(module.relu_of_data, 0.3).sweep({"x": (-2, 2)}, n=17)
    assert_torch_per_point(s, module.relu_of_data, [])
    V, C = module.V.numpy(), module.C.numpy()
    for k, xv in enumerate(s.points[:, 0].tolist()):
        cause, slope = relu_truth(xv, V, C)
        assert s.causes[k] == cause, xv
        if slope is not None:
            assert Fraction(float(s.grad_autograd[k, 0])) == slope
    assert s.counts == {"agree": 14, "kink": 3}
    assert not s.notes  # nothing held by the caller, and vmap ran it


def test_a_bias_of_rank_one_and_chunks_give_the_same_answers(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(7)
    W, b = torch.randn(4, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    traced = sg.trace(module.relu_layer, 0.5, W, b)
    whole = traced.sweep({"x": (-3, 3)}, n=41)
    monkeypatch.setattr(batch_tensors, "ELEMENTS", 40)  # a few points per chunk
    chunked = traced.sweep({"x": (-3, 3)}, n=41)
    assert np.array_equal(whole.grad_autograd, chunked.grad_autograd) and np.array_equal(whole.value, chunked.value)
    assert list(whole.causes) == list(chunked.causes)
    # The check beside your function runs in the same chunks (every point, vmapped chunk by chunk).
    assert 1 <= chunked.chunk < 41 <= whole.chunk and chunked.checked_points == whole.checked_points == 41
    assert_torch_per_point(chunked, module.relu_layer, [W, b])
    assert "b (4,)" in str(whole)  # torch's shape of the rank-1 bias (held as a (4, 1) column)


def test_the_runner_chunks_by_the_size_of_a_point() -> None:
    W = sp.MatrixSymbol("W", 3, 3)
    x = sp.Symbol("x")
    lowered = sg.lower(sp.Max(0, (x * W)[0, 0]) + sp.Max(0, (x * W)[2, 1]))
    fixed = {"W": torch.arange(9, dtype=torch.float64).reshape(3, 3) - 4}
    xs = {"x": torch.linspace(-1, 1, 11, dtype=torch.float64)}
    big = run_tensor_batch(lowered, xs, fixed)
    old = batch_tensors.ELEMENTS
    try:
        batch_tensors.ELEMENTS = 50
        small = run_tensor_batch(lowered, xs, fixed)
    finally:
        batch_tensors.ELEMENTS = old
    assert small.chunk < 11 <= big.chunk
    for a, b in ((big.value, small.value), *zip(big.grads, small.grads), (big.tie, small.tie)):
        assert torch.equal(a, b)
    # The exact slope: W[0, 0] = -4 and W[2, 1] = 3; x = 0 is both corners.
    want = [-4.0 if v < 0 else 3.0 if v > 0 else 0.0 for v in xs["x"].tolist()]
    assert big.grads[0].tolist() == want and big.tie.tolist() == [v == 0 for v in xs["x"].tolist()]


# ---------------------------------------------------------------- where vmap cannot run it


def test_an_if_on_the_point_runs_point_by_point_with_a_note(module: Any) -> None:
    W = f64([[1.0, -2.0], [0.5, 3.0]])
    traced = sg.trace(module.branchy, 0.5, W)
    s = traced.sweep({"x": (-1, 1)}, n=11)
    assert any("torch.func.vmap could not run the translation" in n and "each of the 11 points ran on its own" in n
               for n in s.notes)
    assert "data-dependent control flow" in str(s)
    assert_torch_per_point(s, module.branchy, [W])
    # x = 0: the branch's threshold; x = 1: relu's corner at x*W[0, 0] - 1 = 0.
    assert s.counts == {"agree": 9, "control-flow": 1, "kink": 1}
    assert s.causes[5] == "control-flow" and s.causes[10] == "kink"
    assert_compare_per_point(s, module.branchy, {"W": W}, rows=[0, 3, 5, 7, 10])


def test_a_failed_vmap_falls_back_to_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    W = sp.MatrixSymbol("W", 2, 2)
    x = sp.Symbol("x")
    expr = sp.Abs(x * W[0, 0] - W[1, 1]) + sp.tanh(x * W[0, 1])
    fixed = {W: [[2.0, 0.5], [0.0, 1.0]]}
    batched = sg.sweep(expr, {x: (-1, 1)}, n=9, fixed=fixed)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("vmap: this op is not supported. Something else")

    monkeypatch.setattr(torch.func, "vmap", refuse)
    looped = sg.sweep(expr, {x: (-1, 1)}, n=9, fixed=fixed)
    assert np.array_equal(batched.grad_autograd, looped.grad_autograd) and list(batched.causes) == list(looped.causes)
    assert any("(this op is not supported)" in n for n in looped.notes)
    assert not any("vmap" in n for n in batched.notes)
    # x = 1/2: Abs at its corner, slopes -2 + tanh' and 2 + tanh'.
    assert batched.counts == {"agree": 8, "kink": 1} and batched.causes[6] == "kink"
    for k, xv in enumerate(batched.points[:, 0].tolist()):  # torch, the expression written by hand
        t = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(torch.abs(t * 2.0 - 1.0) + torch.tanh(t * 0.5), t)
        assert float(batched.grad_autograd[k, 0]) == float(g)


# ---------------------------------------------------------------- the causes a tensor sweep names


def test_a_detach_inside_a_tensor_program_is_found_at_every_point(module: Any) -> None:
    W = f64([[1.0, 2.0], [-0.5, 0.25]])  # sum = 2.75
    s = sg.trace(module.half_detached, 0.5, W).sweep({"x": (-1, 1)}, n=5)
    assert_torch_per_point(s, module.half_detached, [W])
    # math: d/dx (x S)^2 = 2 x S^2; executed: x S^2 (the detached factor constant); equal at x = 0.
    assert s.counts == {"agree": 1, "detach": 4} and s.causes[2] == "agree"
    S = Fraction(11, 4)
    for k, xv in enumerate(s.points[:, 0].tolist()):
        assert Fraction(float(s.grad_autograd[k, 0])) == Fraction(xv) * S * S
        assert Fraction(float(s.grad_symbolic[k, 0])) == 2 * Fraction(xv) * S * S
    assert_compare_per_point(s, module.half_detached, {"W": W}, rows=[0, 2, 4])


def test_two_scalars_on_a_grid_with_one_fixed_tensor(module: Any) -> None:
    W = f64([[1.0, -1.0], [2.0, 0.5]])
    # (`x * W + y`: `x * W - y` is read as `x*W + (-y)*1`, whose gradient with respect to y is -0.0
    # where torch's is 0.0 when the signs cancel, and the check beside the function refuses that.)
    s = sg.trace(module.two_scalars, 0.5, 0.25, W).sweep({"x": (-1, 1), "y": (-1, 1)}, n=5)
    assert s.points.shape == (25, 2) and [w.name for w in s.wrt] == ["x", "y"]
    assert_torch_per_point(s, module.two_scalars, [W])
    for k, (xv, yv) in enumerate(s.points.tolist()):  # a kink wherever some x*W + y is exactly 0
        on = any(Fraction(xv) * Fraction(w) == -Fraction(yv) for w in (1.0, -1.0, 2.0, 0.5))
        assert s.causes[k] == ("kink" if on else "agree"), (xv, yv)
    assert_compare_per_point(s, module.two_scalars, {"W": W}, rows=[0, 6, 12, 13, 24])


def test_float32_tensors_sweep_in_float32(module: Any) -> None:
    W = torch.tensor([[0.1, -0.3], [0.7, 1.1]], dtype=torch.float32)
    traced = sg.trace(module.relu_scaled, torch.tensor(0.5, dtype=torch.float32), W)
    s = traced.sweep({"x": (-1, 1)}, n=9)
    assert s.dtype == "float32"
    assert_torch_per_point(s, module.relu_scaled, [W], torch.float32)
    assert s.counts == {"agree": 8, "kink": 1} and s.causes[4] == "kink"


def test_fixed_holds_another_tensor_and_the_function_is_read_again(module: Any) -> None:
    W = f64([[1.0, -2.0], [0.5, 3.0]])
    W2 = f64([[-1.0, 0.0], [0.25, 2.0]])
    s = sg.trace(module.relu_scaled, 0.5, W).sweep({"x": (-2, 2)}, n=9, fixed={"W": W2})
    assert_torch_per_point(s, module.relu_scaled, [W2])
    for k, xv in enumerate(s.points[:, 0].tolist()):
        cause, slope = relu_truth(xv, W2, np.zeros((2, 2)))
        assert s.causes[k] == cause
        if slope is not None:
            assert Fraction(float(s.grad_autograd[k, 0])) == slope


# ---------------------------------------------------------------- symgrad.sweep of a torch function


def test_sweep_of_a_torch_function_holds_what_fixed_gives(module: Any) -> None:
    W = f64([[1.0, -0.5], [2.0, 0.25], [-1.0, 1.0]])
    X = f64([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.5]])
    s = sg.sweep(module.layer, over={"x": (-2, 2)}, fixed={"W": W, "X": X}, n=9)
    assert s.checked_points == 9 and [w.name for w in s.wrt] == ["x"]
    assert_torch_per_point(s, module.layer, [W, X])
    # relu(x * (X @ W)) (the products exact in binary): every element is at its corner at x = 0 only.
    XW = [sum(Fraction(float(X[i, m])) * Fraction(float(W[m, j])) for m in range(3)) for i in range(2) for j in range(2)]
    assert XW == [-1, Fraction(3, 2), Fraction(1, 2), Fraction(5, 4)]
    for k, xv in enumerate(s.points[:, 0].tolist()):
        assert s.causes[k] == ("kink" if xv == 0 else "agree")
        if xv != 0:
            assert Fraction(float(s.grad_autograd[k, 0])) == sum(w for w in XW if Fraction(xv) * w > 0)
    assert_compare_per_point(s, module.layer, {"W": W, "X": X}, rows=[0, 4, 7])


def test_sweep_of_a_torch_function_holds_its_data(module: Any) -> None:
    W = f64([[1.0, -0.5], [2.0, 0.25], [-1.0, 1.0]])
    y = torch.tensor([1, 0, 1])
    s = sg.sweep(module.classify, over={"x": (-3, 3)}, fixed={"W": W, "y": y}, n=7)
    assert s.counts == {"agree": 7}
    # cross_entropy's batched kernels round otherwise than one point's at x = -1 (torch 2.13, CPU):
    # the sweep says so, and the columns stay within an ulp of torch's run of that point alone.
    assert_torch_per_point(s, lambda x, W: module.classify(x, W, y), [W])
    for k, xv in enumerate(s.points[:, 0].tolist()):  # the exact slope: mean over rows of W[y] - E_softmax[W]
        want = sum(float(W[i, y[i]]) - sum(float(w) * float(p) for w, p in zip(W[i], torch.softmax(xv * W[i], 0)))
                   for i in range(3)) / 3
        assert float(s.grad_autograd[k, 0]) == pytest.approx(-want, rel=1e-12, abs=1e-15)


def test_sweep_of_a_torch_function_names_what_is_missing(module: Any) -> None:
    with pytest.raises(sg.OptionError) as err:
        sg.sweep(module.layer, over={"x": (-1, 1)}, fixed={"W": f64([[1.0]])})
    text = str(err.value)
    assert text.startswith("`layer` takes `X`, which neither `over`")
    assert 'fixed={"X": X}' in text and "`symgrad.trace(f, *example_values).sweep(over)`" in text


def test_the_check_beside_your_function_lets_the_batch_round_but_not_the_translation(module: Any) -> None:
    from dataclasses import replace

    from symgrad.tools import traced as traced_module

    W = f64([[1.0, -2.0], [4.0, 0.5]])
    traced = sg.trace(module.relu_scaled, 0.3, W)
    s = traced.sweep({"x": (-1, 1)}, n=5)
    # A batch that rounded otherwise than one point's run, by an ulp: the translation run on that
    # point alone is your function's, bit for bit, so the check lets it be.
    nudged = s.grad_autograd.copy()
    nudged[1, 0] = np.nextafter(nudged[1, 0], np.inf)
    traced_module._check_points(traced, replace(s, grad_autograd=nudged), [1], ["x"], [0], torch.float64)
    with pytest.raises(sg.TraceError):  # a sweep of numbers (no chunk) checks against its batch itself
        traced_module._check_points(traced, replace(s, grad_autograd=nudged, chunk=0), [1], ["x"], [0], torch.float64)
    # `x * W` written twice was read as one product, whose gradient parted from torch's at
    # x = -0.375 by an ulp (the sweep refused that point); it is two products now, as in your
    # code (sides/order.py), and every point is torch's own run of your function, bit for bit.
    twice = sg.trace(module.leaky_twice, 0.3, W)
    swept = twice.sweep({"x": (-1, 1)}, n=17)
    assert swept.points[:, 0].tolist().count(-0.375) == 1
    assert_torch_per_point(swept, module.leaky_twice, [W])


# ---------------------------------------------------------------- sums over a tensor that cancel


def test_a_sum_that_cancels_in_the_backward_pass_alone_is_found_by_the_exact_sample(module: Any) -> None:
    # d/dx sum(x*W) = sum(W) = 1 exactly; torch sums 1 + 1e16 - 1e16 to 0 at every x. At x = 0 the
    # forward has nothing to cancel (every term is 0): only an exact comparison sees it. Once every
    # point here was called agree.
    W = f64([[1.0, 1e16, -1e16]])
    s = sg.trace(module.linear, 0.5, W).sweep({"x": (-1, 1)}, n=21)
    assert s.counts == {"rounding": 21}
    assert all(float(v) == 0.0 for v in s.grad_autograd[:, 0])  # torch's, point by point below
    assert_torch_per_point(s, module.linear, [W])
    assert any("do not agree (rounding at x = 0)" in n and "every point was taken as flagged" in n for n in s.notes)
    assert_compare_per_point(s, module.linear, {"W": W}, rows=[0, 7, 10, 20])


def test_a_forward_sum_that_cancels_is_flagged(module: Any) -> None:
    # tanh(x) + tanh((-1 + 2^-40) x): the two terms cancel to about 2^-40 x of their size.
    W = f64([[1.0, -1.0 + 2**-40]])
    s = sg.trace(module.tanh_sum, 0.5, W).sweep({"x": (-1, 1)}, n=9)
    assert_torch_per_point(s, module.tanh_sum, [W])
    assert_compare_per_point(s, module.tanh_sum, {"W": W})  # every point: rounding, but x = 0 (both 0)
    assert s.counts == {"agree": 1, "rounding": 8} and s.causes[4] == "agree"


# ---------------------------------------------------------------- every corner of the rule table is flagged


@pytest.mark.parametrize(("name", "where"), [
    ("leaky", {0.0: "kink"}),  # slopes 0.1 and 1
    ("hard", {-0.5: "kink", 0.5: "kink"}),
    ("elu2", {0.0: "kink"}),  # slopes alpha = 2 and 1
    ("rounded", {-0.5: "jump", 0.5: "jump"}),  # torch.round: half to even, a jump at each half-integer
])
def test_scalar_sweeps_flag_the_corners_of_leaky_relu_hardtanh_elu_and_round(module: Any, name: str,
                                                                              where: dict[float, str]) -> None:
    # Once missed: their corners had no tie test, every point was called agree.
    fn = getattr(module, name)
    s = sg.trace(fn, 0.3).sweep({"x": (-1, 1)}, n=9)
    assert_torch_per_point(s, fn, [])
    for k, xv in enumerate(s.points[:, 0].tolist()):
        assert s.causes[k] == where.get(xv, "agree"), xv
    assert_compare_per_point(s, fn, {}, rows=[2, 3, 4, 5, 6])


def test_a_tensor_sweep_flags_the_corners_of_leaky_relu_and_hardtanh(module: Any) -> None:
    W = f64([[1.0, -2.0], [4.0, 0.5]])
    s = sg.trace(module.leaky_layer, 0.3, W).sweep({"x": (-1, 1)}, n=17)
    assert_torch_per_point(s, module.leaky_layer, [W])
    # leaky_relu: every element at 0 when x = 0; hardtanh at -1/2 or 1/2: x*w = ±1/2 for w in W.
    corners = {Fraction(sign, 2) / Fraction(w) for w in (1.0, -2.0, 4.0, 0.5) for sign in (-1, 1)} | {Fraction(0)}
    for k, xv in enumerate(s.points[:, 0].tolist()):
        assert s.causes[k] == ("kink" if Fraction(xv) in corners else "agree"), xv
    assert_compare_per_point(s, module.leaky_layer, {"W": W}, rows=[0, 4, 7, 8, 10, 12])


def test_every_corner_the_rule_table_names_has_a_flag() -> None:
    from symgrad.program import rules
    from symgrad.sides.batch import PARAM_TIES, TIE_TESTS, VALUE_TIES

    # Decided otherwise: a condition's margin (where), a value not a corner (detach, item, no_grad, a custom
    # backward), the cancellation flag (softplus past its threshold), no corner in the first derivative
    # (smooth_l1, huber), a clamp at -100 in the logs (binary_cross_entropy, weighted or not: non-finite or
    # far away), std_along's group (its own test), Pow's ops other than pow (their corners are poles: non-finite).
    elsewhere = {"where", "detach", "item", "no_grad", "custom_function", "softplus", "smooth_l1_loss", "huber_loss",
                 "binary_cross_entropy", "weighted_binary_cross_entropy", "std_along", "pow_int", "sqrt", "pow_frac",
                 "div"}
    table = rules.RULES.values() if isinstance(rules.RULES, dict) else rules.RULES
    missing = sorted({op for r in table if r.nonsmooth for op in r.ops
                      if op not in TIE_TESTS and op not in PARAM_TIES and op not in VALUE_TIES and op not in elsewhere})
    assert missing == []


# ---------------------------------------------------------------- a SymPy function with a matrix input


def test_a_sympy_function_of_a_matrix_input_takes_it_in_fixed() -> None:
    x, y = sp.symbols("x y")
    M = sp.MatrixSymbol("M", 2, 2)
    expr = sp.Max(0, (x * M)[0, 0] - y) + (x * M)[1, 0] ** 2
    value = [[2.0, 0.0], [3.0, 1.0]]
    s = sg.sweep(expr, {x: (-1, 1)}, n=9, fixed={M: value, y: 0.5})
    assert [w.name for w in s.wrt] == ["x", "y"] and s.points.shape == (9, 2)
    for k, (xv, yv) in enumerate(s.points.tolist()):
        tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (xv, yv))
        out = tx ** 2 * 3.0 ** 2 + torch.relu(tx * 2.0 - ty)  # Max(0, u) lowers to relu (the generated program)
        gx, gy = torch.autograd.grad(out, [tx, ty])
        assert [float(s.grad_autograd[k, 0]), float(s.grad_autograd[k, 1])] == [float(gx), float(gy)]
        at = {M: value, x: xv, y: yv}
        assert sg.compare(expr, at=at, wrt=[x, y]).cause.id == s.causes[k]
    assert s.counts == {"agree": 8, "kink": 1} and s.causes[5] == "kink"  # 2x - 1/2 = 0 at x = 1/4


def test_a_loop_in_a_tensor_program_runs_point_by_point_and_a_long_one_is_skipped() -> None:
    from sympy.codegen.ast import Assignment, CodeBlock, While

    a, b, c = sp.symbols("a b c")
    W = sp.MatrixSymbol("W", 2, 2)
    p = sg.Program(inputs=[a, W], body=CodeBlock(  # D2L's loop, its result scaled by an element of W
        Assignment(b, 2 * a),
        While(sp.Abs(b) < 1000, CodeBlock(Assignment(b, 2 * b))),
        Assignment(c, sp.Piecewise((b * W[0, 0], b > 0), (100 * b * W[1, 1], True))),
    ), output=c)
    s = sg.sweep(p, {a: [0.48828125, 0.0, 0.3, -0.7, 1.5]}, fixed={W: [[2.0, 0.0], [0.0, 3.0]]}, max_iterations=100)
    assert any("each of the 5 points ran on its own" in n for n in s.notes)
    assert list(s.causes) == ["control-flow", "skipped", "agree", "agree", "agree"] and s.skipped_points == 1
    for k, av in enumerate([0.48828125, 0.3, -0.7, 1.5]):  # torch, the loop written by hand
        row = [0, 2, 3, 4][k]
        t = torch.tensor(av, dtype=torch.float64, requires_grad=True)
        bt = 2 * t
        while torch.abs(bt) < 1000:
            bt = 2 * bt
        out = bt * 2.0 if bt > 0 else 100 * bt * 3.0
        (g,) = torch.autograd.grad(out, t)
        assert (float(s.value[row]), float(s.grad_autograd[row, 0])) == (float(out.detach()), float(g))
    assert np.isnan(s.value[1]) and np.isnan(s.grad_autograd[1, 0])


def test_a_tensor_sweeps_records_show_its_scalars_and_notes() -> None:
    x = sp.Symbol("x")
    M = sp.MatrixSymbol("M", 2, 2)
    s = sg.sweep(sp.Abs(x * M[0, 0] - M[1, 1]), {x: (-1, 1)}, n=9, fixed={M: [[2.0, 0.5], [0.0, 1.0]]})
    data = s.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["inputs"] == ["x"] and data["worst"][0]["point"] == {"x": 0.5}
    assert data["notes"] == ["The tensor input M (2, 2) was held fixed at the given value at every point."]
    assert "The tensor input M (2, 2) was held fixed" in s._repr_html_()
    assert "worst: at x = 0.5: [kink]" in str(s)


def test_bad_fixed_values_are_sentences() -> None:
    x = sp.Symbol("x")
    M = sp.MatrixSymbol("M", 2, 2)
    expr = sp.tanh(x * M[0, 1]) + M[1, 1]
    with pytest.raises(sg.PointError, match=r"tensor input M of this function has no value") as err:
        sg.sweep(expr, {x: (-1, 1)}, n=5)
    assert 'fixed={"M": torch.randn(2, 2)}' in str(err.value)
    with pytest.raises(sg.PointError, match=r"`fixed` names N, which the function does not use"):
        sg.sweep(expr, {x: (-1, 1)}, n=5, fixed={M: np.eye(2), "N": 1.0})
    with pytest.raises(sg.ShapeError):
        sg.sweep(expr, {x: (-1, 1)}, n=5, fixed={M: np.eye(3)})
    with pytest.raises(sg.OptionError, match=r"wrt names M, a tensor input this sweep holds fixed") as err2:
        sg.sweep(expr, {x: (-1, 1)}, n=5, fixed={M: np.eye(2)}, wrt=[M])
    assert "Fix: leave M out of wrt" in str(err2.value)
    with pytest.raises(sg.PointError, match=r"`over` gives M, a tensor input of this function") as err3:
        sg.sweep(expr, {x: (-1, 1), M: np.eye(2)}, n=5)
    assert 'Fix: give it in `fixed` instead, e.g. `fixed={"M": M}`' in str(err3.value)
    with pytest.raises(sg.PointError, match=r"no scalar input to sweep"):
        sg.sweep(sp.tanh(M[0, 1]), {}, n=5, fixed={M: np.eye(2)})


def test_unknown_names_in_a_traced_sweeps_fixed_are_a_sentence(module: Any) -> None:
    traced = sg.trace(module.relu_scaled, 0.5, f64([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(sg.OptionError, match=r"`fixed` names V, which `relu_scaled` does not take"):
        traced.sweep({"x": (-1, 1)}, n=5, fixed={"V": 1.0})


# ---------------------------------------------------------------- a property: any W, the sweep is torch's and compare's


HALVES = st.integers(-6, 6).map(lambda k: k / 2)


@settings(max_examples=12)
@given(W=st.lists(HALVES, min_size=4, max_size=4), C=st.lists(HALVES, min_size=4, max_size=4))
def test_any_fixed_tensor_gives_torchs_values_and_the_exact_causes(W: list[float], C: list[float]) -> None:
    x = sp.Symbol("x")
    M, B = sp.MatrixSymbol("M", 2, 2), sp.MatrixSymbol("B", 2, 2)
    expr = sum(sp.Max(0, x * M[i, j] + B[i, j]) for i in range(2) for j in range(2))
    Wm, Cm = np.array(W).reshape(2, 2), np.array(C).reshape(2, 2)
    s = sg.sweep(expr, {x: (-3, 3)}, n=13, fixed={M: Wm, B: Cm})
    for k, xv in enumerate(s.points[:, 0].tolist()):
        t = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        out = torch.relu(t * torch.tensor(Wm) + torch.tensor(Cm)).sum()
        (g,) = torch.autograd.grad(out, t)
        assert float(s.grad_autograd[k, 0]) == float(g)
        cause, slope = relu_truth(xv, Wm, Cm)
        assert s.causes[k] == cause, (xv, W, C)
        if slope is not None:
            assert Fraction(float(s.grad_autograd[k, 0])) == slope


def test_fixed_holds_a_scalar_as_over_does() -> None:
    x, y = sp.symbols("x y")
    a = sg.sweep(sp.Abs(x * y - 1), {x: (-1, 1)}, n=9, fixed={y: 2.0})
    b = sg.sweep(sp.Abs(x * y - 1), {x: (-1, 1), y: 2.0}, n=9)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.grad_autograd, b.grad_autograd)
    assert list(a.causes) == list(b.causes) and a.counts == {"agree": 8, "kink": 1} and not a.notes


def test_a_for_loop_of_fixed_length_runs_vmapped_and_past_max_iterations_is_skipped() -> None:
    from sympy.codegen.ast import Assignment, CodeBlock, For

    x, b, i = sp.symbols("x b i")
    W = sp.MatrixSymbol("W", 2, 2)
    p = sg.Program(inputs=[x, W], body=CodeBlock(
        Assignment(b, x),
        For(i, sp.Range(3), CodeBlock(Assignment(b, sp.sin(b) * W[0, 1] + b))),
    ), output=b)
    fixed = {W: [[1.0, 0.5], [0.0, 1.0]]}
    s = sg.sweep(p, {x: (-1, 1)}, n=5, fixed=fixed)
    assert s.counts == {"agree": 5} and not any("vmap" in n for n in s.notes)  # vmap runs a loop of fixed length
    for k, xv in enumerate(s.points[:, 0].tolist()):  # torch, the loop by hand
        t = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        v = t
        for _ in range(3):
            v = torch.sin(v) * 0.5 + v
        (g,) = torch.autograd.grad(v, t)
        assert (float(s.value[k]), float(s.grad_autograd[k, 0])) == (float(v.detach()), float(g))
    short = sg.sweep(p, {x: (-1, 1)}, n=5, fixed=fixed, max_iterations=2)
    assert short.skipped_points == 5 and short.counts == {}
    assert any("a loop of the program ran past max_iterations" in n for n in short.notes)


def _cdist_sum(x, B):
    return torch.cdist(x * B, B).sum()


def test_a_zero_distance_of_cdist_is_flagged_and_decided_a_kink_never_agree() -> None:
    """torch.cdist(x * B, B) at x = 1: row i of both is the same point, the tip of a cone. The
    sweep flags it (the step's value is 0) and compares it exactly: a kink (it was skipped with a
    sentence before, and called agree before that)."""
    B = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64)
    s = sg.sweep(_cdist_sum, over={"x": (0.0, 2.0)}, n=5, fixed={"B": B})
    causes = dict(zip(s.points[:, 0].tolist(), s.causes.tolist()))
    assert causes[1.0] == "kink" and s.counts == {"agree": 4, "kink": 1} and s.skipped_points == 0
    assert sg.compare(_cdist_sum, at={"x": 1.0, "B": B}, wrt=["x"]).cause is sg.Cause.KINK


def test_a_norm_exactly_at_normalize_eps_is_a_flag() -> None:
    from symgrad.sides.batch import VALUE_TIES

    whole = VALUE_TIES["normalize_matrix"]
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)  # row norms 5 and 1
    assert bool(whole([x], x, (2, 2, 1, 5.0, "whole"))) and not bool(whole([x], x, (2, 2, 1, 4.0, "whole")))
    assert bool(whole([x], x, (2, 2, 0, 1.0, "whole"))) is False  # column norms sqrt(10), 4
    columns = [x.reshape(-1)[k].expand(3) for k in range(4)]  # a batch of 3 points, elements row-major
    element = VALUE_TIES["normalize"]
    assert element(columns, columns[0], (2, 2, 1, 1.0, 1, 0)).tolist() == [True] * 3  # row 1's norm is 1
    assert element(columns, columns[0], (2, 2, 1, 1.0, 0, 0)).tolist() == [False] * 3  # row 0's is 5
    assert element(columns, columns[0], (2, 2, 0, 4.0, 0, 1)).tolist() == [True] * 3  # column 1's is 4


def _relu_of_matrix(x, W):
    return torch.relu(x * W)


def test_a_sweep_of_a_tensor_valued_function_is_a_sentence_not_a_bare_error() -> None:
    """A function that returns a 2x2 tensor at each point has no one gradient per point: a
    ShapeError that says so and how to fix it (it was a bare ValueError from the runner)."""
    W = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=torch.float64)
    with pytest.raises(sg.ShapeError) as info:
        sg.sweep(_relu_of_matrix, over={"x": (-1.0, 1.0)}, n=5, fixed={"W": W})
    text = str(info.value)
    assert "shape (2, 2)" in text and "one number per point" in text and "Fix:" in text and ".sum()" in text
