"""The user's own torch.autograd.Function: "is my hand-written backward right?" (issue 22, item 7).

Each verdict is checked against its truths: the mathematics against `sympy.diff` of forward's
formula, the executed derivative against the user's backward formula evaluated in SymPy, and
autograd against torch's own run of the user's code, bit for bit (`reads_like_torch`)."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd.function import once_differentiable

import symgrad as sg
from symgrad import Cause
from symgrad.frontends import custom_function
from tests.user_code import reads_like_torch

X = sp.Symbol("x", real=True)


def _verdict(fn, x: float, math_expr: sp.Expr, backward_expr: sp.Expr) -> sg.Comparison:
    """fn at x: read from source with fidelity, autograd torch's bit for bit; the symbolic entry
    equals sympy.diff(math_expr) at x and the executed one backward_expr (the user's formula for
    grad_output = 1) at x, exactly to float64."""
    c = reads_like_torch(fn, [torch.tensor(x, dtype=torch.float64)])
    (e,) = c.entries
    want_sym = float(sp.diff(math_expr, X).subs(X, sp.Rational(x)).evalf(30))
    want_exe = float(backward_expr.subs(X, sp.Rational(x)).evalf(30))
    assert float(e.grad_symbolic) == pytest.approx(want_sym, rel=1e-15, abs=1e-300)
    assert float(e.grad_executed) == pytest.approx(want_exe, rel=1e-15, abs=1e-300)
    return c


# --------------------------------------------------------------------------- right backwards


class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * 3 * x ** 2


class Relu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * (x > 0)


def f_exp(x):
    return Exp.apply(x * 2) + x


def f_cube(x):
    return Cube.apply(x)


def f_relu(x):
    return Relu.apply(x)


@pytest.mark.parametrize("x", [0.5, -1.25])
def test_a_right_backward_agrees(x):
    c = _verdict(f_exp, x, sp.exp(2 * X) + X, 2 * sp.exp(2 * X) + 1)
    assert c.cause is Cause.AGREE
    c = _verdict(f_cube, x, X ** 3, 3 * X ** 2)
    assert c.cause is Cause.AGREE


@pytest.mark.parametrize("x", [0.75, -0.5])
def test_a_clamp_with_its_mask_agrees_off_its_corner(x):
    c = _verdict(f_relu, x, sp.Max(X, 0), sp.Heaviside(X, 0))
    assert c.cause is Cause.AGREE


def test_a_clamp_at_its_corner_is_a_kink_whatever_the_mask_picks():
    # At 0 the mathematics has no derivative (slopes 0 and 1): any value in [0, 1] is the
    # backward's to choose, so it is a kink, not a wrong backward; the user's mask picks 0.
    c = reads_like_torch(f_relu, [torch.tensor(0.0, dtype=torch.float64)])
    (e,) = c.entries
    assert e.cause is Cause.KINK
    assert float(e.grad_executed) == 0.0
    assert sorted(float(v) for v in e.one_sided) == [0.0, 1.0]
    # The slope at the corner is the user's backward's, not torch.clamp's convention (1): said so.
    assert "`Relu.backward` decides it, not torch's convention" in e.explanation
    assert "`grad_output * (x > 0)`" in e.explanation and "clamp counts its boundary" not in e.explanation
    assert e.hint.startswith("Any value between 0 and 1 is a valid subgradient here; the program takes the one "
                             "`Relu.backward` returns")


# --------------------------------------------------------------------------- wrong backwards


class SinFlipped(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return -grad_output * torch.cos(x)


class SquareHalf(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * x


class CosAsSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.cos(x)

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * torch.cos(x)


def f_sin(x):
    return SinFlipped.apply(x)


def f_square(x):
    return SquareHalf.apply(x) + 1


def f_cos(x):
    return CosAsSin.apply(x * 3)


@pytest.mark.parametrize("fn, math_expr, backward_expr, line", [
    (f_sin, sp.sin(X), -sp.cos(X), "return -grad_output * torch.cos(x)"),
    (f_square, X ** 2 + 1, X, "return grad_output * x"),
    (f_cos, sp.cos(3 * X), 3 * sp.cos(3 * X), "return grad_output * torch.cos(x)"),
])
def test_a_wrong_backward_is_a_custom_backward_finding(fn, math_expr, backward_expr, line):
    c = _verdict(fn, 0.5, math_expr, backward_expr)
    (e,) = c.entries
    assert e.cause is Cause.CUSTOM_BACKWARD
    assert c.cause is Cause.CUSTOM_BACKWARD
    # The explanation names the call, the element backward returns and its line in the user's file.
    name = fn.__code__.co_names[0]
    assert f"`{name}.backward` returns" in e.explanation
    assert "test_custom_function.py:" in e.explanation and line.removeprefix("return ") in e.explanation
    assert e.hint.startswith("Make the gradient")


# --------------------------------------------------------------------------- wrong only somewhere


class AbsSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * torch.sign(x)


class AbsMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * (x > 0)


def f_abs_sign(x):
    return AbsSign.apply(x)


def f_abs_mask(x):
    return AbsMask.apply(x)


@pytest.mark.parametrize("x", [1.5, -1.5])
def test_abs_with_sign_is_right_on_both_sides(x):
    assert _verdict(f_abs_sign, x, sp.Abs(X), sp.sign(X)).cause is Cause.AGREE


def test_abs_with_a_mask_is_wrong_left_of_zero_only():
    assert _verdict(f_abs_mask, 1.5, sp.Abs(X), sp.Heaviside(X, 0)).cause is Cause.AGREE
    c = _verdict(f_abs_mask, -1.5, sp.Abs(X), sp.Heaviside(X, 0))
    (e,) = c.entries
    assert e.cause is Cause.CUSTOM_BACKWARD
    assert float(e.grad_symbolic) == -1.0 and float(e.grad_executed) == 0.0 and e.grad_autograd == 0.0
    # At 0 both backwards pick a subgradient of the corner (0): a kink, as torch.abs itself.
    for fn in (f_abs_sign, f_abs_mask):
        (e,) = reads_like_torch(fn, [torch.tensor(0.0, dtype=torch.float64)]).entries
        assert e.cause is Cause.KINK and float(e.grad_executed) == 0.0


class CubeWrongAtZero(torch.autograd.Function):
    """Right everywhere except at 0, where forward is smooth: the finding is there and only there."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * (3 * x ** 2 + (x == 0))


