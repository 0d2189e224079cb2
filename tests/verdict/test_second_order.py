"""order=2: Hessians three ways, against SymPy's exact Hessian and torch's double backward."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import symgrad as sg

x, x0, x1 = sp.symbols("x x0 x1")


def test_hessian_of_a_smooth_function_agrees() -> None:
    f = x0**2 * x1 + sp.sin(x0 * x1)
    c = sg.compare(f, at={x0: 1.0, x1: 2.0}, order=2)
    s2, c2 = sp.sin(2), sp.cos(2)
    want = [4 - 4 * s2, 2 + c2 - 2 * s2, 2 + c2 - 2 * s2, -s2]
    assert c.ok
    assert [(e.output, str(e.wrt)) for e in c.entries] == [(0, "x0"), (0, "x1"), (1, "x0"), (1, "x1")]
    for e, w in zip(c.entries, want):
        assert abs(float(e.grad_symbolic) - float(sp.N(w, 30))) < 1e-18
        assert abs(float(e.grad_executed) - float(sp.N(w, 30))) < 1e-18
    # autograd: torch's own double backward, written by hand
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    h = torch.autograd.functional.hessian(lambda v: v[0] ** 2 * v[1] + torch.sin(v[0] * v[1]), t)
    assert [e.grad_autograd for e in c.entries] == pytest.approx(h.reshape(-1).tolist(), rel=1e-15)


def test_second_derivative_at_a_kink_is_a_kink() -> None:
    c = sg.compare(sp.Max(x, 0), at={x: 0.0}, order=2)
    e = c.entries[0]
    assert e.cause is sg.Cause.KINK and e.grad_symbolic is None
    assert e.grad_executed == 0 and e.grad_autograd == 0.0
    assert "DiracDelta" in e.explanation and e.line == 8


def test_second_derivative_of_a_linear_function_is_zero_though_torch_raises() -> None:
    c = sg.compare(2 * x, at={x: 1.0}, order=2)
    e = c.entries[0]
    assert e.cause is sg.Cause.AGREE
    assert e.grad_symbolic == 0 and e.grad_executed == 0 and e.grad_autograd == 0.0
    assert "does not require grad" in e.autograd_error and "0" in e.explanation
    with pytest.raises(RuntimeError, match="does not require grad"):
        t = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(2 * t, t, create_graph=True)
        torch.autograd.grad(g, t)


def test_detach_in_a_hessian() -> None:
    c = sg.compare(x * sg.detach(x**2), at={x: 3.0}, order=2)
    e = c.entries[0]
    assert (e.grad_symbolic, e.grad_executed, e.grad_autograd, e.cause) == (18, 0, 0.0, sg.Cause.DETACH)


def test_order_three_is_refused_with_a_sentence() -> None:
    with pytest.raises(sg.OptionError, match="order=1"):
        sg.compare(x**2, at={x: 1.0}, order=3)


@pytest.mark.parametrize("build, at", [
    (lambda x, y: sp.Max(x, 0) ** 2, {"x": 0.0}),                 # relu: mask 0 at its tie
    (lambda x, y: sp.Max(x, 1) ** 2, {"x": 1.0}),                 # clamp: mask 1 at its boundary
    (lambda x, y: sp.Min(x, -1) ** 2 * 3, {"x": -1.0}),
    (lambda x, y: sp.Max(x, y) ** 2, {"x": 1.0, "y": 1.0}),       # maximum splits 1/2 : 1/2
    (lambda x, y: sp.Max(sp.Max(x, y), 0) ** 2 + x, {"x": 0.0, "y": 0.0}),  # nested, not a 3-way Max
    (lambda x, y: sp.Abs(x) ** 3 + sp.Abs(x) * x, {"x": 0.0}),
    (lambda x, y: sp.atan2(x, -1) * x, {"x": 1.3}),               # a constant operand
])
def test_the_executed_hessian_is_torchs_double_backward(build, at) -> None:  # type: ignore[no-untyped-def]
    x, y = sp.symbols("x y")
    f = build(x, y)
    point = {sp.Symbol(k): v for k, v in at.items()}
    c = sg.compare(f, at=point, order=2)
    for e in c.entries:
        assert e.grad_autograd is not None
        assert float(e.grad_executed) == pytest.approx(e.grad_autograd, rel=1e-12, abs=1e-300), (
            f"{f}: d2/d{e.wrt} executed {e.grad_executed}, torch {e.grad_autograd}")


def _program(body: list, output: sp.Basic, inputs: list) -> sg.Program:  # type: ignore[type-arg]
    from sympy.codegen.ast import Assignment, CodeBlock

    return sg.Program(inputs=inputs, body=CodeBlock(*[Assignment(a, b) for a, b in body]), output=output)


def _hessian_truth(math: sp.Basic, syms: list, point: dict) -> list[float]:  # type: ignore[type-arg]
    exact = {s: sp.Rational(v) for s, v in point.items()}
    return [float(sp.diff(math, a, b).subs(exact).evalf(40)) for a in syms for b in syms]


@pytest.mark.parametrize("name", ["detach", "no_grad", "item", "softplus above 20", "softplus below 20"])
def test_a_programs_mathematics_at_order_2_is_the_program_without_its_cuts(name: str) -> None:
    """At order 2, a Program's mathematics is the program with detach/item/no_grad as the
    identity and softplus as log(1 + e^x) (it was the executed path itself, so the symbolic
    Hessian lost what a cut hid: 0 instead of 12 x**2 for x * detach(x**3)). The truth is
    sympy.diff of the program written out; the executed side and autograd are torch's."""
    x, y, s = sp.symbols("x y s")
    cases = {
        "detach": ([(s, sg.detach(x**3))], s * x, x**4, [x], {x: 2.0}, ["detach"]),
        "no_grad": ([(s, sg.no_grad(x * y))], s * x, x**2 * y, [x, y], {x: 2.0, y: 3.0},
                    ["graph-break", "graph-break", "graph-break", "agree"]),
        "item": ([(s, sg.item(x**2))], s * x * y, x**3 * y, [x, y], {x: 1.5, y: -2.0},
                 ["graph-break", "graph-break", "graph-break", "agree"]),
        # at 21 the kernel's dropped curvature is beyond float64's tolerance (at 25 it is within it: agree)
        "softplus above 20": ([(s, sg.softplus(x))], s * x, sp.log(1 + sp.exp(x)) * x, [x], {x: 21.0}, ["control-flow"]),
        "softplus below 20": ([(s, sg.softplus(x))], s * x, sp.log(1 + sp.exp(x)) * x, [x], {x: 5.0}, ["agree"]),
    }
    body, output, math, inputs, point, causes = cases[name]
    c = sg.compare(_program(body, output, inputs), at=point, order=2)
    truth = _hessian_truth(math, inputs, point)
    assert [float(e.grad_symbolic) for e in c.entries] == pytest.approx(truth, rel=1e-15, abs=0)
    assert [e.cause.id for e in c.entries] == causes
    # torch's own Hessian of the same program, its one assignment run as torch code
    cut = {"detach": lambda t: t.detach(), "no_grad": lambda t: t.detach(),
           "item": lambda t: torch.tensor(t.item(), dtype=torch.float64), "softplus": torch.nn.functional.softplus}
    assigned = sp.lambdify(list(inputs), body[0][1], modules=[cut, "math"])
    returned = sp.lambdify([*inputs, s], output)

    def run(*args: torch.Tensor) -> torch.Tensor:
        return returned(*args, assigned(*args))

    ts = tuple(torch.tensor(point[v], dtype=torch.float64) for v in inputs)
    h = torch.autograd.functional.hessian(run, ts)
    assert [e.grad_autograd for e in c.entries] == [float(h[i][j]) for i in range(len(ts)) for j in range(len(ts))]
