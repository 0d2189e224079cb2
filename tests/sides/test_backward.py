"""The backward pass line by line: `comparison.backward`, `comparison.parting`, `derivation()`.

The oracle for torch's side is torch itself: a hand-written program with `register_hook` on each
intermediate, as a user would write it. The exact side is checked against SymPy's own numbers.
"""

from __future__ import annotations

import math
import re

import pytest
import sympy as sp
import torch
from sympy.codegen.ast import Assignment, CodeBlock, While

import symgrad as sg
import symgrad.sides.backward as bw
from symgrad.show.cli import main

x, y = sp.symbols("x y")


def by_name(c: sg.Comparison) -> dict[str, bw.BackwardStep]:
    """The records by variable name (the last one, for a name a loop reassigns)."""
    return {r.name: r for r in reversed(c.backward)}


# --------------------------------------------------------------------------- the records


def test_records_run_backward_from_the_output_and_are_frozen() -> None:
    c = sg.compare(sp.sin(x) * x, at={x: 0.5})
    steps = [r.step for r in c.backward]
    assert steps == sorted(steps, reverse=True)
    assert c.backward[0].name == "out" and c.backward[0].adjoint_exact == 1
    with pytest.raises(AttributeError):
        c.backward[0].name = "other"  # type: ignore[misc]
    assert not hasattr(c.backward[0], "__dict__")  # slotted
    assert c.parting is None


def test_local_derivatives_are_in_sympy_notation_with_exact_values() -> None:
    c = sg.compare(sp.sin(x**2), at={x: 3.0})
    square = by_name(c)["x_pow_2"]
    (d,) = square.local_derivatives
    assert str(d) == "d(x_pow_2)/dx = 2*x"
    assert d.value == 6
    assert square.node == "x**2" and square.line == c.lowered.line_of(x**2)
    sine = by_name(c)["out"]
    assert str(sine.local_derivatives[0]) == "d(out)/d(x_pow_2) = cos(x_pow_2)"
    # the exact adjoint of x**2 is cos(9), of x is 6*cos(9)
    assert abs(float(square.adjoint_exact) - math.cos(9)) < 1e-15
    assert abs(float(by_name(c)["x"].adjoint_exact) - 6 * math.cos(9)) < 1e-14
    assert square.relative_error is not None and square.relative_error < 1e-15
    assert square.digits_lost == 0


def test_detach_cuts_the_chain_and_the_derivation_says_where() -> None:
    c = sg.compare(x * sg.detach(x**2), at={x: 3.0})
    r = by_name(c)
    assert r["x_pow_2"].adjoint_math == 3  # in the mathematics detach is the identity
    assert r["x_pow_2"].adjoint_exact == 0  # on the executed path the chain is cut
    detached = r["x_pow_2_detached"]
    assert detached.cut == "detach" and not detached.on_graph
    assert detached.adjoint_autograd is None  # a constant: torch has no adjoint for it
    assert r["x"].adjoint_exact == 9 and r["x"].adjoint_autograd == 9.0
    assert c.parting is None
    text = str(c.derivation())
    assert "adjoint of x_pow_2 = 0: the chain is cut at line 10, where `detach(x**2)` is detached" in text
    assert "in the mathematics, where it is the identity, the adjoint is 3" in text


def test_where_nan_trap_parts_at_the_sqrt_times_the_zero_adjoint() -> None:
    c = sg.compare(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), at={x: -1.0}, branches="where")
    r = by_name(c)
    assert math.isnan(r["x"].adjoint_autograd)  # torch's captured adjoint of x
    assert r["x"].adjoint_exact == 0
    assert r["sqrt_x"].adjoint_exact == 0 and r["sqrt_x"].adjoint_autograd == 0.0
    (d,) = r["sqrt_x"].local_derivatives
    assert d.value is sp.nan and d.formula == "1/(2*sqrt(x))"
    p = c.parting
    assert p is not None and p.record.name == "x"
    assert p.at.name == "sqrt_x" and p.kind == "0*nan"
    assert p.line == c.lowered.line_of(sp.sqrt(x)) == 8
    assert "line 8" in p.why and "`torch.where` on line 10" in p.why
    text = str(c.derivation())
    assert re.search(r"^> input +adjoint of x = adjoint of sqrt_x \* d\(sqrt_x\)/dx = 0 \* nan = 0 .*<- parts here$",
                     text, re.MULTILINE)
    assert "parts at line 8 (0*nan)" in text
    assert c.entries[0].cause.id == "nan-trap"  # the classification is unchanged


