"""`trace`: torch functions read back from their source, checked bit for bit, then compared.

The acceptance rows of issue 10: each user function is written here as a student writes it in
PyTorch, and the oracle is torch itself (the fidelity check runs the user's function) and the
exact sides of `compare`.
"""

from __future__ import annotations

import itertools
import linecache
import math
import re
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy.codegen.ast import Assignment, CodeBlock

import symgrad as sg
from symgrad.frontends import torch_names as tn

# ---------------------------------------------------------------- the user's functions


def d2l(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    c = b if b.sum() > 0 else 100 * b
    return c


def with_detach(x):
    return x * (x**2).detach()


def where_sqrt(x):
    return torch.where(x > 0, torch.sqrt(x), 0.)


def with_item(x):
    s = x.item()
    return x * s


def with_no_grad(x):
    with torch.no_grad():
        y = x * 3
    return x * y


def relu_four_ways(x):
    return torch.relu(x) + torch.clamp(x, min=0) + torch.maximum(x, torch.zeros_like(x)) + x.abs()


def sqrt_of_square(x):
    return torch.sqrt(x**2)


def log_sum_exp(v):
    return torch.log(torch.exp(v).sum())


def fused_logsumexp(v):
    return torch.logsumexp(v, 0)


def branch(x):
    if x > 0:
        y = x * x
    else:
        y = -x
    return y


def quadratic_loss(X, w, y):
    return 0.5 * torch.sum((X @ w - y) ** 2)


def line_of(fn: Any, text: str) -> str:
    import inspect

    lines, first = inspect.getsourcelines(fn)
    k = next(k for k, ln in enumerate(lines) if text in ln)
    return f"test_trace.py:{first + k} {lines[k].strip()}"


# ---------------------------------------------------------------- acceptance rows


def test_d2l_at_an_ordinary_point_agrees() -> None:
    c = sg.trace(d2l, 1.5409961082440433).compare()
    assert c.cause is sg.Cause.AGREE
    (e,) = c.entries
    assert e.grad_symbolic == 1024 and e.grad_autograd == 1024.0


def test_d2l_on_the_loop_threshold_is_control_flow_citing_the_while_line() -> None:
    c = sg.compare(d2l, at={"a": 0.48828125})
    (e,) = c.entries
    assert e.cause is sg.Cause.CONTROL_FLOW
    assert e.grad_symbolic is None and e.grad_autograd == 2048.0
    assert "2000 from the left, 1000 at the point" in e.explanation
    assert str(e.source) == line_of(d2l, "while b.norm()")
    assert str(e.source).endswith("while b.norm() < 1000:")
    assert f"In your code: `{e.source}`" in e.explanation


def test_detach() -> None:
    (e,) = sg.trace(with_detach, 3.0).compare().entries
    assert e.cause is sg.Cause.DETACH
    assert (e.grad_symbolic, e.grad_executed, e.grad_autograd) == (27, 9, 9.0)


def test_where_nan_trap() -> None:
    (e,) = sg.trace(where_sqrt, -1.0).compare().entries
    assert e.cause is sg.Cause.NAN_TRAP
    assert e.grad_symbolic == 0 and math.isnan(e.grad_autograd)


def test_item_is_a_graph_break_at_its_line() -> None:
    (e,) = sg.trace(with_item, 0.7).compare().entries
    x = sp.Rational(0.7)
    assert e.cause is sg.Cause.GRAPH_BREAK
    assert e.grad_symbolic == 2 * x and e.grad_autograd == 0.7
    assert str(e.source) == line_of(with_item, "x.item()")


def test_no_grad_is_a_graph_break_at_the_with_line() -> None:
    (e,) = sg.trace(with_no_grad, 0.7).compare().entries
    x = sp.Rational(0.7)
    assert e.cause is sg.Cause.GRAPH_BREAK
    assert e.grad_symbolic == 6 * x and e.grad_executed == 3 * x
    assert e.grad_autograd == pytest.approx(2.1)
    assert str(e.source) == line_of(with_no_grad, "with torch.no_grad()")


def test_relu_four_ways_keeps_each_ops_convention() -> None:
    t = sg.trace(relu_four_ways, 0.0)
    (e,) = t.compare().entries
    assert e.cause is sg.Cause.KINK
    assert e.one_sided == (-1, 4) and e.grad_autograd == 1.5
    src = sg.lower(t.program).source
    assert "torch.relu(" in src and "torch.clamp(" in src and "torch.maximum(" in src and "torch.abs(" in src


def test_sqrt_of_a_square_keeps_the_users_nan() -> None:
    t = sg.trace(sqrt_of_square, 0.0)
    (e,) = t.compare().entries
    assert math.isnan(e.grad_autograd)  # the user's torch gives nan, not torch.abs's 0
    # |x| has a corner at 0 (one-sided slopes -1, 1), and the program's inf * 0 is the nan trap.
    assert e.cause is sg.Cause.KINK and sg.Cause.NAN_TRAP in e.also and e.one_sided == (-1, 1)
    assert "torch.sqrt(" in sg.lower(t.program).source  # two statements: never SymPy's Abs(x)


def test_log_of_a_sum_of_exps_overflows_at_the_exp() -> None:
    t = sg.trace(log_sum_exp, [1000.0, 0.0])
    assert any("(2, 1) column" in n for n in t.notes)
    c = t.compare()
    assert c.entries[0].cause is sg.Cause.OVERFLOW
    assert abs(float(c.entries[0].grad_symbolic) - 1) < 1e-300
    assert "exp" in c.entries[0].node


def fused_cross_entropy(v, t):  # type: ignore[no-untyped-def]
    return torch.nn.functional.cross_entropy(v, t)


def fused_smooth_l1(v, t):  # type: ignore[no-untyped-def]
    return torch.nn.functional.smooth_l1_loss(v, t)


def test_fused_losses_once_refused_have_rows_now() -> None:
    # smooth_l1_loss has a row now (issue 22): d = 1000 and d = -1 = -beta take torch's +-1/n.
    entries = sg.trace(fused_smooth_l1, [1000.0, 0.0], [0.0, 1.0]).compare().entries
    assert [(e.grad_executed, e.cause) for e in entries[:2]] == [(sp.Rational(1, 2), sg.Cause.AGREE),
                                                                 (sp.Rational(-1, 2), sg.Cause.AGREE)]
    # cross_entropy of class probabilities too (one unbatched sample): d/dv is softmax(v) - t.
    traced = sg.trace(fused_cross_entropy, [1000.0, 0.0], [0.0, 1.0])
    assert traced.fidelity.ok
    assert [e.grad_autograd for e in traced.compare().entries[:2]] == [1.0, -1.0]


def fused_log_softmax(v, t):  # type: ignore[no-untyped-def]
    return -(torch.log_softmax(v, 0) * t).sum()


def fused_softmax_weighted(v, w):  # type: ignore[no-untyped-def]
    return (torch.nn.functional.softmax(v, dim=0) * w).sum()


def fused_softplus_minus_x(x):  # type: ignore[no-untyped-def]
    return torch.nn.functional.softplus(x) - x


def fused_logaddexp(a, b):  # type: ignore[no-untyped-def]
    return torch.logaddexp(a, b)


def softplus_beta(x):  # type: ignore[no-untyped-def]
    return torch.nn.functional.softplus(x, beta=2)


def minibatch_cross_entropy(W, X, Y):  # type: ignore[no-untyped-def]
    return -(Y * torch.log_softmax(X @ W, dim=1)).sum() / 4


def softmax_per_column(V, w):  # type: ignore[no-untyped-def]
    return (torch.softmax(V, 0) * w).sum()


def softmax_of_one_element_rows(v, w):  # type: ignore[no-untyped-def]
    return (torch.softmax(v, dim=1) * w).sum()


def softmax_without_dim(V):  # type: ignore[no-untyped-def]
    return torch.nn.functional.softmax(V).sum()


def softmax_dim_out_of_range(V):  # type: ignore[no-untyped-def]
    return torch.softmax(V, 2).sum()


def _torch_grads(fn: Any, *values: torch.Tensor) -> list[list[float]]:
    ts = [v.clone().requires_grad_(True) for v in values]
    fn(*ts).backward()
    return [t.grad.flatten().tolist() for t in ts]


def _by_input(c: sg.Comparison, names: str) -> list[list[float]]:
    return [[e.grad_autograd for e in c.entries if str(e.wrt).startswith(f"{n}[")] for n in names]


def test_log_softmax_along_dim_1_of_a_minibatch_is_one_fused_call() -> None:
    """D2L's softmax regression on a minibatch: one log_softmax per row of X @ W (dim=1), read
    back as one torch.log_softmax(..., 1) call; autograd is torch's own gradient bit for bit, and
    the exact sides agree with it."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, dtype=torch.float64, generator=g)
    W = torch.randn(3, 2, dtype=torch.float64, generator=g)
    Y = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.float64)
    traced = sg.trace(minibatch_cross_entropy, W, X, Y)
    assert traced.fidelity.ok
    c = traced.compare()
    assert c.ok and len(c.entries) == 6 + 12 + 8
    source = c.lowered.source
    body = source.split("def f")[1]  # no element is taken out: X @ W is softmaxed as it is
    assert "X_at_W = X @ W" in body and "torch.log_softmax(X_at_W, 1)" in body and "[0, 0]" not in body
    assert _by_input(c, "WXY") == _torch_grads(minibatch_cross_entropy, W, X, Y)


def minibatch_cross_entropy_with_bias(W, b, X, Y):  # type: ignore[no-untyped-def]
    return -(Y * torch.log_softmax(X @ W + b, dim=1)).sum() / 16


def scaled_rows(X, c):  # type: ignore[no-untyped-def]
    return (X * c).sum()


def test_a_bias_broadcast_over_the_minibatch_is_torchs_expand() -> None:
    """X @ W + b with a rank-1 bias b (read as a (3, 1) column): torch adds b to every row; the
    translation is b.T.expand(16, 3), whose backward sums the rows as torch's broadcast does, so
    the gradients are torch's bit for bit, and the program is the one a student writes."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 5, dtype=torch.float64, generator=g)
    W = torch.randn(5, 3, dtype=torch.float64, generator=g)
    b = torch.randn(3, dtype=torch.float64, generator=g)
    Y = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).to(torch.float64)
    c = sg.trace(minibatch_cross_entropy_with_bias, W, b, X, Y).compare()
    assert c.ok and len(c.entries) == 15 + 3 + 80 + 48
    assert "broadcast = b_T.expand(16, 3)" in c.lowered.source
    assert "log_softmax = torch.log_softmax(X_at_W_plus_broadcast, 1)" in c.lowered.source
    assert _by_input(c, "WbXY") == _torch_grads(minibatch_cross_entropy_with_bias, W, b, X, Y)
    # A (16, 1) column scales each row: c.expand(16, 5); its gradient is each row's sum of X.
    X2, col = torch.randn(16, 5, dtype=torch.float64, generator=g), torch.randn(16, 1, dtype=torch.float64, generator=g)
    c2 = sg.trace(scaled_rows, X2, col).compare()
    assert c2.ok and "c.expand(16, 5)" in c2.lowered.source
    assert _by_input(c2, "Xc") == _torch_grads(scaled_rows, X2, col)


