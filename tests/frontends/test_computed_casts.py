"""`.float()`, `.double()`, `.to(dtype)`, `.type(dtype)` of a COMPUTED value are casts (read10, item 4).

torch rounds the value to the dtype named and runs every later op in it; its backward of a cast
is the cast back. The mathematics is the identity, and so is the exact executed path, so a
difference the cast makes is the dtype's `rounding`, found at the cast's line. Oracles: torch
itself (the user's code's forward and gradient, bit for bit, in float64 and float32) and
`sympy.diff` of the function without the cast, evaluated exactly at the point torch holds.
"""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import symgrad as sg


def by_float(x):
    y = torch.sin(x) * 3
    z = y.float()
    return (z * z).sum()


def by_to(x):
    y = torch.sin(x) * 3
    z = y.to(torch.float32)
    return (z * z).sum()


def by_to_keyword(x):
    y = torch.sin(x) * 3
    z = y.to(dtype=torch.float32)
    return (z * z).sum()


def by_type(x):
    y = torch.sin(x) * 3
    z = y.type(torch.float32)
    return (z * z).sum()


def scalar(x):
    y = torch.exp(x).float()
    return y * 0.1 + y ** 2


def back_to_run_dtype(x):
    z = (x * 3).float()
    w = torch.log(z + 1).to(x.dtype)  # x.dtype: the run's, float64 again after the float32 log
    return (w * w).sum()


def widened(x):
    y = (torch.sin(x) * 3).double()
    return (y * y).sum()


X = [0.1, 0.7, -1.3]


def _user(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out, [x])
    return out.detach(), g


def _exact_grads(math, x: torch.Tensor) -> list[sp.Rational]:
    """d math / d x_i by sympy.diff, at the binary values x holds, exactly."""
    syms = sp.symbols(f"x0:{x.numel()}", real=True)
    f = math(syms)
    at = {s: sp.Rational(float(v)) for s, v in zip(syms, x.reshape(-1).tolist())}
    return [sp.diff(f, s).subs(at).evalf(50) for s in syms]


def _sum_of_squares(syms):
    return sum((3 * sp.sin(s)) ** 2 for s in syms)


@pytest.mark.parametrize("fn", [by_float, by_to, by_to_keyword, by_type], ids=lambda f: f.__name__)
def test_a_computed_value_cast_to_float32_in_a_float64_run_is_torchs_cast(fn) -> None:
    x = torch.tensor(X, dtype=torch.float64)
    t = sg.trace(fn, x)
    assert t.mode == "source" and t.fidelity.ok
    value, grad = _user(fn, x)
    assert value.dtype == torch.float32 and grad.dtype == torch.float64  # the cast back
    # the translation is the user's code bit for bit: forward and gradient
    assert t.fidelity.value_translated == (value.item(),)
    assert t.fidelity.grad_translated == tuple(grad.tolist()) == t.fidelity.grad_user
    c = t.compare()
    want = _exact_grads(_sum_of_squares, x)
    for e, w, a in zip(c.entries, want, grad.tolist()):
        assert abs(sp.Rational(e.grad_symbolic) - w) < sp.Rational(1, 10**25)
        assert e.grad_symbolic == e.grad_executed  # the cast is the identity on the exact sides
        assert e.grad_autograd == a  # torch's own gradient, bit for bit
        assert e.cause is sg.Cause.ROUNDING  # float32's rounding, in a float64 comparison
    text = str(c)
    line = {by_float: "z = y.float()", by_to: "z = y.to(torch.float32)",
            by_to_keyword: "z = y.to(dtype=torch.float32)", by_type: "z = y.type(torch.float32)"}[fn]
    assert f"test_computed_casts.py" in text and line in text  # the user's line of the cast
    assert "casts a computed value to float32" in text and "every later op in float32" in text
    assert 'compare with dtype="float32"' in text  # the fix
    assert ".to(torch.float32)" in str(t.lowered.source) if hasattr(t, "lowered") else True


def test_the_same_function_in_a_float32_run_agrees() -> None:
    """In a float32 run `.float()` changes nothing: torch's values and symgrad's exact ones agree."""
    x = torch.tensor(X, dtype=torch.float32)
    t = sg.trace(by_float, x)
    value, grad = _user(by_float, x)
    assert t.fidelity.ok and t.fidelity.value_translated == (value.item(),)
    assert t.fidelity.grad_translated == tuple(grad.tolist())
    c = t.compare()
    assert c.ok, str(c)
    want = _exact_grads(_sum_of_squares, x)
    for e, w in zip(c.entries, want):
        assert abs(sp.Rational(e.grad_symbolic) - w) < sp.Rational(1, 10**25)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_a_scalar_cast_keeps_later_ops_in_float32(dtype) -> None:
    """`torch.exp(x).float() * 0.1 + y**2` of a 0-d tensor: torch's float32 arithmetic after the cast."""
    x = torch.tensor(0.3, dtype=dtype)
    t = sg.trace(scalar, x)
    value, grad = _user(scalar, x)
    assert value.dtype == torch.float32
    assert t.fidelity.ok and t.fidelity.value_translated == (value.item(),) and t.fidelity.grad_translated == (grad.item(),)
    c = t.compare()
    (e,) = c.entries
    s = sp.Symbol("s", real=True)
    # `0.1` is the double nearest 0.1, as the user's Python float is
    want = sp.diff(sp.exp(s) * sp.Rational(0.1) + sp.exp(2 * s), s).subs(s, sp.Rational(float(x))).evalf(50)
    assert abs(sp.Rational(e.grad_executed) - want) < sp.Rational(1, 10**25)
    assert e.grad_symbolic == e.grad_executed
    assert e.grad_autograd == grad.item()
    assert e.cause is (sg.Cause.ROUNDING if dtype == torch.float64 else sg.Cause.AGREE)