def f_cube_wrong_at_zero(x):
    return CubeWrongAtZero.apply(x)


def test_a_backward_wrong_at_one_point_only():
    assert _verdict(f_cube_wrong_at_zero, 0.5, X ** 3, 3 * X ** 2).cause is Cause.AGREE
    c = _verdict(f_cube_wrong_at_zero, 0.0, X ** 3, sp.Integer(1))
    assert c.entries[0].cause is Cause.CUSTOM_BACKWARD


# --------------------------------------------------------------------------- the styles of Function


class ScaledNew(torch.autograd.Function):
    """New style: forward without ctx, setup_context; a number input with gradient None;
    an attribute on ctx; needs_input_grad."""

    @staticmethod
    def forward(x, k):
        return torch.sin(x) * k

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, k = inputs
        ctx.save_for_backward(x)
        ctx.k = k

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        grad_x = None
        if_needed = ctx.needs_input_grad[0]
        grad_x = grad_output * torch.cos(x) * ctx.k
        return grad_x, None


def f_scaled(x):
    return ScaledNew.apply(x, 2.5)


class TwoInputs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        return grad_output * b, grad_output * b  # the second should be grad_output * a


def f_two(a, b):
    return TwoInputs.apply(a, b)


def test_new_style_with_a_number_input_and_an_attribute_on_ctx():
    c = _verdict(f_scaled, 0.5, sp.sin(X) * sp.Rational(5, 2), sp.cos(X) * sp.Rational(5, 2))
    assert c.cause is Cause.AGREE


def test_two_inputs_each_gradient_judged_on_its_own():
    c = reads_like_torch(f_two, [torch.tensor(0.5, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)])
    a, b = c.entries
    assert a.cause is Cause.AGREE and float(a.grad_executed) == 3.0
    assert b.cause is Cause.CUSTOM_BACKWARD
    assert float(b.grad_symbolic) == 0.5 and float(b.grad_executed) == 3.0 and b.grad_autograd == 3.0
    assert "input 2" in b.explanation


# --------------------------------------------------------------------------- what is not read


class Branchy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        if x > 0:
            return grad_output
        return -grad_output


def f_branchy(x):
    return Branchy.apply(x)


def test_a_backward_with_control_flow_is_one_sentence_naming_its_line():
    with pytest.raises(sg.TraceError) as err:
        sg.trace(f_branchy, torch.tensor(0.5, dtype=torch.float64))
    text = str(err.value)
    assert "`backward` has an `if` here" in text
    assert f"test_custom_function.py:{Branchy.backward.__code__.co_firstlineno + 3} if x > 0:" in text


# --------------------------------------------------------------------------- second derivatives


