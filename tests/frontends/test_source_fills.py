"""Draws into a tensor (issue 22): `torch.empty(n).uniform_(a, b)`, `v.normal_(m, s)` as a statement,
`torch.nn.init.uniform_/normal_(w, ...)` on a tensor the function made, read as the random draws
of the user's run (as `torch.rand` is), and what torch refuses or does behind autograd's back said
in a sentence.

Ground truth: torch itself under a seed (the user's function run from the same random state: its
output and `torch.autograd.grad`, bit for bit, float64 and float32), and the exact derivative
written here from the values torch drew (SymPy rationals of the floats).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from tests.user_code import torch_truth
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]


def chained(x):
    n = torch.empty(3, dtype=x.dtype).uniform_(-1, 1)
    return (x * n).sum()


def statement(x):
    n = torch.empty(3, dtype=x.dtype)
    n.normal_(0.0, 2.0)
    return (x * n).sum()


def init_uniform(x):
    w = torch.empty(3, dtype=x.dtype)
    torch.nn.init.uniform_(w, -0.5, 0.5)
    return (x * w).sum()


def init_normal_matrix(x):
    W = torch.empty(3, 2, dtype=x.dtype)
    torch.nn.init.normal_(W, mean=0.0, std=0.1)
    return torch.tanh(x @ W).sum()


def zeros_overwritten(x):
    w = torch.zeros(3, dtype=x.dtype).normal_(0, 0.1)
    return (torch.sin(x) * w).sum()


def computed_then_drawn(x):
    y = x * 2  # a non-leaf that requires grad: the draw overwrites it, torch's gradient through it is 0
    y.uniform_(0.0, 1.0)
    return (y * x).sum()


def leaf_made_with_grad(x):
    w = torch.empty(3, dtype=x.dtype, requires_grad=True)
    torch.nn.init.uniform_(w, -1.0, 1.0)  # under no_grad: torch allows it
    return (x * w).sum()


def like_input(x):
    n = torch.empty_like(x)
    torch.nn.init.normal_(n, 1.0, 0.5)
    return (x * n).sum()


def drawn(fn: Any, x: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """The values each draw of fn's run gave, in order (the tensors the draws returned)."""
    got: list[torch.Tensor] = []
    originals = {name: getattr(torch.Tensor, name) for name in ("uniform_", "normal_")}
    inits = {name: getattr(torch.nn.init, name) for name in ("uniform_", "normal_")}

    depth = [0]  # nn.init's draw calls Tensor's: one draw

    def keep(f: Any) -> Any:
        def kept(t: torch.Tensor, *a: Any, **k: Any) -> Any:
            depth[0] += 1
            try:
                r = f(t, *a, **k)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                got.append(t.detach().clone())
            return r
        return kept

    torch.manual_seed(seed)
    try:
        for name, f in originals.items():
            setattr(torch.Tensor, name, keep(f))
        for name, f in inits.items():
            setattr(torch.nn.init, name, keep(f))
        fn(x.clone())
    finally:
        for name, f in originals.items():
            setattr(torch.Tensor, name, f)
        for name, f in inits.items():
            setattr(torch.nn.init, name, f)
    return got


