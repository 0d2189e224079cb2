"""A model's comparison holds its numbers compactly (issue 20, item 5), with every value and
verdict as before: the components held by input (`verdict/components.py`), the one-sided runs'
gradient sharing the executed one's numbers where they are the same (`exact.sharing`), a run
forced beside the point sharing the steps of the run at the point (`executed.run(reuse=)`) and
the blocks of its large products that multiply the same numbers (`exact.remembering`), and the
fidelity check's gradients held as one array (`trace_run.Floats`). Truths: SymPy's own
derivative in exact arithmetic, torch's autograd, and the engine run without the sharing."""

from __future__ import annotations

import itertools
from typing import Any

import flint
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.frontends.trace_run import Floats
from symgrad.program import exact as ex
from symgrad.sides import executed, symbolic
from symgrad.sides.executed import beside_run, run
from symgrad.sides.lowering import lower
from symgrad.verdict import point as pt
from symgrad.verdict.components import Components


# --------------------------------------------------------------------------- components


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 5))), min_size=1, max_size=4))
def test_components_are_the_list_of_each_inputs_elements_in_row_major_order(shapes: list[Any]) -> None:
    blocks = [(k, s) for k, s in enumerate(shapes)]
    listed = [(k, None) if s is None else (k, idx) for k, s in blocks
              for idx in ([None] if s is None else np.ndindex(*s))]
    comps = Components(blocks)
    assert len(comps) == len(listed) and list(comps) == listed and comps == listed
    assert [comps[n] for n in range(len(listed))] == listed
    assert [comps[-n] for n in range(1, len(listed) + 1)] == [listed[-n] for n in range(1, len(listed) + 1)]
    assert comps[1:-1] == listed[1:-1] and comps[::2] == listed[::2]
    assert all(type(i) is int for _, idx in comps if idx is not None for i in idx)
    with pytest.raises(IndexError):
        comps[len(listed)]
    runs = comps.runs()
    assert [(k, start, stop) for k, start, stop, _ in runs] == \
        [(k, min(ns), max(ns) + 1) for k, g in itertools.groupby(enumerate(listed), key=lambda p: p[1][0])
         for ns in [[n for n, _ in g]]]


def test_a_comparisons_components_are_its_entries_wrt() -> None:
    """The table reads each entry's input and element from the held blocks: the same as the list
    of `np.ndindex` gave, entry by entry."""
    W = sp.MatrixSymbol("W", 2, 3)
    x = sp.Symbol("x", real=True)
    c = sg.compare(x * (W[0, 1] + 2 * W[1, 2]) ** 2, at={x: 1.5, W: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]})
    assert [str(e.wrt) for e in c.entries] == ["W[0, 0]", "W[0, 1]", "W[0, 2]", "W[1, 0]", "W[1, 1]", "W[1, 2]", "x"]
    assert [e.grad_symbolic for e in c.entries] == [0, 42, 0, 0, 0, 84, 196]  # 2x(W01 + 2 W12) = 42, twice that, (2 + 12)**2


# --------------------------------------------------------------------------- floats


def test_floats_read_as_the_tuple_they_hold() -> None:
    values = [0.1, -0.0, 3.0, float("inf"), 1e-300]
    f = Floats(np.array(values))
    assert f == tuple(values) and f == values and tuple(f) == tuple(values) and f == Floats(values)
    assert f != tuple(values[:-1]) and f != (0.1, 0.0, 3.0, float("inf"), 1e-301)
    assert [type(v) for v in f] == [float] * 5 and f[1:3] == (-0.0, 3.0) and repr(f) == repr(tuple(values))
    assert hash(f) == hash(tuple(values)) and len(f) == 5 and f[-1] == 1e-300
    assert np.asarray(f).dtype == np.float64 and np.array_equal(np.asarray(f), np.array(values))


def test_the_fidelity_gradients_are_torchs_of_the_users_function() -> None:
    def loss(W, X):
        return torch.tanh(X @ W).sum()

    gen = torch.Generator().manual_seed(3)
    W = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    X = torch.randn(5, 4, dtype=torch.float64, generator=gen)
    traced = sg.trace(loss, W, X)
    Wg, Xg = W.clone().requires_grad_(), X.clone().requires_grad_()
    loss(Wg, Xg).backward()
    expected = tuple(Wg.grad.reshape(-1).tolist() + Xg.grad.reshape(-1).tolist())
    assert isinstance(traced.fidelity.grad_user, Floats)
    assert traced.fidelity.grad_user == expected == traced.fidelity.grad_translated