def broadcast_mismatch(X, V):  # type: ignore[no-untyped-def]
    return (X + V).sum()


def test_shapes_torch_cannot_broadcast_are_a_sentence() -> None:
    with pytest.raises(sg.TraceError, match=r"Broadcasting a \(4, 2\) tensor against a \(3, 2\) one is not supported"):
        sg.trace(broadcast_mismatch, torch.ones(4, 2, dtype=torch.float64), torch.ones(3, 2, dtype=torch.float64))


def test_softmax_along_dim_0_is_one_softmax_per_column() -> None:
    V = torch.tensor([[1.0, -2.0, 0.75], [3.0, 0.5, -0.75]], dtype=torch.float64)
    w = torch.tensor([[0.5, 2.0, -1.0], [1.5, -3.0, 0.25]], dtype=torch.float64)
    c = sg.trace(softmax_per_column, V, w).compare()
    assert c.ok and "torch.softmax(V, 0)" in c.lowered.source
    assert _by_input(c, "Vw") == _torch_grads(softmax_per_column, V, w)
    s = torch.softmax(V, 0)
    assert float(c.value_exact) == pytest.approx(float((s * w).sum()), rel=1e-15)


def test_softmax_along_a_length_1_axis_is_one_per_element() -> None:
    """torch.softmax(v, dim=1) of a (3, 1) tensor: each row has one element, so every weight is
    1 and the gradient with respect to v is 0 (read over the whole column, it would not be)."""
    v = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    w = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64)
    c = sg.trace(softmax_of_one_element_rows, v, w).compare()
    assert c.ok and float(c.value_exact) == 1.5
    assert _by_input(c, "vw") == [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]] == _torch_grads(softmax_of_one_element_rows, v, w)


@pytest.mark.parametrize("fn, says", [
    (softmax_without_dim, "softmax of a matrix needs its dim"),
    (softmax_dim_out_of_range, "dim=2) is not supported"),
])
def test_softmax_of_a_matrix_without_a_usable_dim_is_a_sentence(fn: Any, says: str) -> None:
    V = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    with pytest.raises(sg.TraceError, match=re.escape(says)) as err:
        sg.trace(fn, V)
    assert "Fix:" in str(err.value)


def test_log_softmax_is_one_fused_call_over_the_vector() -> None:
    """torch.log_softmax(v, 0) is read as the vector of its components and lowered as one
    torch.log_softmax call (n calls, one per component, would round differently from the user's
    code). A cross-entropy at (1000, 0, 3) with the one-hot target t of class 1: its gradient
    with respect to v is softmax(v) - t, and with respect to t it is -log_softmax(v)."""
    c = sg.trace(fused_log_softmax, [1000.0, 0.0, 3.0], [0.0, 1.0, 0.0]).compare()
    assert c.ok
    by_name = {str(e.wrt): e.grad_autograd for e in c.entries}
    assert [by_name[f"v[{i}, 0]"] for i in range(3)] == [1.0, -1.0, 0.0]
    assert [by_name[f"t[{i}, 0]"] for i in range(3)] == [-0.0, 1000.0, 997.0]
    assert c.lowered.source.count("torch.log_softmax(") == 1
    assert float(c.value_exact) == 1000.0