def q(v: float) -> sp.Rational:
    return sp.Rational(Fraction(float(v)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [chained, statement, init_uniform, zeros_overwritten, computed_then_drawn,
                                leaf_made_with_grad, like_input])
def test_a_draw_into_a_tensor_is_data_of_the_users_run(fn: Any, dtype: torch.dtype) -> None:
    x = torch.tensor([0.5, -1.25, 2.0], dtype=dtype)
    torch.manual_seed(7)
    t = sg.trace(fn, x)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    out, grads = torch_truth(fn, x, 7)
    assert c.ok and c.cause is Cause.AGREE
    assert [e.grad_autograd for e in c.entries] == grads
    assert float(c.value_autograd) == float(out)  # the translation's forward is the user's, bit for bit
    (w,) = drawn(fn, x, 7)
    xs = [q(v) for v in x.tolist()]
    for k, e in enumerate(c.entries):
        # d/dx_k of x_k*w_k (computed_then_drawn: y's path to x carries 0, as torch's uniform_ does)
        truth = sp.cos(xs[k]) * q(w[k]) if fn is zeros_overwritten else q(w[k])
        assert abs(sp.sympify(str(e.grad_executed)) - truth.evalf(50)) < sp.Float("1e-40")
        assert abs(sp.sympify(str(e.grad_symbolic)) - truth.evalf(50)) < sp.Float("1e-40")
    assert "drawn in your run" in str(c)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nn_init_normal_of_a_matrix_is_the_draw(dtype: torch.dtype) -> None:
    x = torch.tensor([[0.5, -1.25, 2.0], [1.0, 0.25, -0.5]], dtype=dtype)
    torch.manual_seed(3)
    c = sg.compare(init_normal_matrix, at={"x": x})
    out, grads = torch_truth(init_normal_matrix, x, 3)
    assert c.ok and [e.grad_autograd for e in c.entries] == grads
    assert float(c.value_autograd) == float(out)
    (W,) = drawn(init_normal_matrix, x, 3)
    X = sp.Matrix(2, 3, [q(v) for v in x.reshape(-1).tolist()])
    Wq = sp.Matrix(3, 2, [q(v) for v in W.reshape(-1).tolist()])
    xs = sp.Matrix(2, 3, lambda i, k: sp.Symbol(f"x{i}{k}"))
    f = sum(sp.tanh(v) for v in xs * Wq)
    for e, s in zip(c.entries, xs):
        truth = sp.diff(f, s).subs(dict(zip(xs, X))).evalf(50)
        assert abs(sp.sympify(str(e.grad_symbolic)) - truth) < sp.Float("1e-40")


def input_drawn(x):
    x.uniform_(0, 1)
    return x.sum()


def input_initialised(x):
    torch.nn.init.normal_(x)
    return (x * x).sum()


def read_before_filled(x):
    w = torch.empty(3, dtype=x.dtype)
    y = (x * w).sum()
    w.uniform_(0, 1)
    return y


def assigned_by_element(x):
    w = torch.empty(3, dtype=x.dtype)
    w[0] = x[0]
    return (w * x).sum()


def element_read(x):
    w = torch.empty(3, dtype=x.dtype)
    return x.sum() + w[1]


def aliased(x):
    a = x * 1.0
    b = a
    b.normal_(0, 1)
    return (a * x).sum()


def grad_leaf_drawn(x):
    w = torch.empty(3, dtype=x.dtype, requires_grad=True)
    w.uniform_(0, 1)
    return (x * w).sum()


def named_in_an_expression(x):
    n = torch.empty(3, dtype=x.dtype)
    m = n.uniform_(0, 1) * 2
    return (x * m * n).sum()


def drawn_with_a_differentiated_std(x):
    n = torch.empty(3, dtype=x.dtype).normal_(0.0, x[0])
    return (x * n).sum()


@pytest.mark.parametrize("fn, words, torch_raises", [
    (input_drawn, "torch raises RuntimeError here (a leaf Variable that requires grad is being used in an in-place operation)", True),
    (input_initialised, "overwrites the input `x` with a draw under no_grad, behind autograd's back", False),
    (read_before_filled, "makes a tensor whose values are whatever memory held", False),
    (assigned_by_element, "build it out of place (`torch.stack([...])`) or start from `torch.zeros`", False),
    (element_read, "makes a tensor whose values are whatever memory held", False),
    (aliased, "`b` is the same tensor as `a`", False),
    (grad_leaf_drawn, "a leaf made with requires_grad=True, in place: torch raises RuntimeError", True),
    (drawn_with_a_differentiated_std, "computed from differentiated values", False),
    (named_in_an_expression, "`n.uniform_(...)` inside an expression changes `n` in place", False),
], ids=["input-leaf", "init-of-input", "unfilled-read", "unfilled-put", "unfilled-index", "alias", "requires-grad-leaf", "std-of-x", "in-expression"])
def test_what_torch_refuses_or_hides_is_a_sentence_naming_the_line(fn: Any, words: str, torch_raises: bool) -> None:
    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64)
    if torch_raises:  # the sentence says what torch itself does
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            torch_truth(fn, x, 0)
    torch.manual_seed(0)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, x)
    text = str(err.value)
    assert words in text and "Fix:" in text, text
    assert "test_source_fills.py:" in text