# --------------------------------------------------------------------------- sharing


def test_same_number_is_the_same_rational_or_the_same_ball() -> None:
    with ex.working_precision(192):
        third = ex.to_real(ex.Q(1, 3))
        assert ex.same_number(ex.Q(1, 3), ex.Q(2, 6)) and ex.same_number(third, ex.to_real(ex.Q(1, 3)))
        assert not ex.same_number(ex.NEG_ZERO, ex.ZERO) and not ex.same_number(ex.Q(1, 3), third)
        wider = flint.arb(third.mid(), third.rad() * 2)  # the same midpoint, a wider radius
        assert wider.mid() == third.mid() and not ex.same_number(third, wider)
        assert not ex.same_number(third, third + arb_eps()) and ex.same_number(ex.NAN, ex.NAN)


def arb_eps() -> Any:
    return ex.to_real(ex.Q(1, 2**300))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.booleans())
def test_a_product_inside_sharing_is_the_same_numbers_fewer_objects(seed: int, balls: bool) -> None:
    """Inside `sharing(held)`, a product of held's shape holds held's object where the element is
    the same number and its own elsewhere: element by element the very same numbers as outside."""
    rng = np.random.default_rng(seed)
    with ex.working_precision(192):
        def matrix(rows: int, cols: int) -> np.ndarray:
            out = ex.full((rows, cols), ex.ZERO)
            for idx in np.ndindex(rows, cols):
                q = ex.Q(int(rng.integers(-3, 4)), int(rng.integers(1, 4)))
                out[idx] = ex.to_real(q).exp() if balls and rng.random() < 0.7 else q
            return out

        a, b = matrix(3, 4), matrix(4, 2)
        plain = ex.matmul(a, b)
        other = ex.matmul(a, b)
        changed = other.copy()
        changed[1, 1] = ex.add(changed[1, 1], ex.ONE)
        with ex.sharing([changed]):
            shared = ex.matmul(a, b)
        for idx in np.ndindex(3, 2):
            assert ex.same_number(shared[idx], plain[idx])
            if idx != (1, 1):
                assert shared[idx] is changed[idx] or (ex.is_rational(shared[idx]) and shared[idx] == 0
                                                         and shared[idx] is ex.ZERO)
        assert shared[1, 1] is not changed[1, 1]


# --------------------------------------------------------------------------- an MLP, exactly


def mlp(W1, b1, W2, b2, X, y):
    h = torch.relu(X @ W1 + b1)
    return -torch.log_softmax(h @ W2 + b2, dim=1)[range(X.shape[0]), y].mean()


def _point(tie: bool) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(7)
    X = torch.randn(3, 3, dtype=torch.float64, generator=gen)
    W1 = torch.randn(3, 4, dtype=torch.float64, generator=gen) * 0.5
    b1 = torch.randn(4, dtype=torch.float64, generator=gen) * 0.1
    if tie:  # hidden unit 2 of example 0 exactly at relu's corner
        W1[:, 2] = 0.0
        W1[0, 2] = 1.0
        b1[2] = -float(X[0, 0])
    W2 = torch.randn(4, 2, dtype=torch.float64, generator=gen) * 0.5
    b2 = torch.randn(2, dtype=torch.float64, generator=gen) * 0.1
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "X": X, "y": torch.tensor([0, 1, 1])}


def _sympy_loss(p: dict[str, Any]) -> tuple[sp.Basic, dict[str, sp.Matrix]]:
    """The MLP in SymPy, a symbol per parameter element (a bias as the column symgrad names), the
    data as the exact rationals it holds."""
    params = {name: sp.Matrix(*(p[name].reshape(p[name].shape[0], -1).shape),
                              lambda i, j, n=name: sp.Symbol(f"{n}_{i}_{j}", real=True))
              for name in ("W1", "b1", "W2", "b2")}
    X = sp.Matrix(p["X"].tolist()).applyfunc(lambda v: sp.Rational(float(v)))
    Z = X * params["W1"] + sp.ones(X.rows, 1) * params["b1"].T
    H = Z.applyfunc(lambda z: sp.Max(z, 0))
    O = H * params["W2"] + sp.ones(X.rows, 1) * params["b2"].T
    rows = [O[r, label] - sp.log(sum(sp.exp(O[r, c]) for c in range(O.cols))) for r, label in enumerate(p["y"].tolist())]
    return -sum(rows) / len(rows), params