def test_softmax_weights_read_back_bit_for_bit() -> None:
    """(softmax(v) * w).sum(): the translation reproduces the user's gradient exactly (the
    fidelity check), and the three sides agree."""
    c = sg.trace(fused_softmax_weighted, [1.0, 2.0, 3.0], [0.5, 0.25, 2.0]).compare()
    assert c.ok and c.lowered.source.count("torch.softmax(") == 1
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.5, 0.25, 2.0], dtype=torch.float64, requires_grad=True)
    fused_softmax_weighted(v, w).backward()
    by_name = {str(e.wrt): e.grad_autograd for e in c.entries}
    assert [by_name[f"v[{i}, 0]"] for i in range(3)] == v.grad.tolist()
    assert [by_name[f"w[{i}, 0]"] for i in range(3)] == w.grad.tolist()


def test_softplus_is_torchs_kernel_with_its_threshold() -> None:
    """F.softplus(x) - x at 25: torch returns x itself above 20, so the program is exactly 0
    (slope 0) while the mathematics, log(1 + exp(x)) - x, has slope sigmoid(25) - 1."""
    (e,) = sg.trace(fused_softplus_minus_x, 25.0).compare().entries
    assert e.cause is sg.Cause.CONTROL_FLOW
    assert e.grad_executed == 0 and e.grad_autograd == 0.0
    assert abs(float(e.grad_symbolic) - (-math.exp(-25) / (1 + math.exp(-25)))) < 1e-25
    assert "threshold" in e.explanation and "softplus(-x)" in e.hint


def test_logaddexp_is_torchs_own_kernel() -> None:
    c = sg.trace(fused_logaddexp, 1000.0, 0.0).compare()
    assert c.ok and [e.grad_autograd for e in c.entries] == [1.0, 0.0]
    assert "torch.logaddexp(a, b)" in c.lowered.source


def test_softplus_with_other_parameters_is_torchs_kernel_with_them() -> None:
    """(It was refused; issue 20 reads it:) log(1 + exp(2x))/2, slope sigmoid(2x) = 1/(1 + exp(-2)) at 1."""
    c = sg.trace(softplus_beta, 1.0).compare()
    (e,) = c.entries
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(softplus_beta(x), x)
    assert c.ok and e.grad_autograd == float(g) == pytest.approx(1 / (1 + math.exp(-2.0)), rel=1e-15)
    assert "torch.nn.functional.softplus(x, beta=2.0, threshold=20.0)" in c.lowered.source


def test_if_on_its_threshold_is_control_flow() -> None:
    (e,) = sg.trace(branch, 0.0).compare().entries
    assert e.cause is sg.Cause.CONTROL_FLOW
    assert e.one_sided == (-1, 0) and e.grad_autograd == -1.0
    assert str(e.source) == line_of(branch, "if x > 0")


def test_quadratic_loss_agrees() -> None:
    c = sg.trace(quadratic_loss, [[1.0, 2.0], [3.0, 4.0]], [[1.0], [-1.0]], [[0.0], [1.0]]).compare(wrt=["w"])
    assert c.cause is sg.Cause.AGREE
    assert [e.grad_symbolic for e in c.entries] == [-7, -10]
    assert [e.grad_autograd for e in c.entries] == [-7.0, -10.0]


def test_an_exec_function_is_compared_in_path_mode_and_says_so() -> None:
    ns: dict[str, Any] = {"torch": torch}
    exec("def f(x):\n    return x * (x**2).detach()\n", ns)
    t = sg.trace(ns["f"], 3.0)
    assert t.mode == "path" and t.program is None and t.fidelity.ok
    assert "cannot be read" in t.reason and "exec" in t.reason
    (e,) = t.compare().entries
    assert e.cause is sg.Cause.DETACH
    assert (e.grad_symbolic, e.grad_executed, e.grad_autograd) == (27, 9, 9.0)
    assert "Path mode" in e.explanation and e.source.line == 2


def test_path_mode_records_item_and_no_grad() -> None:
    ns: dict[str, Any] = {"torch": torch}
    exec("def g(x):\n    s = x.item()\n    with torch.no_grad():\n        y = x * 3\n    return x * s + x * y\n", ns)
    t = sg.trace(ns["g"], 0.7)
    assert t.mode == "path"
    (e,) = t.compare().entries
    assert e.cause is sg.Cause.GRAPH_BREAK
    assert e.grad_autograd == pytest.approx(0.7 + 2.1)


# ---------------------------------------------------------------- the API


def test_traced_record() -> None:
    t = sg.trace(d2l, 1.5409961082440433)
    assert t.mode == "source" and t.fidelity.ok
    assert isinstance(t.program, sg.Program)
    assert all(isinstance(s, sg.SourceSpan) for s in t.origins.values())
    with pytest.raises(AttributeError):
        t.mode = "path"  # type: ignore[misc]


def test_compare_takes_a_tuple_in_parameter_order() -> None:
    assert sg.compare(with_detach, at=(3.0,)).cause is sg.Cause.DETACH
    assert sg.compare(with_detach, at={"x": 3.0}).cause is sg.Cause.DETACH


def test_traced_compare_at_another_point() -> None:
    t = sg.trace(d2l, 1.5409961082440433)
    assert t.compare(at={"a": 0.48828125}).cause is sg.Cause.CONTROL_FLOW


def test_a_lambda() -> None:
    f = lambda x: x * (x**2).detach()  # noqa: E731
    assert sg.trace(f, 3.0).compare().cause is sg.Cause.DETACH


def test_constants_from_globals_and_closures() -> None:
    scale = 3.0

    def f(x):
        return torch.sin(x) * scale + math.pi

    c = sg.trace(f, 0.5).compare()
    assert c.cause is sg.Cause.AGREE
    assert c.entries[0].grad_autograd == pytest.approx(3 * math.cos(0.5))


def test_a_for_loop_and_augmented_assignment() -> None:
    def f(x):
        y = x * 1.0
        for i in range(3):
            y *= 2
        return y

    (e,) = sg.trace(f, 0.5).compare().entries
    assert e.ok and e.grad_symbolic == 8


def test_if_with_returns_in_both_branches() -> None:
    def f(x):
        if x > 0:
            return x * x
        return -x

    (e,) = sg.trace(f, 0.0).compare().entries
    assert e.cause is sg.Cause.CONTROL_FLOW and e.one_sided == (-1, 0)


def test_a_notebook_cell() -> None:
    filename = "<ipython-input-7-0123456789ab>"
    source = "def cell(x):\n    y = x * (x**2).detach()\n    return y\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        ns: dict[str, Any] = {"torch": torch}
        exec(compile(source, filename, "exec"), ns)
        (e,) = sg.trace(ns["cell"], 3.0).compare().entries
    finally:
        linecache.cache.pop(filename, None)
    assert e.cause is sg.Cause.DETACH
    assert e.source.file == filename and e.source.line == 2
    assert e.source.text == "y = x * (x**2).detach()"


