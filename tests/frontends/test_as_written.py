"""The torch front end reads the user's operations as written (issue 21, item 15).

SymPy folds and reorders what it builds: `a / a` is 1, `a - a` is 0, `t * (x / t)` is x,
`(x * 3) * 5` is `15*x`, `X @ (W1 @ W2)` is flattened, and `torch.sqrt((v**2).sum())` is not
torch's own norm. A translation that folds computes other floats or has no gradient, and the
fidelity check (rightly) refuses it. Here every construct is read in source mode and its
lowered translation is run beside the user's function: forward value and autograd gradient
are the same bits as torch's own, in float64 and float32. The oracle is torch itself, run
on the user's function; the expected numbers at the norm's kink are the cone's exact slopes.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg

DTYPES = (torch.float64, torch.float32)


# ---------------------------------------------------------------- the user's functions


def self_div(a):
    return a / a


def self_sub(a):
    return a - a


def self_sub_times(a, b):
    return (a - a) * b


def times_zero(x):
    return x * 0


def where_t_x_over_t(x, t):
    return torch.where(x > 0, t * (x / t), x)


def branch_t_x_over_t(x, t):
    y = t * (x / t) if x > 0 else x
    return y


def branch_constants(x):
    if x > 0:
        y = (x * 3) * 5
    else:
        y = x
    return y


def exp_of_log(x):
    return torch.exp(torch.log(x))


def divide_by_a_tenth(x):
    return x / 0.1


def norm_function(u):
    return torch.norm(u)


def norm_method(u):
    return u.norm()


def norm_linalg(u):
    return torch.linalg.norm(u)


def norm_vector(u):
    return torch.linalg.vector_norm(u)


def norm_of_difference(u, v):
    return (u - v).norm() * 2


def frobenius(X):
    return X.norm()


def no_grad_then_sum(x):
    with torch.no_grad():
        c = x * 2
    return c.sum()


def no_grad_sum_times_sum(x):
    with torch.no_grad():
        c = x * 2
    return c.sum() * x.sum()


def no_grad_sum_in_block(x):
    with torch.no_grad():
        s = (x * 2).sum()
    return s * x.sum()


def no_grad_elementwise(x):
    with torch.no_grad():
        c = x * 2
    return (c * x + c).sum()


def matrix_minus_itself(x):
    return (x - x).sum()


def matrix_constants(x):
    return ((x * 3) * 5).sum()


def matrix_over_its_sum(x):
    return (x / x.sum()).sum()


def matrix_over_scalar(x, t):
    return (x / t).sum()


def matmul_right_first(x, w1, w2):
    return (x @ (w1 @ w2)).sum()


def sum_minus_sum(x):
    return x.sum() - x.sum()


# Points where a fold changes the floats: (x * 3) * 5 != 15 * x, t * (x / t) != x.
X3x5 = {torch.float64: 0.8397001746443229, torch.float32: 2.415910482406616}
TX = {torch.float64: (1.5367617525666288, 1.4035240878873405), torch.float32: (1.380632758140564, 2.677666187286377)}
GEN = torch.Generator().manual_seed(21)


def _rand(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=GEN, dtype=torch.float64) + 0.25


CONSTRUCTS: list[tuple[Any, Any]] = [
    (self_div, lambda dt: (1.3,)),
    (self_sub, lambda dt: (1.3,)),
    (self_sub_times, lambda dt: (1.3, 2.0)),
    (times_zero, lambda dt: (0.7,)),
    (where_t_x_over_t, lambda dt: TX[dt]),
    (branch_t_x_over_t, lambda dt: TX[dt]),
    (branch_constants, lambda dt: (X3x5[dt],)),
    (exp_of_log, lambda dt: (1.3,)),
    (divide_by_a_tenth, lambda dt: (0.7,)),
    (norm_function, lambda dt: ([3.0, -4.0],)),
    (norm_method, lambda dt: ([3.0, -4.0],)),
    (norm_linalg, lambda dt: ([3.0, -4.0],)),
    (norm_vector, lambda dt: ([3.0, -4.0],)),
    (norm_function, lambda dt: ([0.0, 0.0],)),
    (norm_method, lambda dt: ([0.0, 0.0, 0.0],)),
    (norm_method, lambda dt: (0.0,)),
    (norm_method, lambda dt: (-2.5,)),
    (norm_vector, lambda dt: ([[0.5, -1.5, 2.0]],)),
    (norm_function, lambda dt: (_rand(50),)),
    (norm_of_difference, lambda dt: ([1.0, 2.0], [1.0, 2.0])),
    (frobenius, lambda dt: (_rand(3, 4),)),
    (no_grad_then_sum, lambda dt: ([[1.0, 2.0], [3.0, 4.0]],)),
    (no_grad_sum_times_sum, lambda dt: ([[1.0, 2.0], [3.0, 4.0]],)),
    (no_grad_sum_in_block, lambda dt: ([1.0, 2.0],)),
    (no_grad_elementwise, lambda dt: ([[1.0, 2.0], [3.0, 4.0]],)),
    (matrix_minus_itself, lambda dt: ([1.3, 0.7],)),
    (matrix_constants, lambda dt: ([X3x5[dt], 0.7],)),
    (matrix_over_its_sum, lambda dt: (_rand(5),)),
    (matrix_over_scalar, lambda dt: (_rand(5), 0.37)),
    (matmul_right_first, lambda dt: (_rand(3, 4), _rand(4, 5), _rand(5, 2))),
    (sum_minus_sum, lambda dt: ([1.3, 0.7],)),
]


def _tensors(values: tuple[Any, ...], dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.as_tensor(v, dtype=torch.float64).to(dtype).clone().requires_grad_(True) for v in values]


def _run(fn: Any, tensors: list[torch.Tensor]) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """The forward value and the autograd gradients (None where the output is off the graph)."""
    out = fn(*tensors)
    value = out.detach().to(torch.float64).numpy().reshape(-1)
    if not out.requires_grad:
        return value, None
    grads = torch.autograd.grad(out, tensors, allow_unused=True)
    return value, [np.zeros(t.numel()) if g is None else g.detach().to(torch.float64).numpy().reshape(-1)
                   for g, t in zip(grads, tensors)]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))))


def _translated(traced: Any, dtype: torch.dtype, tensors: list[torch.Tensor]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The translation lowered and run by torch (a rank-1 tensor as the (n, 1) column it is read
    as), its gradients in the function's parameter order."""
    lowered = sg.lower(traced.program, branches=traced.branches, dtype=str(dtype).replace("torch.", ""))
    by_name = {s.name: (t.reshape(-1, 1) if t.ndim == 1 else t) for s, t in zip(traced.inputs, tensors)}
    value, grads = _run(lowered, [by_name[name] for name in lowered.inputs])
    if grads is None:
        return value, None
    by_input = dict(zip(lowered.inputs, grads))
    return value, [by_input[s.name] for s in traced.inputs]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, args", CONSTRUCTS, ids=[f"{f.__name__}-{k}" for k, (f, _) in enumerate(CONSTRUCTS)])
