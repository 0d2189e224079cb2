"""Floating data of rank 2 read as a data input of the program (`source_data.DataLeaf`, issue 22):
an image batch reshaped by `nn.Flatten`, `X.reshape(-1, n)` or `torch.flatten(X, 1)` that meets a
differentiated value is the `DataMatrix` `X_flat`, bound at the point to the call's own values and
never differentiated.

Ground truth: SymPy's derivative of the same mathematics with the data as exact rationals (every
float32 and float64 is one), and torch's autograd of the user's own code for the autograd column.
"""

from __future__ import annotations

import json

import numpy as np
import sympy as sp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
import torch.nn.functional as F
from torch import nn

import symgrad as sg
from symgrad.base.errors import OptionError
from symgrad.program import exact as ex
from symgrad.frontends import source_data as sd
from symgrad.frontends.trace import clear_cache
from symgrad.program.program import DataMatrix
from symgrad.testing import assert_grad_matches_math
from symgrad.tools.sweep import CODE

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Softmax(nn.Module):
    """D2L's concise softmax regression (softmax-regression-concise.md)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(classes))

    def forward(self, X):
        return self.net(X)


def training_step(model, X, y):
    Y_hat = model(X)
    return F.cross_entropy(Y_hat, y)


def batch(n: int, side: int, classes: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, side, side, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def model_for(X: torch.Tensor, classes: int) -> Softmax:
    model = Softmax(classes)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model(X.float())  # LazyLinear makes float32 parameters
    return model.to(X.dtype)


def rational(t: torch.Tensor) -> sp.Matrix:
    """A tensor's floats as exact rationals (rank 2, or a column for rank 1)."""
    rows = t.detach().to(torch.float64).reshape(t.shape[0], -1).tolist()
    return sp.Matrix([[sp.Rational(v) for v in r] for r in rows])


def sympy_gradient(X2: sp.Matrix, y: list[int], W: sp.Matrix, b: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix]:
    """d/dW and d/db of the mean cross-entropy of softmax(X2 W^T + b), by SymPy's diff, exactly."""
    Ws = sp.Matrix(W.rows, W.cols, lambda i, j: sp.Symbol(f"w{i}_{j}", real=True))
    bs = sp.Matrix(b.rows, 1, lambda i, j: sp.Symbol(f"b{i}", real=True))
    Z = X2 * Ws.T + sp.ones(X2.rows, 1) * bs.T
    loss = sum(sp.log(sum(sp.exp(Z[i, k]) for k in range(Z.cols))) - Z[i, y[i]] for i in range(Z.rows)) / Z.rows
    at = {**{Ws[i, j]: W[i, j] for i in range(W.rows) for j in range(W.cols)}, **{bs[i]: b[i] for i in range(b.rows)}}
    gW = Ws.applyfunc(lambda s: sp.diff(loss, s).subs(at))
    gb = bs.applyfunc(lambda s: sp.diff(loss, s).subs(at))
    return gW, gb


def close(exact: sp.Basic, truth: sp.Basic, digits: int = 25) -> bool:
    e, t = sp.N(exact, digits + 5), sp.N(truth, digits + 5)
    return abs(e - t) <= sp.Float(10) ** -digits * max(1, abs(t))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_regression_reads_the_batch_as_a_data_leaf(dtype: str) -> None:
    X, y = batch(4, 2, 3, DTYPES[dtype])
    model = model_for(X, 3)
    traced = sg.trace(training_step, model, X, y)
    assert traced.mode == "source"
    leaf = next(s for s in traced.inputs if isinstance(s, DataMatrix))
    assert leaf.name == "X_flat" and tuple(leaf.shape) == (4, 4)
    assert "X_flat" not in (traced.wrt or ())
    assert traced.point["X_flat"].tolist() == X.reshape(4, -1).to(torch.float64).tolist()
    c = traced.compare()
    assert {str(e.wrt).split("[")[0] for e in c.entries} == {"model.net.1.weight", "model.net.1.bias"}
    W, b = model.net[1].weight, model.net[1].bias
    gW, gb = sympy_gradient(rational(X), y.tolist(), rational(W), rational(b))
    # torch's own autograd of the user's code
    Wl, bl = W.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    tW, tb = torch.autograd.grad(F.cross_entropy(F.linear(X.reshape(4, -1), Wl, bl), y), [Wl, bl])
    for e in c.entries:
        name, idx = str(e.wrt).split("[")
        i = int(idx.split(",")[0].rstrip("]"))
        if name == "model.net.1.weight":
            j = int(idx.split(",")[1].strip(" ]"))
            truth, auto = gW[i, j], float(tW[i, j])
        else:
            truth, auto = gb[i], float(tb[i])
        assert close(e.grad_symbolic, truth) and close(e.grad_executed, truth), (e.wrt, e.grad_symbolic, truth)
        assert e.grad_autograd == auto
        assert e.cause.id in ("agree", "rounding")
    assert len(c.entries) == 3 * 4 + 3