def test_the_fidelity_check_fails_on_a_wrong_row(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tn.Spelling("torch.exp", "function", sp.exp, lambda a, k: sp.sin(a[0]))
    monkeypatch.setitem(tn.SPELLINGS, "torch.exp", wrong)

    def f(x):
        y = x * 2
        z = torch.exp(y)
        return z + x

    with pytest.raises(sg.TraceError, match="does not reproduce") as info:
        sg.trace(f, 0.5)
    fid = info.value.fidelity  # type: ignore[attr-defined]
    assert not fid.ok
    assert fid.first_difference is not None and fid.first_difference.text == "z = torch.exp(y)"
    assert "z = torch.exp(y)" in str(info.value)


def test_the_first_difference_is_found_by_line_and_in_the_return_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # the translation names its variables otherwise (`sqrt_total`, not `norm`): the line is found
    # by the user's line each generated value comes from, tensors included; a difference in the
    # return expression, after every assigned value agreed, names the return line
    wrong = tn.Spelling("torch.exp", "function", sp.exp, lambda a, k: a[0].applyfunc(sp.sin) if tn.is_matrix(a[0]) else sp.sin(a[0]))
    monkeypatch.setitem(tn.SPELLINGS, "torch.exp", wrong)

    def assigned(v):
        norm = torch.sqrt((v ** 2).sum())
        e = torch.exp(v / norm)
        return e.sum()

    def returned(v):
        norm = torch.sqrt((v ** 2).sum())
        return torch.exp(v / norm).sum()

    v = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    for fn, text in ((assigned, "e = torch.exp(v / norm)"), (returned, "return torch.exp(v / norm).sum()")):
        with pytest.raises(sg.TraceError, match="does not reproduce") as info:
            sg.trace(fn, v)
        fid = info.value.fidelity  # type: ignore[attr-defined]
        assert fid.first_difference is not None and fid.first_difference.text == text, fid.first_difference
        assert "the first value that differs is computed at" in str(info.value) and text in str(info.value)


# ---------------------------------------------------------------- unsupported constructs


def comprehension(x):
    return [x * k * j for k in range(3) for j in range(2)][1]


def in_place(x):
    x.mul_(2)
    return x


def with_try(x):
    try:
        y = x * 2
    except ValueError:
        y = x
    return y


def countdown(x, n=2):
    return x if n == 0 else countdown(x, n - 1) * 2


LAYER = torch.nn.Linear(1, 1)


def uses_module(x):
    return LAYER(x)


@pytest.mark.parametrize("fn, arg, words, line", [
    (comprehension, [1.0, 2.0], "a list comprehension with one `for", "return [x * k * j for k in range(3) for j in range(2)][1]"),
    (in_place, 1.0, "leaf Variable that requires grad is being used in an in-place operation", "x.mul_(2)"),
    (with_try, 1.0, "`try`", "    try:"),
    (countdown, 1.0, "(recursion: countdown -> countdown)", "return x if n == 0 else countdown(x, n - 1) * 2"),
    (uses_module, 1.0, "torch.nn.Module", "return LAYER(x)"),
], ids=lambda v: getattr(v, "__name__", None))
def test_unsupported_constructs_get_one_sentence_naming_the_line(fn: Any, arg: Any, words: str, line: str) -> None:
    """Refused with a sentence, or (where a recorded run reproduces the function) compared in
    path mode, whose reason names the line."""
    try:
        t = sg.trace(fn, arg)
    except sg.TraceError as err:
        text = str(err)
        assert "Fix:" in text
    else:
        assert t.mode == "path"
        text = t.reason
        assert any("path mode" in n for n in t.notes)
    assert words in text
    assert line_of(fn, line) in text
    assert "Traceback" not in text


# ---------------------------------------------------------------- property: source equals SymPy

_UNARY = {"exp": (sp.exp, "torch.exp({})"), "sin": (sp.sin, "torch.sin({})"), "cos": (sp.cos, "{}.cos()"),
          "tanh": (sp.tanh, "torch.tanh({})"), "relu": (lambda u: sp.Max(u, 0), "torch.relu({})"),
          "abs": (sp.Abs, "{}.abs()"), "neg": (lambda u: -u, "-{}")}
_BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@st.composite
def _programs(draw: Any) -> tuple[str, sg.Program, float]:
    """A random torch function (its source) and the same function as a SymPy Program, one
    statement per operation."""
    x = sp.Symbol("x", real=True)
    names: list[tuple[str, sp.Basic]] = [("x", x)]
    lines, stmts = [], []
    for k in range(draw(st.integers(1, 4))):
        target = sp.Symbol(f"v{k}", real=True)
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(_UNARY)))
            src, sym = draw(st.sampled_from(names))
            fn, spelled = _UNARY[name]
            lines.append(f"    v{k} = {spelled.format(src)}")
            stmts.append(Assignment(target, fn(sym)))
        else:
            op = draw(st.sampled_from(sorted(_BINARY)))
            (sa, a), (sb, b) = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            const = draw(st.sampled_from([None, 2, 3]))
            if const is not None:
                sb, b = str(const), sp.Integer(const)
            if sa == sb:
                continue
            lines.append(f"    v{k} = {sa} {op} {sb}")
            stmts.append(Assignment(target, _BINARY[op](a, b)))
        names.append((f"v{k}", target))
    last_name, last = names[-1]
    if last == x:
        lines.append("    v9 = x * 2")
        stmts.append(Assignment(sp.Symbol("v9", real=True), 2 * x))
        last_name, last = "v9", sp.Symbol("v9", real=True)
    source = "def f(x):\n" + "\n".join(lines) + f"\n    return {last_name}\n"
    point = draw(st.sampled_from([0.0, 0.5, -1.25, 2.0, 3.0]))
    return source, sg.Program([x], CodeBlock(*stmts), last), point


_counter = itertools.count()


def _define(source: str) -> Any:
    filename = f"<symgrad-test-cell-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(source, filename, "exec"), ns)
    return ns["f"]


@settings(max_examples=25)
@given(case=_programs())
def test_a_torch_function_compares_like_the_same_sympy_program(case: tuple[str, sg.Program, float]) -> None:
    source, program, point = case
    traced = sg.trace(_define(source), point).compare()
    direct = sg.compare(program, at={"x": point})
    assert [(e.grad_symbolic, e.one_sided, e.grad_executed, e.cause) for e in traced.entries] == \
        [(e.grad_symbolic, e.one_sided, e.grad_executed, e.cause) for e in direct.entries], source
    for a, b in zip(traced.entries, direct.entries):
        assert (math.isnan(a.grad_autograd) and math.isnan(b.grad_autograd)) or a.grad_autograd == b.grad_autograd


# ---------------------------------------------------------------- the command line