def test_each_construct_is_read_as_written_and_reproduces_torch_bit_for_bit(fn: Any, args: Any, dtype: torch.dtype) -> None:
    values = args(dtype)
    traced = sg.trace(fn, *[torch.as_tensor(v, dtype=torch.float64).to(dtype) for v in values])
    assert traced.mode == "source", traced.reason
    want_value, want_grads = _run(fn, _tensors(values, dtype))
    value, grads = _translated(traced, dtype, _tensors(values, dtype))
    assert _same_bits(value, want_value), (value, want_value)
    assert (grads is None) == (want_grads is None)
    for got, want in zip(grads or (), want_grads or ()):
        assert _same_bits(got, want), (got, want)


def test_the_folds_are_not_in_the_program() -> None:
    """The user's operations stay in the program: an op per torch call, never a folded constant."""
    assert sg.trace(self_div, 1.3).program.body.args[-1].rhs != 1
    assert sg.trace(self_sub, 1.3).program.body.args[-1].rhs != 0
    t = sg.trace(branch_t_x_over_t, *TX[torch.float64])
    piece = t.program.body.args[-1].rhs.args[0].expr
    assert piece != sp.Symbol("x", real=True) and piece.has(sp.Symbol("t", real=True))
    src = sg.lower(sg.trace(branch_constants, X3x5[torch.float64]).program).source
    assert "15" not in src and "* 3" in src and "* 5" in src
    src = sg.lower(sg.trace(matmul_right_first, _rand(3, 4), _rand(4, 5), _rand(5, 2)).program).source
    assert "w1 @ w2" in src and "x @ w1_at_w2" in src
    assert "x / 0.1" in sg.lower(sg.trace(divide_by_a_tenth, 0.7).program).source
    assert "torch.linalg.vector_norm" in sg.lower(sg.trace(norm_function, [3.0, -4.0]).program).source


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_the_norm_is_torchs_own_kernel(dtype: torch.dtype) -> None:
    """(3, -4): torch's a / norm is (0.6, -0.8), where sqrt of the sum of squares gives
    0.6000000000000001; at the origin torch's gradient is 0 and the mathematics is a cone."""
    c = sg.compare(norm_function, at={"u": torch.tensor([3.0, -4.0], dtype=dtype)})
    assert c.ok
    assert [e.grad_executed for e in c.entries] == [sp.Rational(3, 5), sp.Rational(-4, 5)]
    assert [e.grad_autograd for e in c.entries] == [float(torch.tensor(0.6, dtype=dtype)), float(torch.tensor(-0.8, dtype=dtype))]
    c = sg.compare(norm_method, at={"u": torch.tensor([0.0, 0.0], dtype=dtype)})
    for e in c.entries:
        assert e.cause is sg.Cause.KINK
        assert e.grad_symbolic is None and e.one_sided == (-1, 1)
        assert e.grad_executed == 0 and e.grad_autograd == 0.0
        assert e.source is not None and e.source.text == "return u.norm()"