def test_second_derivatives_through_a_hand_written_backward_are_a_sentence():
    """once_differentiable: torch's gradient through it is off the graph, so its second derivative
    raises in torch itself; a plain backward is read at first order only. Each is one sentence."""
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ScaledNew.apply(x, 2.5), x, create_graph=True)
    assert not g.requires_grad  # torch: no second derivative through a once_differentiable backward
    with pytest.raises(sg.UnsupportedNodeError, match=r"`ScaledNew.backward` is marked @once_differentiable"):
        sg.compare(f_scaled, at={"x": 0.5}, order=2)
    with pytest.raises(sg.UnsupportedNodeError, match=r"Second derivatives through `Cube.apply`"):
        sg.compare(f_cube, at={"x": 0.5}, order=2)


# --------------------------------------------------------------------------- the fidelity check


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().numpy().tobytes()


@pytest.mark.parametrize("fn, name", [(f_cos, "CosAsSin"), (f_scaled, "ScaledNew"), (f_abs_mask, "AbsMask"),
                                      (f_cube_wrong_at_zero, "CubeWrongAtZero")])
def test_the_fidelity_check_runs_backward_as_symgrad_read_it(fn, name):
    """In the fidelity check the generated program's class is symgrad's reading of it (the
    user's forward, backward as read, lowered to torch): its gradient is torch's run of the
    user's backward bit for bit; outside the check the program calls the user's class."""
    c = reads_like_torch(fn, [torch.tensor(-0.75, dtype=torch.float64)])
    ns = c.lowered.function.__globals__
    user_cls = ns[name]
    assert user_cls.__name__ == name and issubclass(user_cls, torch.autograd.Function)
    for v in (-0.75, 0.0, 0.3, 2.5):
        x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        (want,) = torch.autograd.grad(fn(x), x)
        with custom_function.reading_of_backward(ns):
            assert ns[name].__name__ == f"{name}_as_read"
            x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
            (got,) = torch.autograd.grad(c.lowered(x), x)
        assert _bits(got) == _bits(want), (v, got, want)
    assert ns[name] is user_cls


def test_a_reading_of_backward_that_runs_otherwise_fails_the_fidelity_check(monkeypatch):
    x = torch.tensor(0.5, dtype=torch.float64)
    assert sg.trace(f_exp, x).fidelity.ok
    # symgrad's reading replaced by another backward (its first gradient doubled): the check sees it.
    read = custom_function._MIRRORS["Exp"]

    class Doubled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return read.forward(ctx, x)

        @staticmethod
        def backward(ctx, g):
            return 2 * read.backward(ctx, g)[0]

    monkeypatch.setitem(custom_function._MIRRORS, "Exp", Doubled)
    with pytest.raises(sg.TraceError, match="does not reproduce it"):
        sg.trace(f_exp, x)


# --------------------------------------------------------------------------- tensors, element by element


def f_relu_sum(x):
    return (Relu.apply(x) * 3).sum()


def f_abs_mask_sum(x):
    return AbsMask.apply(x).sum()


def _elementwise_verdicts(fn, values, math_expr, backward_expr):
    """Each entry of fn at the matrix `values`: symbolic sympy.diff(math_expr) at the element (one
    sided at a corner), executed backward_expr at it, autograd torch's bit for bit."""
    c = reads_like_torch(fn, [torch.tensor(values, dtype=torch.float64)])
    flat = [v for row in values for v in row]
    assert len(c.entries) == len(flat)
    for e, v in zip(c.entries, flat):
        assert float(e.grad_executed) == float(backward_expr.subs(X, sp.Rational(v)))
        if v != 0:
            assert float(e.grad_symbolic) == float(sp.diff(math_expr, X).subs(X, sp.Rational(v)))
    return c, flat


def test_a_clamp_of_a_tensor_with_its_mask_agrees_element_by_element():
    c, flat = _elementwise_verdicts(f_relu_sum, [[0.5, -1.0], [0.0, 2.0]], 3 * sp.Max(X, 0), 3 * sp.Heaviside(X, 0))
    assert [e.cause for e in c.entries] == [Cause.AGREE, Cause.AGREE, Cause.KINK, Cause.AGREE]


def test_abs_of_a_tensor_with_a_mask_is_wrong_at_its_negative_elements_only():
    c, flat = _elementwise_verdicts(f_abs_mask_sum, [[0.5, -1.0], [0.0, 2.0]], sp.Abs(X), sp.Heaviside(X, 0))
    assert [e.cause for e in c.entries] == [Cause.AGREE, Cause.CUSTOM_BACKWARD, Cause.KINK, Cause.AGREE]
    wrong = c.entries[1]
    assert "is 0 here for grad_output = 1" in wrong.explanation and "mathematics is -1" in wrong.explanation
    assert "`AbsMask.apply(x)`" in wrong.explanation