def test_symgrad_check_prints_the_same_report(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from symgrad.show.cli import main

    path = tmp_path / "user_code.py"
    path.write_text("import torch\n\n\ndef f(a):\n    b = a * 2\n    while b.norm() < 1000:\n        b = b * 2\n"
                    "    c = b if b.sum() > 0 else 100 * b\n    return c\n")
    assert main(["check", f"{path}:f", "--at", "a=0.48828125"]) == 1  # control-flow: they disagree
    out = capsys.readouterr().out
    assert "control-flow" in out and "In your code: `user_code.py:6 while b.norm() < 1000:`" in out
    from symgrad.verdict.compare import title

    assert title(d2l) == f"d2l(a) from test_trace.py:{d2l.__code__.co_firstlineno}"
    assert out == str(sg.compare(d2l, at={"a": 0.48828125})).replace(
        line_of(d2l, "while b.norm()").split(" ", 1)[0], "user_code.py:6").replace(title(d2l), "f(a) from user_code.py:4")
    assert out.startswith("symgrad: f(a) from user_code.py:4 at a = 0.48828125")
    assert main(["check", f"{path}:g", "--at", "a=1"]) == 2
    assert "defines no function g" in capsys.readouterr().err


def test_traced_sweep() -> None:
    assert sg.trace(with_detach, 3.0).sweep({"x": (1.0, 2.0)}, n=5).counts == {"detach": 5}


def test_logsumexp_is_torchs_fused_op_not_its_parts() -> None:
    """The acceptance row: torch.logsumexp(v, 0) at (1000, 0) agrees, gradient (1, 0); written
    out as log(exp(v).sum()) it overflows (test_log_of_a_sum_of_exps_overflows_at_the_exp)."""
    c = sg.trace(fused_logsumexp, [1000.0, 0.0]).compare()
    assert c.ok
    assert [e.grad_autograd for e in c.entries] == [1.0, 0.0]
    assert float(c.entries[0].grad_executed) == 1.0 and c.entries[1].grad_executed < sp.Float("1e-400")
    assert "torch.logsumexp(" in c.lowered.source


def _weights_then_bias(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (w * w).sum() + 3 * b.sum()


def test_a_function_of_tensors_lists_entries_in_declared_order() -> None:
    """DESIGN.md section 6: entries in the declared order for a program; a function of tensors
    reads back as a bare expression, and its entries still follow its parameters (w before b)."""
    c = sg.compare(_weights_then_bias, at={"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])})
    assert [str(e.wrt) for e in c.entries] == ["w[0, 0]", "w[1, 0]", "b[0, 0]"]
    assert [float(e.grad_executed) for e in c.entries] == [2.0, 4.0, 3.0]


def ignores_a_matrix(V, w):  # type: ignore[no-untyped-def]
    return (w * 2).sum()


def test_a_tensor_that_does_not_reach_the_output_has_gradient_zero() -> None:
    """A 2x2 input the function never reads stays a 2x2 input (it was read as a scalar symbol,
    and the point's matrix value was refused): its four entries have derivative 0, as in torch,
    where its .grad stays None."""
    c = sg.trace(ignores_a_matrix, torch.ones(2, 2, dtype=torch.float64), [3.0, 4.0]).compare()
    assert c.ok
    assert [(str(e.wrt), e.grad_autograd) for e in c.entries] == [
        ("V[0, 0]", 0.0), ("V[0, 1]", 0.0), ("V[1, 0]", 0.0), ("V[1, 1]", 0.0), ("w[0, 0]", 2.0), ("w[1, 0]", 2.0)]
    assert all(float(e.grad_executed) == float(e.grad_symbolic) == e.grad_autograd for e in c.entries)


def weighted_total(V, w):  # type: ignore[no-untyped-def]
    return (V * w).sum() + V.mean()


def test_sum_of_a_tensor_is_torchs_own_reduction() -> None:
    """.sum() and .mean() read as the sum of every element lower to `.sum()`, which rounds as
    the user's code does: ones @ M @ ones (how they were lowered before) rounds a sum of many
    terms in another order, and the bit-for-bit check refused the translation."""
    g = torch.Generator().manual_seed(3)
    V = torch.randn(16, 10, dtype=torch.float64, generator=g)
    w = torch.randn(16, 10, dtype=torch.float64, generator=g)
    traced = sg.trace(weighted_total, V, w)
    assert traced.fidelity.ok
    c = traced.compare()
    code = [line for line in c.lowered.source.split("def f")[1].splitlines() if not line.strip().startswith("#")]
    assert c.ok and sum(line.endswith(".sum()") for line in code) == 2 and "torch.ones(" not in c.lowered.source
    assert float(c.value_autograd) == float(weighted_total(V, w))
    assert _by_input(c, "Vw") == _torch_grads(weighted_total, V, w)


def test_a_traced_report_names_the_function_and_the_shape_of_a_large_input() -> None:
    """The headline of a traced function is its name, parameters and where it is defined (not
    its translation, hundreds of nodes long); a matrix of more than 12 elements is named by its
    shape (`c.point` holds its values), a small one is written out."""
    X = torch.arange(80, dtype=torch.float64).reshape(16, 5) / 80
    c = sg.trace(scaled_rows, X, torch.full((16, 1), 0.5, dtype=torch.float64)).compare()
    head = str(c).splitlines()[0]
    line = scaled_rows.__code__.co_firstlineno
    assert head == (f"symgrad: scaled_rows(X, c) from test_trace.py:{line} at X = (16x5 matrix), "
                    "c = (16x1 matrix)  (float64, branches=\"if\")")
    assert float(c.point[sp.MatrixSymbol("X", 16, 5)][3, 2]) == 17 / 80
    small = sg.trace(ignores_a_matrix, torch.ones(2, 2, dtype=torch.float64), [3.0, 4.0]).compare()
    assert "V = [1.0, 1.0; 1.0, 1.0], w = [3.0, 4.0]" in str(small).splitlines()[0]
    assert repr(c).startswith("<Comparison of 'scaled_rows(X, c) from test_trace.py:")


def d2l_softmax_regression(W, b, X, Y):  # type: ignore[no-untyped-def]
    O = X @ W + b
    O_exp = torch.exp(O)  # D2L's softmax, inlined (trace reads one function)
    partition = O_exp.sum(1, keepdim=True)
    y_hat = O_exp / partition  # the broadcasting mechanism is applied here
    return -(Y * torch.log(y_hat)).sum(1).mean()


def column_statistics(X):  # type: ignore[no-untyped-def]
    return (X.mean(0) ** 2).sum() + X.sum(dim=0, keepdim=True).sum() + X.mean(dim=1).sum() / 3


def test_d2ls_softmax_from_scratch_traces_and_overflows_where_the_chapter_says() -> None:
    """D2L's softmax from scratch: exp, the sum of each row (keepdim=True), a broadcast division,
    a cross-entropy averaged over the batch. Read back bit for bit (each sum is torch's own
    reduction), it agrees at ordinary weights; with weights 1000 times larger exp overflows, and
    compare says overflow, with autograd still exactly torch's (nan)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, dtype=torch.float64, generator=g)
    W = torch.randn(3, 2, dtype=torch.float64, generator=g)
    b = torch.zeros(2, dtype=torch.float64)
    Y = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.float64)
    c = sg.trace(d2l_softmax_regression, W, b, X, Y).compare()
    assert c.ok
    body = c.lowered.source.split("def f")[1]
    assert ".sum(1, keepdim=True)" in body and ".expand(4, 2)" in body and " / " in body
    assert _by_input(c, "WbXY") == _torch_grads(d2l_softmax_regression, W, b, X, Y)
    big = sg.trace(d2l_softmax_regression, 1000 * W, b, X, Y).compare()
    assert big.cause.id == "overflow"
    torch_big = _torch_grads(d2l_softmax_regression, 1000 * W, b, X, Y)
    assert [math.isnan(v) for v in _by_input(big, "W")[0]] == [math.isnan(v) for v in torch_big[0]]
    assert any(math.isnan(v) for v in torch_big[0])


def test_sums_and_means_along_a_dim_are_torchs_own() -> None:
    X = torch.tensor([[0.1, 0.2, 0.7], [1.0, -3.0, 0.3], [2.5, 0.5, -0.1]], dtype=torch.float64)
    c = sg.trace(column_statistics, X).compare()
    assert c.ok and float(c.value_autograd) == float(column_statistics(X))
    body = c.lowered.source.split("def f")[1]
    assert ".sum(0, keepdim=True)" in body and " / 3" in body
    assert _by_input(c, "X") == _torch_grads(column_statistics, X)


def sum_over_two_dims(X):  # type: ignore[no-untyped-def]
    return X.sum(dim=(0, 1))


def sum_over_dim_2(X):  # type: ignore[no-untyped-def]
    return X.sum(2).sum()


def test_a_sum_over_a_dim_torch_does_not_have_is_a_sentence() -> None:
    with pytest.raises(sg.TraceError, match=re.escape("dim 2 is out of range for a tensor of rank 2")) as err:
        sg.trace(sum_over_dim_2, torch.ones(2, 3, dtype=torch.float64))
    assert "Fix:" in str(err.value)


def test_a_sum_over_both_dims_is_the_whole_sum() -> None:
    """`X.sum(dim=(0, 1))` is read (it was refused before the keepdim task): the sum of every element."""
    c = sg.compare(sum_over_two_dims, at={"X": torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]], dtype=torch.float64)})
    assert c.cause.id == "agree" and [e.grad_executed for e in c.entries] == [1] * 6


def test_a_loop_that_never_ends_at_the_example_point_is_a_loop_limit_error() -> None:
    """D2L's loop at a = 0 doubles 0 forever: trace says so (LoopLimitError, in well under a
    second) before it would run your function, whose loop would never stop; compare(fn, ...,
    max_iterations=N) traces under N."""
    with pytest.raises(sg.LoopLimitError, match=r"`d2l` at a = 0.0, as symgrad read it from the source, does not end") as err:
        sg.trace(d2l, 0.0)
    assert "can never become false" in str(err.value) and str(err.value).count("See docs/errors.md") == 1
    with pytest.raises(sg.LoopLimitError, match="max_iterations=50"):
        sg.compare(d2l, at={"a": 0.0}, max_iterations=50)
    assert sg.compare(d2l, at={"a": 0.3}).ok


def square_cross_entropy(X, W, b):  # type: ignore[no-untyped-def]
    return -torch.log(torch.softmax(X @ W + b, dim=1)).sum()


def residual_pitfall(X, w, y):  # type: ignore[no-untyped-def]
    return ((X @ w - y) ** 2).sum()


def twice_dot(x):  # type: ignore[no-untyped-def]
    return 2 * torch.dot(x, x) + x @ x


def row_times_matrix(v, M):  # type: ignore[no-untyped-def]
    return (v @ M).sum()


X33 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)


@pytest.mark.parametrize("fn, args", [
    # X @ W is 3x3, as many rows as b has elements: torch still adds the rank-1 b to every row
    (square_cross_entropy, (X33, torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=torch.float64),
                            torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))),
    # rank-1 w and y: X @ w is rank-1 too, and the residual is elementwise
    (residual_pitfall, (X33, torch.tensor([1.0, -1.0], dtype=torch.float64), torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))),
    (twice_dot, (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),)),
    (row_times_matrix, (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), X33)),
])
def test_rank_1_tensors_broadcast_and_multiply_as_torch_does(fn: Any, args: tuple[torch.Tensor, ...]) -> None:
    c = sg.trace(fn, *args).compare()
    assert c.ok
    expected = [v for g in _torch_grads(fn, *args) for v in g]
    assert [e.grad_autograd for e in c.entries] == expected


def test_a_column_minus_a_rank_1_tensor_is_d2ls_broadcasting_pitfall() -> None:
    """X @ w with a (2, 1) w is a (3, 1) column; minus a rank-1 y of length 3, torch makes a
    (3, 3) matrix of every prediction minus every target. trace says so and how to fix it."""
    w = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    with pytest.raises(sg.TraceError, match=r"a \(3, 1\) column meets a rank-1 tensor of length 3: torch broadcasts "
                                            r"the two into a \(3, 3\) matrix") as err:
        sg.trace(residual_pitfall, X33, w, y)
    assert "y.reshape(-1, 1)" in str(err.value) and "test_trace.py" in str(err.value)
    assert residual_pitfall(X33, w, y).item() == 42.0  # what torch computes: the (3, 3) matrix's loss
    fixed = sg.trace(residual_pitfall, X33, w, y.reshape(-1, 1)).compare()
    assert fixed.ok and float(fixed.value_exact) == 14  # the loss meant: (-2)**2 + (-1)**2 + (-3)**2


def builtin_abs(x):  # type: ignore[no-untyped-def]
    return abs(x) * 2


def python_max_times_two(x, y):  # type: ignore[no-untyped-def]
    return max(x, y) * 2  # Python's max: a comparison in Python (control flow), read from source


def _doubled(x):  # type: ignore[no-untyped-def]
    try:  # a `try` the source reader refuses, even in a helper it inlines
        return x * 2
    except ValueError:
        return x


def calls_a_helper(x, y):  # type: ignore[no-untyped-def]
    return _doubled(x) * y  # the helper's `try` is refused by the source reader, so trace records a run


def test_a_sweep_of_a_function_read_in_path_mode_is_a_sentence() -> None:
    traced = sg.trace(calls_a_helper, 1.0, 2.0)
    assert traced.mode == "path"
    with pytest.raises(sg.OptionError, match="was read in path mode") as err:
        traced.sweep({"x": (-1.0, 1.0), "y": 2.0}, n=5)
    assert "Fix: compare it point by point" in str(err.value)
    assert [e.grad_autograd for e in sg.compare(python_max_times_two, at={"x": 1.0, "y": 2.0}).entries] == [0.0, 2.0]


def clamped(x):  # type: ignore[no-untyped-def]
    y = x * 2
    return torch.clamp(y, min=-1.0, max=1.0) + y


@pytest.mark.parametrize("at", [-0.5, 0.5])
def test_both_corners_of_a_clamp_cite_the_clamps_line(at: float) -> None:
    """torch.clamp(y, min, max) is a clamp of a clamp; the inner one, on its corner at y = -1,
    cited the line before (`y = x * 2`), which made its argument."""
    e = sg.trace(clamped, at).compare().entries[0]
    assert e.cause.id == "kink"
    assert str(e.source).endswith("return torch.clamp(y, min=-1.0, max=1.0) + y")
    assert e.source.line == clamped.__code__.co_firstlineno + 2


def python_max(x, y):  # type: ignore[no-untyped-def]
    return max(x, y)


def test_python_max_is_control_flow_exactly_on_its_threshold() -> None:
    """Python's max(x, y) asks `y > x` in Python (issue 22: it was refused by the source reader,
    and the recorded run refused the tie). It is read from source as that `if`: at x = y the
    branch that ran (x, the first) is not the function's derivative, a control-flow finding for
    both entries; off the tie it agrees with torch."""
    c = sg.trace(python_max, 1.0, 1.0).compare()
    assert [e.cause for e in c.entries] == [sg.Cause.CONTROL_FLOW] * 2
    assert [e.grad_autograd for e in c.entries] == [1.0, 0.0]  # Python's max keeps the first of equals
    traced = sg.trace(python_max, 1.0, 2.0)
    c = traced.compare()
    assert traced.mode == "source" and c.ok and [e.grad_autograd for e in c.entries] == [0.0, 1.0]


def masked_by_a_comparison(x):  # type: ignore[no-untyped-def]
    return x * (x > 0)


def test_a_comparison_used_as_a_number_is_a_step() -> None:
    """x * (x > 0) runs in torch (the bool is 0 or 1). It was a sentence; it is read as the step it
    is (issue 22, item 3): torch's where, no Python branch. Beside 0 it agrees; at 0 the product
    is continuous with slopes 0 and 1, a kink, torch's gradient 0 (the mask is 0 there)."""
    c = sg.trace(masked_by_a_comparison, 1.0).compare()
    assert c.ok and [e.grad_autograd for e in c.entries] == [1.0]
    (e,) = sg.trace(masked_by_a_comparison, 0.0).compare().entries
    assert e.cause is sg.Cause.KINK and e.grad_autograd == 0.0
    assert tuple(float(v) for v in e.one_sided) == (0.0, 1.0)
    assert masked_by_a_comparison(torch.tensor(2.0)).item() == 2.0  # it is valid torch


def test_log_softmax_below_the_rounding_of_its_logits_is_explained_as_such() -> None:
    """At logits of thousands, log_softmax of the largest is about -e^-1000, which torch's kernel
    rounds to 0 (the log of 1 plus a tiny sum): autograd's d/dY is then 0 against the exact tiny
    value. The explanation names that, not an accumulation over the program; the gradient with
    respect to the weights agrees."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 5, dtype=torch.float64, generator=g)
    W = 1000 * torch.randn(5, 3, dtype=torch.float64, generator=g)
    b = torch.zeros(3, dtype=torch.float64)
    Y = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).to(torch.float64)
    traced = sg.trace(minibatch_cross_entropy_with_bias, W, b, X, Y)
    c = traced.compare()
    bad = [e for e in c.entries if not e.ok]
    assert bad and all(e.cause.id == "rounding" for e in bad)
    assert all("far below the rounding of its inputs" in e.explanation and "The log_softmax on line" in e.explanation
               for e in bad)
    assert [e.grad_autograd for e in c.entries] == [v for g_ in _torch_grads(minibatch_cross_entropy_with_bias, W, b, X, Y) for v in g_]
    assert traced.compare(wrt=list(traced.inputs[:2])).ok


def test_pythons_abs_of_a_tensor_is_read_as_torch_abs() -> None:
    """abs(x) calls Tensor.__abs__, which is torch.abs: the source is read (it fell back to path
    mode), so a sweep works and the kink at 0 is found."""
    traced = sg.trace(builtin_abs, 1.0)
    assert traced.mode == "source" and "torch.abs(x)" in sg.lower(traced.program).source
    assert traced.sweep({"x": (-1.0, 1.0)}, n=5).counts == {"agree": 4, "kink": 1}
    e = sg.compare(builtin_abs, at={"x": 0.0}).entries[0]
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    builtin_abs(t).backward()
    assert e.cause.id == "kink" and e.grad_autograd == t.grad.item() == 0.0


# ---------------------------------------------------------------- example values that are no point (issue 21, item 14)


def _sum_of_squares(x):  # type: ignore[no-untyped-def]
    return (x * x).sum()


@pytest.mark.parametrize("value, first", [
    (torch.empty(3, device="meta"), "The example value for `x` is a tensor on the meta device"),
    ([[1.0, 2.0], [3.0]], "The example value for `x` is not a rectangular array of real numbers"),
    (torch.zeros(0, dtype=torch.float64), "The example value for `x` is empty (shape (0,))"),
    (torch.tensor([1.0, float("nan")], dtype=torch.float64), "The example value for `x` holds nan at index (1,)"),
    (torch.tensor([[1.0, 2.0], [float("-inf"), 0.0]]), "The example value for `x` holds -inf at index (1, 0)"),
    (float("nan"), "The example value for `x` holds nan, which is not a finite number"),
    (torch.tensor([1j]), "The example value for `x` is a complex tensor (torch.complex64)"),
], ids=["meta", "ragged", "empty", "nan-in-vector", "inf-in-matrix", "nan", "complex"])
def test_an_example_value_that_is_no_point_is_a_sentence(value: Any, first: str) -> None:
    for call in (lambda: sg.trace(_sum_of_squares, value), lambda: sg.compare(_sum_of_squares, at={"x": value})):
        with pytest.raises(sg.PointError) as info:
            call()
        text = str(info.value)
        assert text.startswith(first), text
        assert "\nFix: " in text and text.endswith("See docs/errors.md#pointerror")


# ---------------------------------------------------------------- every part of a condition is read (issue 21, item 1)


def _doubling_with_a_counter(x):  # type: ignore[no-untyped-def]
    v = x
    k = 0
    while v < 100.0 and k < 3:
        v = v * 2
        k += 1
    return v


def _abs_doubling_with_a_counter(x):  # type: ignore[no-untyped-def]
    v = x
    k = 0
    while torch.abs(v) < 10.0 and k < 3:
        v = v * 2
        k += 1
    return v


def _torch_grad(fn: Any, at: float) -> float:
    a = torch.tensor(at, dtype=torch.float64, requires_grad=True)
    fn(a).backward()
    return float(a.grad)


@pytest.mark.parametrize("fn, at", [
    (_doubling_with_a_counter, 30.0),   # the tensor test ends the loop (after 2 doublings)
    (_doubling_with_a_counter, 1.0),    # the counter ends it (3 doublings)
    (_doubling_with_a_counter, 500.0),  # never enters
    (_abs_doubling_with_a_counter, 0.3),
    (_abs_doubling_with_a_counter, -4.0),
])
def test_a_python_counter_in_a_loop_condition_is_kept(fn: Any, at: float) -> None:
    traced = sg.trace(fn, at)
    assert traced.mode == "source"
    text = str(traced.program)
    assert "k < 3" in text and "k = k + 1" in text, text
    (entry,) = traced.compare().entries
    assert entry.grad_autograd == _torch_grad(fn, at)
    assert entry.grad_executed == sp.Rational(_torch_grad(fn, at))
    for other in (30.0, 1.0, 0.3, -4.0):  # the same translation is right elsewhere too
        (e,) = sg.compare(fn, at={"x": other}).entries
        assert e.grad_autograd == _torch_grad(fn, other)


# ---------------------------------------------------------------- checked where and in the dtype compared (issue 21, items 2-4)


def _variance(x):  # type: ignore[no-untyped-def]
    return (x * x).mean() - x.mean() ** 2


def test_a_float32_function_is_compared_in_float32_and_the_autograd_column_is_torchs() -> None:
    x32 = torch.tensor([1000.0, 1000.1, 1000.2, 999.9], dtype=torch.float32)
    a = x32.clone().requires_grad_(True)
    _variance(a).backward()  # the user's own float32 gradient, computed by torch
    c = sg.compare(_variance, at={"x": x32})
    assert c.dtype == "float32"
    assert [e.grad_autograd for e in c.entries] == a.grad.tolist()
    assert c.cause.id == "rounding"  # E[x^2] - E[x]^2 cancels in float32
    traced = sg.trace(_variance, x32)
    assert traced.dtype == "float32" and traced.compare().dtype == "float32"
    assert traced.compare(dtype="float64").dtype == "float64"  # read again, checked in float64
    assert sg.compare(_variance, at={"x": x32.double()}).dtype == "float64"
    assert sg.compare(_variance, at={"x": x32}, dtype="float64").dtype == "float64"


def test_the_test_helper_checks_float32_code_in_float32() -> None:
    from symgrad.testing import GradientMismatch, assert_grad_matches_math

    x32 = torch.tensor([1000.0, 1000.1, 1000.2, 999.9], dtype=torch.float32)
    with pytest.raises(GradientMismatch) as info:
        assert_grad_matches_math(_variance, x32)
    assert "(float32)" in str(info.value)
    assert assert_grad_matches_math(_variance, x32.double()).dtype == "float64"


def test_another_dtype_than_float64_or_float32_is_a_sentence() -> None:
    with pytest.raises(sg.OptionError, match="float16; symgrad compares gradients in float64 or float32"):
        sg.trace(_variance, torch.tensor([1.0, 2.0], dtype=torch.float16))


def _twice(x):  # type: ignore[no-untyped-def]
    return x * 4.0


def test_a_traced_function_compared_at_another_point_is_checked_there() -> None:
    """A translation is trusted only where its fidelity check ran: compared at another point, the
    function is read and checked again there (here a translation that is wrong at x = 1 is
    planted; the comparison at x = 1 must not use it)."""
    from dataclasses import replace

    from sympy.codegen.ast import Assignment, CodeBlock

    traced = sg.trace(_twice, 30.0)
    assert isinstance(traced.program, sg.Program)
    (x,), out = traced.program.inputs, traced.program.output
    wrong = replace(traced, program=sg.Program(inputs=[x], body=CodeBlock(Assignment(out, 128 * x)), output=out))
    (here,) = wrong.compare().entries                 # at the traced point: the planted program
    assert here.grad_autograd == 128.0
    (there,) = wrong.compare(at={"x": 1.0}).entries   # elsewhere: read and checked again
    assert there.grad_autograd == 4.0 and there.grad_executed == 4


def test_a_traced_sweep_runs_the_users_function_beside_the_translation() -> None:
    """Every point of a sweep with a finding, and a sample of the rest, is run through the user's
    function too; a translation that is wrong at a point of the sweep is a sentence naming it."""
    from dataclasses import replace

    from sympy.codegen.ast import Assignment, CodeBlock

    traced = sg.trace(_doubling_with_a_counter, 30.0)
    s = traced.sweep({"x": (-200.0, 200.0)}, n=501)
    assert s.checked_points == 201 and "201 points (every one with a finding" in str(s)
    assert s.counts == {"control-flow": 1, "agree": 500}
    (x,), out = traced.program.inputs, traced.program.output
    wrong = replace(traced, program=sg.Program(inputs=[x], body=CodeBlock(Assignment(out, 128 * x)), output=out))
    with pytest.raises(sg.TraceError) as info:
        wrong.sweep({"x": (-2.0, 2.0)}, n=5)
    text = str(info.value)
    assert text.startswith("The translation of `_doubling_with_a_counter` does not reproduce it at x = -2.0")
    assert "the value is -16.0 in your function but -256.0 in the translation" in text


def _smooth_where(x, y):  # type: ignore[no-untyped-def]
    return torch.where(x > 0.0, torch.sin(x) * y, x * x) + torch.relu(y - x)


def _with_item(x):  # type: ignore[no-untyped-def]
    return x * x.item() + torch.sin(x)


def test_a_traced_sweep_of_a_vectorisable_function_checks_every_point_in_one_batch() -> None:
    """A function with no Python control flow on tensor values runs on the whole batch beside the
    translation (torch.func.vmap), so every point of the sweep is checked, not a sample; the
    values are torch's own autograd of the user's function, point by point."""
    traced = sg.trace(_smooth_where, 0.5, 1.0)
    s = traced.sweep({"x": (-2.0, 2.0), "y": (-1.0, 1.5)}, n=41)
    n = len(s.points)
    assert n == 41 * 41 and s.checked_points == n and f"({n} points (every one) run through" in str(s)
    for i in (0, 7, n // 2, n - 1):  # the truth: torch itself at single points
        xt, yt = (torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in s.points[i])
        gx, gy = torch.autograd.grad(_smooth_where(xt, yt), [xt, yt])
        assert [float(gx), float(gy)] == [float(v) for v in s.grad_autograd[i]]


def test_a_batch_check_finds_a_wrong_translation_the_sample_would_miss() -> None:
    """A translation planted wrong on a narrow interval between the sampled points: the per-point
    check (flagged points and 200 evenly spaced ones) never runs there; the batched check runs every
    point and names the first one where the user's function differs."""
    from dataclasses import replace

    from sympy.codegen.ast import Assignment, CodeBlock

    traced = sg.trace(_twice, 1.0)
    (x,), out = traced.program.inputs, traced.program.output
    n = 5001
    xs = np.linspace(-1.0, 1.0, n)
    sampled = set(np.unique(np.linspace(0, n - 1, 200).round().astype(np.int64)).tolist())
    k = next(i for i in range(n // 2, n) if i not in sampled and i - 1 not in sampled and i + 1 not in sampled)
    lo, hi = (xs[k - 1] + xs[k]) / 2, (xs[k] + xs[k + 1]) / 2  # only xs[k] lies inside
    planted = sp.Piecewise((5 * x, sp.And(x > lo, x < hi)), (4 * x, True))
    wrong = replace(traced, program=sg.Program(inputs=[x], body=CodeBlock(Assignment(out, planted)), output=out))
    with pytest.raises(sg.TraceError) as info:
        wrong.sweep({"x": list(xs)})
    assert f"at x = {float(xs[k])!r}" in str(info.value)
    assert "in your function but" in str(info.value)
    assert wrong.sweep({"x": list(xs[:k])}).checked_points == k  # every point checked where it is right


@pytest.mark.parametrize("fn, at", [(_doubling_with_a_counter, 30.0), (_with_item, 0.5)])
def test_a_function_that_cannot_run_batched_is_checked_point_by_point(fn: Any, at: float) -> None:
    """Python control flow on a tensor value, or `.item()`: vmap refuses it, so the flagged points and
    a sample of the rest are run one by one, and the report says so."""
    traced = sg.trace(fn, at)
    if traced.mode != "source":
        pytest.skip("read in path mode: not swept")
    s = traced.sweep({"x": (-200.0, 200.0)}, n=501)
    assert s.checked_points <= 201 + int(np.sum(s.codes != 0)) and s.checked_points < len(s.points)
    assert "every one with a finding, and a sample of the rest" in str(s)


def _scaled_sum(A):  # type: ignore[no-untyped-def]
    M = (1.0 * A)
    return torch.sin((M.sum()))


def test_a_translation_sympy_cannot_print_is_a_sentence_not_a_traceback() -> None:
    """`(1.0 * A).sum()` (found by the random torch-source properties): SymPy raised TypeError
    ('GenericIdentity does not have a specified shape') while the translation was lowered. Either
    symgrad reads it and autograd is torch's, or it says so in a sentence; never a raw exception."""
    at = {"A": [[0.0, 0.5], [1.0, -2.0]]}
    try:
        c = sg.compare(_scaled_sum, at=at)
    except sg.SymgradError as err:
        assert "\nFix: " in str(err)
        return
    a = torch.tensor(at["A"], dtype=torch.float64, requires_grad=True)
    _scaled_sum(a).backward()
    assert [e.grad_autograd for e in c.entries] == a.grad.reshape(-1).tolist()