@pytest.mark.parametrize(("f", "at", "line"), [
    (2 * sp.sin(x / 2)**2 / x**2, 1e-7, 16),  # the cancellation is in the backward pass only
    ((1 - sp.cos(x)) / x**2, 1e-4, 14),  # a local derivative reads the cancelled 1 - cos(x)
])
def test_rounding_names_the_parting_line(f: sp.Expr, at: float, line: int) -> None:
    c = sg.compare(f, at={x: at})
    (e,) = c.entries
    assert e.cause.id == "rounding"
    assert "accumulate" not in e.explanation
    p = c.parting
    assert p is not None and p.kind == "cancellation" and p.line == line
    assert f"line {p.line}" in p.why
    assert f"parts at line {line} (cancellation)" in str(c.derivation())


def test_a_backward_only_cancellation_is_cited_by_the_rounding_explanation() -> None:
    c = sg.compare(2 * sp.sin(x / 2)**2 / x**2, at={x: 1e-7})
    (e,) = c.entries
    assert e.line == 16 and e.node == "x**2"
    assert "the sum of what its 2 uses send back" in e.explanation
    assert "(line 16)" in e.explanation and "(line 8)" in e.explanation
    assert "derivative, not the function, cancels" in e.hint
    assert c.parting.record.name == "x" and c.parting.record.digits_lost > 10


def test_1_minus_cos_parting_cites_the_cancelled_forward_value() -> None:
    c = sg.compare((1 - sp.cos(x)) / x**2, at={x: 1e-4})
    p = c.parting
    assert p.record.name == "x_pow_2"  # the first adjoint off, in backward order
    assert "`1 - cos(x)` (line 10)" in p.why and "cancellation" in p.why


def test_the_existing_backward_findings_keep_working() -> None:
    # log at the smallest subnormal: the overflow lives in the backward pass (1/x)
    c = sg.compare(sp.log(x), at={x: 5e-324})
    assert c.entries[0].cause.id == "overflow"
    assert c.parting is not None and c.parting.kind == "overflow" and c.parting.line == 8
    # the cone at its tip: a kink whose program multiplies sqrt's infinite slope by 0
    cone = sg.compare(sp.sqrt(x**2 + y**2), at={x: 0.0, y: 0.0})
    assert cone.entries[0].cause.id == "kink"
    assert cone.parting is not None and cone.parting.kind == "0*inf"


# --------------------------------------------------------------------------- torch's own hooks


def _hooked(build, values: dict[str, float]) -> dict[str, float]:
    """A hand-written torch program: `keep(name, tensor)` registers a hook that records the
    gradient of that intermediate, exactly as a user would."""
    grads: dict[str, float] = {}
    inputs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}

    def keep(name: str, t: torch.Tensor) -> torch.Tensor:
        t.register_hook(lambda g: grads.__setitem__(name, g.item()))
        return t

    out = build(keep, **inputs)
    out.backward()
    for k, t in inputs.items():
        grads[k] = t.grad.item() if t.grad is not None else None
    return grads


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_every_adjoint_is_what_a_hand_written_hook_records() -> None:
    def build(keep, x):
        a = keep("x_div_two", x / 2)
        s = keep("sin_x_div_two", torch.sin(a))
        s2 = keep("sin_x_div_two_pow_2", s ** 2)
        t = keep("two_sin_x_div_two_pow_2", 2 * s2)
        x2 = keep("x_pow_2", x ** 2)
        return keep("out", t / x2)

    for at in (0.7, 1e-7):
        c = sg.compare(2 * sp.sin(x / 2)**2 / x**2, at={x: at})
        hand = _hooked(build, {"x": at})
        got = by_name(c)
        assert set(hand) == set(got)
        for name, g in hand.items():
            assert _same(got[name].adjoint_autograd, g), (at, name, got[name].adjoint_autograd, g)


def test_hooks_of_a_where_program_and_a_two_input_program() -> None:
    def where(keep, x):
        s = keep("sqrt_x", torch.sqrt(x))
        return keep("out", torch.where(x > 0, s, 0))

    c = sg.compare(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), at={x: -1.0}, branches="where")
    hand = _hooked(where, {"x": -1.0})
    for name, g in hand.items():
        assert _same(by_name(c)[name].adjoint_autograd, g), name

    c = sg.compare(sp.exp(x * y) + x, at={x: 0.5, y: -2.0})
    names = {r.name: r for r in c.backward}
    src = c.lowered.source
    assert "x_times_y = x * y" in src or "x_y" in src  # the test builds the same program
    mul = next(r for r in c.backward if r.op == "mul")
    ex_ = next(r for r in c.backward if r.op == "exp")

    def two(keep, x, y):
        m = keep(mul.name, x * y)
        e = keep(ex_.name, torch.exp(m))
        return keep("out", e + x)

    hand = _hooked(two, {"x": 0.5, "y": -2.0})
    for name, g in hand.items():
        assert _same(names[name].adjoint_autograd, g), name