@pytest.mark.parametrize("blocks", [None, 4], ids=["whole", "blocks"])
@pytest.mark.parametrize("tie", [False, True], ids=["no-tie", "relu-tie"])
def test_the_exact_gradients_of_an_mlp_are_sympys_element_by_element(tie: bool, blocks: int | None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Each entry's symbolic and executed derivative is SymPy's derivative of the loss written out
    (`sympy.diff`, at the exact point, 50 digits), and autograd's is torch's own backward, bit for
    bit. At the tie the entries that move the tied unit are a kink, and their executed derivative
    is SymPy's with torch's relu'(0) = 0 (Heaviside(0) = 0). `blocks`: every product made a block
    of columns at a time, as a model's are, so that the runs beside the tie take the blocks of
    the products at the point they would compute again (`exact.remembering`)."""
    if blocks is not None:
        monkeypatch.setattr(ex, "BALL_BLOCK", blocks)
        monkeypatch.setattr(ex, "RATIONAL_BLOCK", blocks)
    p = _point(tie)
    c = sg.compare(mlp, at=p, wrt=["W1", "b1", "W2", "b2"])
    loss, params = _sympy_loss(p)
    at = {m[i, j]: sp.Rational(float(p[name].reshape(m.shape)[i, j]))
          for name, m in params.items() for i in range(m.rows) for j in range(m.cols)}
    leaves = {k: v.clone().requires_grad_() for k, v in p.items() if k != "y"}
    mlp(**leaves, y=p["y"]).backward()
    entries = {str(e.wrt): e for e in c.entries}
    assert len(entries) == 3 * 4 + 4 + 4 * 2 + 2
    tied = []
    for name, m in params.items():
        for i in range(m.rows):
            for j in range(m.cols):
                key = f"{name}[{i}, {j}]"
                e = entries[key]
                d = sp.diff(loss, m[i, j]).replace(lambda t: isinstance(t, sp.Heaviside),
                                                   lambda t: sp.Heaviside(t.args[0], 0))  # torch's relu'(0)
                executed = sp.N(d.xreplace(at), 50)
                moves_tie = tie and (name == "W1" and j == 2 and float(p["X"][0, i]) != 0.0 or name == "b1" and i == 2)
                if moves_tie:  # on the kink: no derivative of the mathematics
                    assert e.cause.id == "kink" and e.grad_symbolic is None, key
                    tied.append(key)
                else:
                    assert e.cause.id == "agree", key
                    assert abs(e.grad_symbolic - executed) <= sp.Float(1e-28) * max(1, abs(executed)), key
                assert abs(e.grad_executed - executed) <= sp.Float(1e-28) * max(1, abs(executed)), key
                assert e.grad_autograd == float(leaves[name].grad.reshape(m.shape)[i, j]), key
    assert len(tied) == (4 if tie else 0)  # W1[:, 2] (X[0, :] all nonzero) and b1[2]


# --------------------------------------------------------------------------- the runs share


def test_a_run_forced_beside_the_point_shares_the_steps_before_the_kink_and_equals_its_own() -> None:
    X = sp.MatrixSymbol("X", 3, 2)
    W = sp.MatrixSymbol("W", 2, 3)
    f = (X * W).applyfunc(lambda t: sp.Max(t, 0))
    expr = sp.MatMul(sp.OneMatrix(1, 3), sp.HadamardProduct(f, X * W), sp.OneMatrix(3, 1))[0, 0]
    lowered = lower(expr)
    point = {name: ex.mat([[ex.from_float(v) for v in row] for row in rows]) for name, rows in
             zip(lowered.inputs, ([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]], [[1.0, 0.0], [0.5, -1.0], [2.0, 1.0]]))}
    with ex.working_precision(ex.START_PREC):
        at_point = run(lowered, point)
        for direction in (-1, 1):
            near, own = beside_run(lowered, point, "W", direction, idx=(0, 1))
            _, shared = beside_run(lowered, point, "W", direction, idx=(0, 1), reuse=at_point)
            assert [d.taken for d in shared.decisions] == [d.taken for d in own.decisions]
            assert any(a is b for a, b in zip(shared.steps, at_point.steps) if a.op == "add")  # (X W)[i, j]
            for a, b in zip(shared.steps, own.steps):
                assert (a.op, a.name) == (b.op, b.name)
                for u, v in zip(ex.elements(a.value), ex.elements(b.value)):
                    assert ex.same_number(u, v)
            for g, h in zip(shared.gradient("math", ex.ONE), own.gradient("math", ex.ONE)):
                assert all(ex.same_number(u, v) for u, v in zip(ex.elements(g), ex.elements(h)))
        with ex.working_precision(ex.START_PREC + 64):  # another precision: nothing is shared
            _, other = beside_run(lowered, point, "W", 1, idx=(0, 1), reuse=at_point)
            assert not any(a is b for a, b in zip(other.steps, at_point.steps) if a.parents)


@pytest.mark.parametrize("blocks", [None, 4], ids=["whole", "blocks"])
def test_a_models_symbolic_derivatives_are_the_executed_objects_where_the_same_number(
        blocks: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a relu tie, the entries that do not move the tied unit hold one object for both sides,
    and every entry is what it is with no sharing at all (no product sharing held numbers, no
    forced run sharing steps, no product taking the blocks of one made before); `blocks`: every
    product made a block of columns at a time."""
    if blocks is not None:
        monkeypatch.setattr(ex, "BALL_BLOCK", blocks)
        monkeypatch.setattr(ex, "RATIONAL_BLOCK", blocks)
    p = _point(True)
    c = sg.compare(mlp, at=p, wrt=["W1", "b1", "W2", "b2"])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ex, "sharing", lambda held: _nothing())
        m.setattr(ex, "remembering", _nothing)
        m.setattr(symbolic, "same_number", lambda g, e: g)
        m.setattr(executed._Runner, "reused", lambda self, s: None)  # every forced run computes every step
        plain = sg.compare(mlp, at=p, wrt=["W1", "b1", "W2", "b2"])
    exact = c.table.exact
    shared = sum(1 for n in range(len(c.table.comps)) if exact(0, n)[0] is exact(0, n)[1])
    assert shared >= len(c.table.comps) - 6  # all but the tied unit's column and bias
    assert [(e.cause, e.grad_symbolic, e.grad_executed, e.one_sided) for e in c.entries] == \
        [(e.cause, e.grad_symbolic, e.grad_executed, e.one_sided) for e in plain.entries]