X2_GLOBAL = torch.zeros(1, 1)


def step_on_globals(W, b, y):
    return F.cross_entropy(X2_GLOBAL @ W.T + b, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_same_verdict_as_the_batch_read_as_a_constant(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data leaf gives each entry the cause and exact values that the same batch gives as a
    constant tensor of the program (how symgrad read it before; a global tensor is one when no
    global is read as a data leaf)."""
    X, y = batch(8, 4, 10, DTYPES[dtype], seed=3)
    model = model_for(X, 10)
    leaf = sg.trace(training_step, model, X, y).compare()
    global X2_GLOBAL
    X2_GLOBAL = X.reshape(8, -1)
    monkeypatch.setattr(sd, "GLOBAL_LEAF_ELEMENTS", 10**9)  # the global read as the constant of its values
    clear_cache()
    try:
        constant = sg.compare(step_on_globals, at={"W": model.net[1].weight.detach(), "b": model.net[1].bias.detach(),
                                                   "y": y}, dtype=dtype)
    finally:
        clear_cache()
    assert not any(isinstance(s, DataMatrix) for s in constant.point)
    assert len(leaf.entries) == len(constant.entries) == 10 * 16 + 10
    for a, b in zip(leaf.entries, constant.entries):
        assert a.cause is b.cause
        assert close(a.grad_symbolic, b.grad_symbolic, 28) and close(a.grad_executed, b.grad_executed, 28)
        assert a.grad_autograd == b.grad_autograd


def plain_reshape(w, X):
    return torch.relu(X.reshape(-1, 4) @ w - 0.5).sum()


def plain_flatten(w, X):
    return torch.relu(torch.flatten(X, 1) @ w - 0.5).sum()


def plain_view(w, X):
    return torch.relu(X.view(X.shape[0], -1) @ w - 0.5).sum()


@pytest.mark.parametrize("fn", [plain_reshape, plain_flatten, plain_view])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_spelling_of_the_reshape_binds_this_calls_data(fn, dtype: str) -> None:
    """X.reshape(-1, n), torch.flatten(X, 1), X.view(n, -1): a data leaf with this call's values;
    a new X at the same shapes (read again, or served by the translation cache) gets its own."""
    w = torch.tensor([[0.25], [-0.5], [1.0], [0.75]], dtype=DTYPES[dtype])
    for seed in (1, 2, 1):
        X, _ = batch(3, 2, 2, DTYPES[dtype], seed=seed)
        traced = sg.trace(fn, w, X)
        assert [s.name for s in traced.inputs] == ["w", "X_flat"] and traced.wrt == ("w",)
        assert traced.point["X_flat"].tolist() == X.reshape(3, 4).to(torch.float64).tolist()
        c = traced.compare()
        X2 = rational(X)
        wr = rational(w)
        # d/dw_j sum_i relu(X2_i . w - 1/2) = sum over the rows above the kink of X2[i, j]
        z = X2 * wr - sp.Matrix([[sp.Rational(1, 2)]] * 3)
        assert all(v != 0 for v in z)  # away from the kink
        truth = [sum(X2[i, j] for i in range(3) if z[i] > 0) for j in range(4)]
        assert [e.grad_executed for e in c.entries] == truth
        assert [e.grad_symbolic for e in c.entries] == truth
        wl = w.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(wl, X), [wl])
        assert [e.grad_autograd for e in c.entries] == [float(v) for v in g.reshape(-1)]


def test_the_report_and_the_generated_program_name_the_data_leaf() -> None:
    X, y = batch(4, 2, 3, torch.float32)
    c = sg.trace(training_step, model_for(X, 3), X, y).compare()
    source = c.lowered.source
    assert "def f(X_flat, " in source
    assert "# X_flat: X (float32) reshaped to (4, 4), data (never differentiated), first used at " in source
    text = str(c)
    assert "by input: X_flat" not in text and "X_flat[0, 0] =" not in text  # not an input to differentiate
    assert all(not str(e.wrt).startswith("X_flat") for e in c.entries)


def test_a_name_of_the_users_is_never_taken() -> None:
    def f(w, X):
        X_flat = 2.0
        return (X.reshape(2, -1) @ w).sum() * X_flat

    X, _ = batch(2, 2, 2, torch.float64)
    w = torch.ones(4, 1, dtype=torch.float64)
    traced = sg.trace(f, w, X)
    assert [s.name for s in traced.inputs] == ["w", "X_flat_2"]
    c = traced.compare()
    assert [e.grad_executed for e in c.entries] == [2 * sum(rational(X)[i, j] for i in range(2)) for j in range(4)]


def test_a_sweep_holds_the_data_leaf_at_the_calls_values() -> None:
    def f(a, X):
        return torch.relu(a * X.reshape(2, -1) - 0.5).sum()

    X = torch.tensor([[[[0.5, 1.0], [0.25, 2.0]]], [[[1.5, 0.75], [1.0, 0.125]]]], dtype=torch.float64)
    s = sg.trace(f, 1.0, X).sweep({"a": (-1.0, 3.0)}, n=41)
    assert s.checked_points == 41  # every point run through the user's function too, bit for bit
    # relu(a*x - 1/2) has its corner at a = 1/(2x): x = 1 at a = 1/2, x = 1/2 at a = 1, x = 1/4 at a = 2
    kinks = sorted(float(p) for p, code in zip(s.points[:, 0], s.codes) if code == CODE["kink"])
    assert kinks == [0.5, 1.0, 2.0] and s.counts == {"agree": 38, "kink": 3}
    # at a = 3 every x > 1/6 passes: 0.5 + 1 + 0.25 + 2 + 1.5 + 0.75 + 1
    assert float(s.points[-1, 0]) == 3.0 and float(s.grad_autograd[-1, 0]) == 7.0
    again = sg.sweep(f, {"a": (-1.0, 3.0)}, fixed={"X": X}, n=41)
    assert (again.codes == s.codes).all()


def test_assert_grad_matches_math_with_a_data_leaf() -> None:
    X, y = batch(4, 2, 3, torch.float64)
    c = assert_grad_matches_math(training_step, model_for(X, 3), X, y, allow={"rounding"})
    assert all(not str(e.wrt).startswith("X_flat") for e in c.entries)


def test_the_backward_pass_never_differentiates_data() -> None:
    """Written out step by step, the backward pass has no adjoint of the data, exact or torch's:
    the user's X does not require grad, so torch never computes one."""
    X, y = batch(4, 2, 3, torch.float32)
    c = sg.trace(training_step, model_for(X, 3), X, y).compare()
    inputs = {r.name: r for r in c.backward if r.op == "input"}
    assert set(inputs) == {"X_flat", "model_net_1_weight", "model_net_1_bias"}
    assert not inputs["X_flat"].on_graph and inputs["X_flat"].adjoint_autograd is None
    assert inputs["model_net_1_weight"].on_graph and inputs["model_net_1_weight"].adjoint_autograd is not None
    assert not any(r.parts for r in c.backward)
    linear = next(r for r in c.backward if r.op == "linear")
    sent = {local.wrt: local.exact_contribution for local in linear.local_derivatives}
    assert ex.all_zero(sent["X_flat"]) and not ex.all_zero(sent["model_net_1_weight"])


def test_a_reading_keeps_the_data_it_was_read_at() -> None:
    """The reading holds a copy of the data: the user's tensor changed in place afterwards (a
    training loop's next batch written into the same buffer) changes neither the traced point nor
    its comparison; `at=` with another batch reads the function again there."""
    w = torch.tensor([[0.25], [-0.5], [1.0], [0.75]], dtype=torch.float64)
    X, _ = batch(3, 2, 2, torch.float64, seed=1)
    X_new, _ = batch(3, 2, 2, torch.float64, seed=2)
    kept = X.clone()
    traced = sg.trace(plain_reshape, w, X)
    X.copy_(X_new)
    assert traced.point["X_flat"].tolist() == kept.reshape(3, 4).tolist()

    def truth(data: torch.Tensor) -> list[sp.Basic]:
        X2 = rational(data)
        z = X2 * rational(w) - sp.Matrix([[sp.Rational(1, 2)]] * 3)
        return [sum(X2[i, j] for i in range(3) if z[i] > 0) for j in range(4)]

    assert [e.grad_executed for e in traced.compare().entries] == truth(kept)
    assert [e.grad_executed for e in traced.compare(at={"w": w, "X": X_new}).entries] == truth(X_new)
    assert truth(kept) != truth(X_new)


def weighted_rows(w, X):
    return (torch.flatten(X, 1) @ w).sum()


@settings(max_examples=12, deadline=None)
@given(rows=st.integers(1, 4), side=st.integers(1, 3), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_any_batch_is_bound_exactly(rows: int, side: int, dtype: str, seed: int) -> None:
    """d/dw_j sum_i (X2 @ w)_i is the column sum of X2, exactly, for any batch of any shape: the
    data leaf holds exactly the floats of the call (dyadic rationals), in either dtype."""
    g = np.random.default_rng(seed)
    X = torch.tensor(g.standard_normal((rows, 2, side, side)), dtype=DTYPES[dtype])
    w = torch.tensor(g.standard_normal((2 * side * side, 1)), dtype=DTYPES[dtype])
    traced = sg.trace(weighted_rows, w, X)
    assert traced.point["X_flat"].tolist() == X.reshape(rows, -1).to(torch.float64).tolist()
    c = traced.compare()
    X2 = rational(X)
    truth = [sum(X2[i, j] for i in range(rows)) for j in range(X2.cols)]
    assert [e.grad_executed for e in c.entries] == truth and [e.grad_symbolic for e in c.entries] == truth
    wl = w.clone().requires_grad_(True)
    (gw,) = torch.autograd.grad(weighted_rows(wl, X), [wl])
    assert [e.grad_autograd for e in c.entries] == [float(v) for v in gw.reshape(-1)]


P_GLOBAL = torch.zeros(1, 1)
Q_GLOBAL = torch.zeros(1, 1)


def project(w):
    return (P_GLOBAL @ w).sum() + (Q_GLOBAL @ w).sum()


def test_a_large_global_tensor_is_a_data_leaf_named_after_it() -> None:
    """A floating global tensor of rank 2 with more than 64 elements (a fixed projection) is a data
    input named after the global, bound to its value at this call (a new value at the same shape
    is read again: the translation cache keys on the global's bytes); a small one stays a constant."""
    global P_GLOBAL, Q_GLOBAL
    w = torch.tensor([[0.5]] * 16, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    for _ in range(2):
        P_GLOBAL = torch.rand(5, 16, generator=g, dtype=torch.float64)  # 80 elements: a data leaf
        Q_GLOBAL = torch.rand(4, 16, generator=g, dtype=torch.float64)  # 64: the constant of its values
        traced = sg.trace(project, w)
        assert [s.name for s in traced.inputs] == ["w", "P_GLOBAL"] and traced.wrt == ("w",)
        assert isinstance(traced.inputs[1], DataMatrix)
        assert traced.point["P_GLOBAL"].tolist() == P_GLOBAL.tolist()
        c = traced.compare()
        P, Q = rational(P_GLOBAL), rational(Q_GLOBAL)
        truth = [sum(P[i, j] for i in range(5)) + sum(Q[i, j] for i in range(4)) for j in range(16)]
        assert [e.grad_executed for e in c.entries] == truth and [e.grad_symbolic for e in c.entries] == truth
        assert "# P_GLOBAL: the global tensor P_GLOBAL (float64, (5, 16)), data (never differentiated)" in c.lowered.source


# --------------------------------------------------------------------------- the leaf said as data
# A data leaf is data everywhere it is said: refused in wrt with a sentence, named by what it is
# in the headline, written to to_dict() by its shape and provenance, never its values.


def _loss_grads(model, X, y):  # type: ignore[no-untyped-def]
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [float(v) for p in (model.net[1].weight, model.net[1].bias) for v in p.grad.reshape(-1)]


@pytest.mark.parametrize("wrt", [["X_flat"], ["X_flat", "model.net.1.weight"], "X_flat"])
def test_a_data_leaf_in_wrt_is_a_sentence(wrt) -> None:  # type: ignore[no-untyped-def]
    X, y = batch(4, 2, 3, torch.float64)
    traced = sg.trace(training_step, model_for(X, 3), X, y)
    with pytest.raises(OptionError) as info:
        traced.compare(wrt=wrt)
    text = str(info.value)
    assert text.startswith("wrt names X_flat, which is data: X (float64) reshaped to (4, 4), data")
    assert "torch computes no gradient for it" in text
    assert "Fix: leave X_flat out of wrt and differentiate the inputs that are not data " \
           "(model.net.1.bias, model.net.1.weight), the parameters that read X" in text
    assert "pass X as a float tensor with requires_grad=True, of rank 0, 1 or 2" in text


def test_a_global_data_leaf_in_wrt_is_a_sentence() -> None:
    P = torch.linspace(-1, 1, 80, dtype=torch.float64).reshape(8, 10)  # a fixed projection: a data leaf

    def f(w):  # type: ignore[no-untyped-def]
        return (w @ P).sum()

    w = torch.ones(1, 8, dtype=torch.float64)
    traced = sg.trace(f, w)
    assert any(isinstance(s, DataMatrix) for s in traced.inputs)
    leaf = next(s for s in traced.inputs if isinstance(s, DataMatrix))
    with pytest.raises(OptionError, match=f"wrt names {leaf.name}, which is data: the global tensor P"):
        traced.compare(wrt=[leaf.name])
    # the parameters still compare, with torch's own gradient: d/dw_i sum_j (w P)_j = sum_j P[i, j]
    c = traced.compare()
    wl = w.clone().requires_grad_(True)
    f(wl).backward()
    assert [e.grad_autograd for e in c.entries] == wl.grad.reshape(-1).tolist()  # type: ignore[union-attr]
    rows = [sum(sp.Rational(float(v)) for v in P[i]) for i in range(8)]
    assert [e.grad_symbolic for e in c.entries] == rows


def test_the_headline_says_what_the_data_leaf_is() -> None:
    X, y = batch(6, 3, 3, torch.float32)
    c = sg.trace(training_step, model_for(X, 3), X, y).compare()
    head = str(c).splitlines()[0]
    # the data leaf in its own clause, before the inputs: none of its commas reads as one between inputs
    # the parameters in the module's own order (weight, then bias), as the table lists them
    assert " at the data X_flat (X reshaped to (6, 9), never differentiated); model.net.1.weight = (3x9 matrix), " \
           "model.net.1.bias = " in head
    assert head.endswith("]  (float32, branches=\"if\")") and "X_flat = " not in head
    said = "the data X_flat (X reshaped to (6, 9), never differentiated)"
    assert said in repr(c) and said in c.to_markdown()
    # the comparison itself: torch's own gradient of the user's loss
    model = model_for(X, 3)
    assert [e.grad_autograd for e in c.entries] == _loss_grads(model, X, y)


def test_to_dict_writes_the_data_leafs_shape_and_provenance_not_its_values() -> None:
    X, y = batch(5, 4, 3, torch.float64)
    c = sg.trace(training_step, model_for(X, 3), X, y).compare()
    d = c.to_dict()
    json.dumps(d, allow_nan=False)
    leaf = d["point"]["X_flat"]
    assert leaf["data"] is True and leaf["shape"] == [5, 16]
    assert leaf["about"].startswith("X (float64) reshaped to (5, 16), data (never differentiated), first used at ")
    assert set(leaf) == {"data", "shape", "about"}  # no values
    # the parameters are still written exactly, as the point holds them
    bias = next(s for s in c.point if str(s) == "model.net.1.bias")
    assert d["point"]["model.net.1.bias"] == [[{"exact": str(v), "float": float(v)}] for v in c.point[bias]]
    # c.point still holds the data's exact values: the user's X, reshaped in C order
    xs = next(s for s in c.point if isinstance(s, DataMatrix))
    assert c.point[xs].tolist() == [[sp.Rational(float(v)) for v in row] for row in X.reshape(5, -1).tolist()]


def test_a_data_leaf_in_a_sweeps_wrt_is_the_same_sentence() -> None:
    """A sweep holds the data leaf fixed; naming it in wrt is refused as data, not as a held
    tensor to compare() (which would refuse it too)."""
    def f(a, X):  # type: ignore[no-untyped-def]
        return torch.relu(a * X.reshape(2, -1) - 0.5).sum()

    X = torch.tensor([[[[0.5, 1.0], [0.25, 2.0]]], [[[1.5, 0.75], [1.0, 0.125]]]], dtype=torch.float64)
    traced = sg.trace(f, 1.0, X)
    with pytest.raises(OptionError, match=r"wrt names X_flat, which is data: X \(float64\) reshaped to \(2, 4\)") as info:
        traced.sweep({"a": (-1.0, 3.0)}, n=5, wrt=["X_flat"])
    assert "differentiate the inputs that are not data (a)" in str(info.value)
    s = traced.sweep({"a": (-1.0, 3.0)}, n=5, wrt=["a"])
    # at a = 3 every x > 1/6 passes: torch's slope is the sum of those x, 7
    assert float(s.points[-1, 0]) == 3.0 and float(s.grad_autograd[-1, 0]) == 7.0