def test_a_loop_lines_up_iteration_by_iteration() -> None:
    a, b = sp.symbols("a b")
    f = sg.Program(inputs=[a], body=CodeBlock(
        Assignment(b, 2 * a), While(sp.Abs(b) < 1000, CodeBlock(Assignment(b, 2 * b + sp.sin(b))))), output=b)
    c = sg.compare(f, at={a: 0.3})
    loop = [r for r in c.backward if r.op in ("add", "mul", "sin") and r.line is not None]
    assert len(loop) > 10
    for r in c.backward:
        if r.on_graph:
            assert r.adjoint_autograd is not None
            assert abs(r.adjoint_autograd - float(r.adjoint_exact)) <= 1e-9 * abs(float(r.adjoint_exact))


# --------------------------------------------------------------------------- matrices


def test_the_quadratic_loss_derivation_in_matrix_notation() -> None:
    X = sp.MatrixSymbol("X", 2, 2)
    w = sp.MatrixSymbol("w", 2, 1)
    Y = sp.MatrixSymbol("y", 2, 1)
    loss = sp.Rational(1, 2) * ((X * w - Y).T * (X * w - Y))
    c = sg.compare(loss, at={X: [[1, 2], [3, 4]], w: [[1], [-1]], Y: [[0], [1]]}, wrt=[w])
    r = by_name(c)
    residual = next(v for v in c.backward if v.node == "X*w - y")
    assert residual.value == sp.Matrix([[-1], [-2]])
    assert r["w"].adjoint_exact == sp.Matrix([[-7], [-10]])
    assert (r["w"].adjoint_autograd == [[-7.0], [-10.0]]).all()
    text = str(c.derivation())
    assert f"{residual.name} = X*w - y = [-1; -2]" in text  # the residual
    assert "X.T*adjoint of X_at_w" in text  # matrix notation, not per-element sums
    assert "= [-7; -10]" in text  # the gradient
    assert c.parting is None


def test_a_vector_jacobian_product_seeds_the_backward_pass_with_v() -> None:
    X = sp.MatrixSymbol("X", 2, 2)
    w = sp.MatrixSymbol("w", 2, 1)
    c = sg.compare(X * w, at={X: [[1, 2], [3, 4]], w: [[1], [-1]]}, v=[[1], [2]])
    r = by_name(c)
    assert r["w"].adjoint_exact == sp.Matrix([[7], [10]])
    assert (r["w"].adjoint_autograd == [[7.0], [10.0]]).all()
    assert "its weight in v" in str(c.derivation())


# --------------------------------------------------------------------------- cost and views


def test_backward_is_lazy_and_runs_torch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = bw._capture
    monkeypatch.setattr(bw, "_capture", lambda *a: calls.append(1) or real(*a))
    c = sg.compare(sp.sin(x) + x**2, at={x: 0.25})
    assert calls == []  # compare() itself does not pay for it
    c.backward
    c.parting
    str(c.derivation())
    assert calls == [1]
    # a rounding entry computed it already for its explanation: the comparison reuses it
    d = sg.compare(2 * sp.sin(x / 2)**2 / x**2, at={x: 1e-7})
    assert calls == [1, 1]
    d.backward
    assert calls == [1, 1]


def test_the_html_view_has_the_backward_pass_in_a_details_section() -> None:
    c = sg.compare(x * sg.detach(x**2), at={x: 3.0})
    page = c._repr_html_()
    assert '<details class="symgrad-backward">' in page
    assert "chain is cut at line 10" in page


def test_cli_compare_steps_prints_the_derivation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "2*sin(x/2)**2/x**2", "--at", "x=1e-7", "--steps"]) == 1  # rounding: they disagree
    out = capsys.readouterr().out
    assert "backward pass of 2*sin(x/2)**2/x**2" in out
    assert "parts at line 16 (cancellation)" in out
    assert main(["compare", "x**2", "--at", "x=3"]) == 0
    assert "backward pass" not in capsys.readouterr().out


def test_when_torch_raises_the_derivation_says_so() -> None:
    c = sg.compare(sp.Piecewise((x, x > 0), (sg.item(0), True)), at={x: -1.0})
    text = str(c.derivation())
    assert "torch raised: RuntimeError: element 0 of tensors does not require grad" in text
    assert "torch raised, so it has no adjoints" in text
    assert c.parting is None


def test_the_parting_reads_its_records_values() -> None:
    x = sp.Symbol("x")
    c = sg.compare(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), at={x: -1.0}, branches="where")
    p = c.parting
    assert p is not None
    assert p.adjoint_exact == p.record.adjoint_exact and p.value == p.record.value