class Total(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def f_total(x):
    return Total.apply(x)


def test_a_function_that_is_not_elementwise_is_a_sentence():
    with pytest.raises(sg.TraceError, match=r"`Total.forward` is not elementwise here"):
        sg.trace(f_total, torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_a_sweep_finds_where_a_backward_is_wrong():
    """The sweep flags by the float mathematics (forward's value differentiated), not by the
    user's backward run again: x < 0 is custom-backward, 0 a kink, x > 0 agrees."""
    t = sg.trace(f_abs_mask, torch.tensor(0.5, dtype=torch.float64))
    points = [-2.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.0]
    s = t.sweep({"x": points})
    assert list(s.causes) == ["custom-backward"] * 3 + ["kink"] + ["agree"] * 3
    assert "  custom-backward 3" in str(s)


class MulAdd(torch.autograd.Function):
    """As torch's own LinearFunction example writes backward: each gradient under
    `if ctx.needs_input_grad[k]:`, decided before backward runs."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return x * w + b

    @staticmethod
    def backward(ctx, grad_output):
        x, w = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output * w
        if ctx.needs_input_grad[1]:
            grad_w = grad_output * w  # should be grad_output * x
        if ctx.needs_input_grad[2]:
            grad_b = grad_output
        return grad_x, grad_w, grad_b


def f_muladd(x, w):
    return MulAdd.apply(x, w, 2.0)


def test_needs_input_grad_in_an_if_is_decided_while_reading():
    c = reads_like_torch(f_muladd, [torch.tensor(0.5, dtype=torch.float64), torch.tensor(-3.0, dtype=torch.float64)])
    x, w = c.entries
    assert x.cause is Cause.AGREE and float(x.grad_executed) == -3.0
    assert w.cause is Cause.CUSTOM_BACKWARD
    assert (float(w.grad_symbolic), float(w.grad_executed), w.grad_autograd) == (0.5, -3.0, -3.0)
    # The line that makes the returned gradient, not the `return` that hands it on.
    line = MulAdd.backward.__code__.co_firstlineno + 7
    assert f"for input 2, `grad_w = grad_output * w  # should be grad_output * x` (test_custom_function.py:{line})" in w.explanation


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=-4, max_value=4, allow_nan=False).filter(lambda v: v != 0))
def test_abs_with_a_mask_is_judged_by_the_side_of_zero(v):
    """At every x != 0: agree where x > 0, custom-backward where x < 0, with the mathematics
    sign(x), the executed side the mask's 0 or 1, autograd torch's bit for bit."""
    c = _verdict(f_abs_mask, v, sp.Abs(X), sp.Heaviside(X, 0))
    assert c.cause is (Cause.AGREE if v > 0 else Cause.CUSTOM_BACKWARD)


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=-3, max_value=3, allow_nan=False))
def test_a_right_backward_agrees_and_a_flipped_sign_is_found_everywhere(v):
    assert _verdict(f_cube, v, X ** 3, 3 * X ** 2).cause is Cause.AGREE
    assert _verdict(f_sin, v, sp.sin(X), -sp.cos(X)).cause is (
        Cause.AGREE if math.cos(v) == 0 else Cause.CUSTOM_BACKWARD)


def f_twice(x):
    return Exp.apply(x) * SinFlipped.apply(x) + Exp.apply(x * 3)


def test_two_functions_and_one_applied_twice_in_one_program():
    """Each call is its own fused step: forward's steps read into the program at each call, the
    right backward (Exp, twice) and the wrong one (SinFlipped) each evaluated at its own input."""
    c = _verdict(f_twice, 0.5, sp.exp(X) * sp.sin(X) + sp.exp(3 * X),
                 sp.exp(X) * sp.sin(X) - sp.exp(X) * sp.cos(X) + 3 * sp.exp(3 * X))
    (e,) = c.entries
    assert e.cause is Cause.CUSTOM_BACKWARD and "`SinFlipped.backward` returns" in e.explanation
    calls = [ln.strip() for ln in c.lowered.source.splitlines() if not ln.strip().startswith("#")]
    assert calls.count("t2 = Exp.apply(x)") == 1 and calls.count("t8 = Exp.apply(t6)") == 1
    assert "t4 = SinFlipped.apply(x)" in calls