def _nothing() -> Any:
    import contextlib
    return contextlib.nullcontext()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32))
def test_a_rational_matrix_times_balls_contains_the_exact_product(seed: int) -> None:
    """A rational matrix times a matrix of balls (`arb_mat(fmpq_mat)` for the rational one): each
    element is a ball that holds the exact dot product, and the same ball as each rational made a
    ball alone; with balls that hold one rational each (1/3 at 192 bits) and with exact ones."""
    rng = np.random.default_rng(seed)
    with ex.working_precision(192):
        qa = [[ex.Q(int(rng.integers(-9, 10)), int(rng.integers(1, 9))) for _ in range(3)] for _ in range(2)]
        qb = [[ex.Q(int(rng.integers(-9, 10)), int(rng.integers(1, 9))) for _ in range(2)] for _ in range(3)]
        a = ex.mat(qa)
        b = ex.mat([[ex.to_real(q) for q in row] for row in qb])
        product = ex.matmul(a, b)
        by_balls = flint.arb_mat([[ex.to_real(q) for q in row] for row in qa]) * flint.arb_mat(
            [[ex.to_real(q) for q in row] for row in qb])
        for i, j in np.ndindex(2, 2):
            truth = sum((qa[i][t] * qb[t][j] for t in range(3)), ex.ZERO)
            with ex.working_precision(2000):  # the rational as a ball far narrower than the product's
                assert product[i, j].contains(ex.to_real(truth))
            assert ex.same_number(product[i, j], by_balls[i, j])