def test_a_norm_of_a_difference_at_its_tip_has_the_cones_slopes() -> None:
    c = sg.compare(norm_of_difference, at={"u": [1.0, 2.0], "v": [1.0, 2.0]})
    assert {e.cause for e in c.entries} == {sg.Cause.KINK}
    assert all(e.one_sided == (-2, 2) and e.grad_executed == 0 for e in c.entries)


def other_order(u):
    return torch.norm(u, p=1)


def along_a_dim(u):
    return torch.linalg.vector_norm(u, dim=0)


def spectral(X):
    return torch.linalg.norm(X, ord=2)


def no_grad_matmul(x, w):
    with torch.no_grad():
        c = x * 2
    return (c @ w).sum()


@pytest.mark.parametrize("fn, args, words", [
    (other_order, ([1.0, 2.0],), "2-norm only"),
    (along_a_dim, ([1.0, 2.0],), "along a dim"),
    (spectral, ([[1.0, 2.0], [3.0, 4.0]],), "spectral norm"),
    (no_grad_matmul, ([[1.0, 2.0], [3.0, 4.0]], [[1.0], [2.0]]), "computed under `torch.no_grad()`"),
], ids=lambda v: getattr(v, "__name__", None))
def test_what_is_not_read_as_written_is_a_sentence_naming_the_users_line(fn: Any, args: Any, words: str) -> None:
    with pytest.raises(sg.TraceError) as info:
        sg.trace(fn, *[torch.tensor(a, dtype=torch.float64) for a in args])
    text = str(info.value)
    lines, first = inspect.getsourcelines(fn)
    assert f"test_as_written.py:{first + len(lines) - 1} {lines[-1].strip()}" in text
    assert words in text


def test_a_no_grad_tensor_keeps_its_sum_and_stays_off_the_graph() -> None:
    """d/dx (sum(2x) * sum(x)): the mathematics 4*sum(x) = 40; the program, whose first factor
    is a constant, 2*sum(x) = 20 (a graph break); torch's own gradient is 20."""
    c = sg.compare(no_grad_sum_times_sum, at={"x": [[1.0, 2.0], [3.0, 4.0]]})
    assert c.value_exact == 200
    for e in c.entries:
        assert e.grad_symbolic == 40 and e.grad_executed == 20 and e.grad_autograd == 20.0
        assert e.cause is sg.Cause.GRAPH_BREAK


@settings(max_examples=25, deadline=None)
@given(x=st.floats(0.01, 100.0), t=st.floats(0.01, 100.0), f32=st.booleans())
def test_a_quotient_and_its_product_are_never_folded(x: float, t: float, f32: bool) -> None:
    """At any point, `t * (x / t)` in a branch and under torch.where reproduces torch bit for bit."""
    dtype = torch.float32 if f32 else torch.float64
    for fn in (where_t_x_over_t, branch_t_x_over_t):
        traced = sg.trace(fn, torch.tensor(x, dtype=dtype), torch.tensor(t, dtype=dtype))
        assert traced.mode == "source"
        want = _run(fn, _tensors((x, t), dtype))
        got = _translated(traced, dtype, _tensors((x, t), dtype))
        assert got[1] is not None and want[1] is not None
        assert _same_bits(got[0], want[0]) and all(_same_bits(a, b) for a, b in zip(got[1], want[1]))