def test_to_x_dtype_after_a_cast_returns_to_the_run_dtype() -> None:
    """`.to(x.dtype)` of a float32 value in a float64 run is a cast back: later ops in float64 again."""
    x = torch.tensor(X[:2], dtype=torch.float64)
    t = sg.trace(back_to_run_dtype, x)
    value, grad = _user(back_to_run_dtype, x)
    assert value.dtype == torch.float64
    assert t.fidelity.ok and t.fidelity.value_translated == (value.item(),)
    assert t.fidelity.grad_translated == tuple(grad.tolist())
    c = t.compare()
    want = _exact_grads(lambda ss: sum(sp.log(3 * s + 1) ** 2 for s in ss), x)
    for e, w, a in zip(c.entries, want, grad.tolist()):
        assert abs(sp.Rational(e.grad_executed) - w) < sp.Rational(1, 10**25) and e.grad_autograd == a
        assert e.cause is sg.Cause.ROUNDING
    assert "z = (x * 3).float()" in str(c)  # the first narrowing cast is the line named


def test_double_in_a_float32_run_widens() -> None:
    """`.double()` of a float32 value: later ops in float64, gradient cast back to float32."""
    x = torch.tensor(X, dtype=torch.float32)
    t = sg.trace(widened, x)
    value, grad = _user(widened, x)
    assert value.dtype == torch.float64 and grad.dtype == torch.float32
    assert t.fidelity.ok and t.fidelity.value_translated == (value.item(),)
    assert t.fidelity.grad_translated == tuple(grad.tolist())
    c = t.compare()
    assert c.ok, str(c)
    want = _exact_grads(_sum_of_squares, x)
    for e, w, a in zip(c.entries, want, grad.tolist()):
        assert abs(sp.Rational(e.grad_symbolic) - w) < sp.Rational(1, 10**25) and e.grad_autograd == a


def test_a_mask_cast_stays_its_zeros_and_ones() -> None:
    """`(x > 0).float()`: a comparison, exact in any dtype, read as before (no cast node)."""
    def masked(x):
        return ((x > 0).float() * x).sum()

    t = sg.trace(masked, torch.tensor(X, dtype=torch.float64))
    assert t.fidelity.ok and "to_float32" not in sp.srepr(t.program)


def test_the_cast_rule_is_the_identity_to_sympy_diff() -> None:
    """The mathematics of a cast: d/dx to_float32(u) = du/dx, and the exact rule's value is u's."""
    from symgrad.program.primitives import strip, to_float32, to_float64
    from symgrad.program import exact as ex
    from symgrad.program.rules import exact_eval

    x = sp.Symbol("x", real=True)
    for cast in (to_float32, to_float64):
        e = cast(sp.sin(x) * x)
        assert sp.diff(e, x).subs(x, sp.Rational(1, 3)) == sp.diff(sp.sin(x) * x, x).subs(x, sp.Rational(1, 3))
        assert strip(e) == sp.sin(x) * x
        third = ex.Q(1, 3)
        assert exact_eval(cast(x ** 2), {x: third}) == exact_eval(x ** 2, {x: third}) == ex.Q(1, 9)


def test_a_sweep_sees_the_casts_rounding_at_every_point() -> None:
    """The sweep's float symbolic derivative treats the cast as the identity (the mathematics), so a
    float64 sweep of a function that casts to float32 is `rounding` at every point, never agree."""
    s = sg.sweep(scalar, over={"x": (-1.0, 1.0)}, n=5)
    assert s.counts.get("rounding") == 5 and not s.counts.get("agree"), s.counts


def test_second_derivatives_through_a_cast() -> None:
    """order=2: the cast is the identity of the exact path; torch's Hessian carries float32's rounding."""
    x = torch.tensor(0.3, dtype=torch.float64)
    c = sg.compare(scalar, at={"x": x}, order=2)
    (e,) = c.entries
    s = sp.Symbol("s", real=True)
    want = sp.diff(sp.exp(s) * sp.Rational(0.1) + sp.exp(2 * s), s, 2).subs(s, sp.Rational(float(x))).evalf(50)
    assert abs(sp.Rational(e.grad_executed) - want) < sp.Rational(1, 10**25)
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(scalar(leaf), leaf, create_graph=True)
    (h,) = torch.autograd.grad(g, leaf)
    assert e.grad_autograd == h.item() and e.cause is sg.Cause.ROUNDING
