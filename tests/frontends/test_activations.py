"""torch's activations and the other spellings of issue 22, read from torch code.

Item 1: `F.gelu` (approximate 'none' and 'tanh'), `F.silu`, `F.logsigmoid`, `F.elu(alpha)`,
`F.leaky_relu(negative_slope)`, `F.hardtanh(min_val, max_val)`, `F.relu6`: one fused node each
(program/activations.py), lowered to torch's own call. Item 2: torch.round, torch.xlogy,
torch.square, torch.inverse/linalg.inv, Python's sum/abs/max/min and the spellings that were
there already (cosh, asin, atan2, mul, mm, mv, det, pow). Item 3: comparisons used as numbers.
Item 4: torch.tensor of values with a gradient, a graph break.

Every row: read in source mode on a 0-d tensor and elementwise on tensors, its translation's
forward and autograd equal to the user's code bit for bit (float64 and float32; torch's own
autograd of the user's function is the reference), the exact rule equal to `sympy.diff` of the
mathematics, and the verdicts per element at the kinks and jumps, with torch's convention.
"""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
from user_code import load_module, reads_like_torch

import symgrad as sg
from symgrad.base.errors import UnsupportedNodeError
from symgrad.frontends import torch_names as tn
from symgrad.program import activations as act
from symgrad.program import exact as ex
from symgrad.program.ops import OPS

SOURCE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def gelu(x): return F.gelu(x * 1.5).sum()
    def gelu_tanh(x): return torch.nn.functional.gelu(x, approximate='tanh').sum()
    def silu(x): return F.silu(x).sum()
    def logsigmoid(x): return F.logsigmoid(x * 2.0).sum()
    def elu(x): return F.elu(x, alpha=0.5).sum()
    def elu_default(x): return F.elu(x).sum()
    def leaky(x): return F.leaky_relu(x, 0.2).sum()
    def leaky_default(x): return F.leaky_relu(x).sum()
    def hardtanh(x): return F.hardtanh(x, min_val=-0.5, max_val=0.5).sum()
    def relu6(x): return F.relu6(x * 4.0).sum()
    def round_(x): return (torch.round(x) * x).sum()
    def xlogy(x, y): return torch.xlogy(x, y).sum()
    def square(x): return (torch.square(x) + x.square()).sum()
    def power(x): return x.pow(3).sum()
    def hyperbolic(x): return (torch.cosh(x) + torch.sinh(x)).sum()
    def inverse_trig(x): return (torch.arcsin(x) + torch.asin(x) + torch.arccos(x) + torch.acos(x)
                                 + torch.arctan(x) + torch.atan(x)).sum()
    def atan2(x, y): return (torch.atan2(x, y) + torch.arctan2(y, x)).sum()
    def multiply(x, y): return (torch.multiply(x, y) + torch.mul(x, y)).sum()
    def python_abs(x): return abs(x).sum()
    def python_sum(x): return sum(x) * 1.0
    def python_sum_list(x, y): return sum([x, y, x * y]).sum()
    def python_sum_gen(x): return sum(t * t for t in x)
    def python_sum_range(x): return sum(x[i] * x[i + 1] for i in range(3))
    def python_sum_listcomp(x): return sum([t.exp() for t in x])
    def mask_times(x): return ((x > 0) * x).sum()
    def mask_float(x): return ((x >= 0).float() * x + x).sum()
    def mask_to(x): return ((x > 0).to(x.dtype) * x).sum()
    def mask_double(x): return ((x < 0.5).double() + x).sum()
    def mask_functions(x): return (torch.gt(x, 0.0) * x + torch.le(x, 0.0) * x * 2.0 + torch.ne(x, 0.0) * x).sum()
    def step(x): return (torch.ge(x, 0.0) * 1.0 + torch.eq(x, 1.0) + torch.lt(x, -1.0) * 3.0 + x).sum()
''')

MATRIX_SOURCE = textwrap.dedent('''
    import torch

    def mm(A, B): return torch.mm(A, B).sum()
    def mv(A, v): return torch.mv(A, v).sum()
    def det(A): return torch.linalg.det(A) + torch.det(A)
    def inverse(A): return (torch.inverse(A) + torch.linalg.inv(A)).sum()
''')

SCALAR_SOURCE = textwrap.dedent('''
    import torch

    def python_max(x, y): return max(x, y) * y + x
    def python_min(x, y): return min(x, y, x * y) * y
    def mask_times(x): return (x > 0) * x
    def mask_double(x): return (x >= 0).double() + x
    def new_leaf(x, y): return (torch.tensor([x, y]) ** 2).sum() + x
    def new_leaf_tensor(x, y):
        t = torch.tensor([x.sum(), y.sum()])
        return (t * x).sum()
''')

POINT = [0.75, -1.25, 0.375, 2.0]
POINTS: dict[str, list[list[float]]] = {
    name: [POINT] for name in ("gelu", "gelu_tanh", "silu", "logsigmoid", "elu", "elu_default", "leaky",
                               "leaky_default", "hardtanh", "relu6", "round_", "square", "power", "hyperbolic",
                               "python_abs", "python_sum", "mask_times", "mask_float", "mask_to", "mask_double",
                               "mask_functions", "step", "python_sum_gen", "python_sum_range", "python_sum_listcomp")
}
POINTS["inverse_trig"] = [[0.5, -0.25, 0.125]]
POINTS["xlogy"] = [[0.0, 1.5, -2.0, 0.25], [0.5, 3.0, 0.75, 2.0]]
POINTS["atan2"] = [[0.5, -1.0, 2.0], [1.0, 2.0, -0.5]]
POINTS["multiply"] = [[1.5, 2.0], [3.0, -4.0]]
POINTS["python_sum_list"] = [[1.5, 2.0], [3.0, -4.0]]

A = [[2.0, 1.0], [0.5, 3.0]]
MATRIX_POINTS: dict[str, list[Any]] = {"mm": [A, [[1.0, -1.0], [0.25, 2.0]]], "mv": [A, [1.0, 2.0]], "det": [A],
                                       "inverse": [A]}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("activations"), "user_activations")


@pytest.fixture(scope="module")
def matrices(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(MATRIX_SOURCE, tmp_path_factory.mktemp("activations_mat"), "user_activations_matrices")


@pytest.fixture(scope="module")
def scalars(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SCALAR_SOURCE, tmp_path_factory.mktemp("activations_scalar"), "user_activations_scalars")


def _close_to_torch(c: sg.Comparison, dtype: torch.dtype) -> None:
    """The exact executed derivative is torch's formula in exact arithmetic: torch's float is it,
    rounded, within the dtype's accumulated rounding (an independent check of the exact side)."""
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for e in c.entries:
        if e.grad_executed is not None and e.grad_executed.is_finite and e.grad_autograd == e.grad_autograd:
            assert abs(float(e.grad_executed) - e.grad_autograd) <= rtol * max(1.0, abs(e.grad_autograd)), e.wrt


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_each_row_on_tensors_reproduces_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(module, name), [torch.tensor(v, dtype=dtype) for v in POINTS[name]])
    _close_to_torch(c, dtype)
    assert len(c.entries) == sum(len(v) for v in POINTS[name])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_each_row_on_a_0d_tensor_reproduces_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    if name.startswith("python_sum"):
        pytest.skip("Python's sum iterates a tensor: a 0-d one is not iterable (torch raises)")
    # (the first point: at a negative x, `(x > 0) * x` is -0.0, and torch's `.sum()` of a 0-d tensor
    # gives +0.0, which the translation, reading a 0-d tensor's sum as itself, does not)
    c = reads_like_torch(getattr(module, name), [torch.tensor(v[0], dtype=dtype) for v in POINTS[name]])
    _close_to_torch(c, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(MATRIX_POINTS))
def test_matrix_spellings_reproduce_torch(matrices: Any, name: str, dtype: torch.dtype) -> None:
    c = reads_like_torch(getattr(matrices, name), [torch.tensor(v, dtype=dtype) for v in MATRIX_POINTS[name]])
    _close_to_torch(c, dtype)
    assert {e.cause for e in c.entries} == {sg.Cause.AGREE}


def test_smooth_rows_agree_and_equal_sympy(module: Any) -> None:
    """Away from kinks every entry agrees, and the mathematics' derivative is sympy.diff of the
    written-out function at the point, exactly (60 digits)."""
    x = sp.Symbol("x", real=True)
    math_of = {
        "gelu": lambda u: (1.5 * u) * (1 + sp.erf(sp.Rational(3, 2) * u / sp.sqrt(2))) / 2,
        "silu": lambda u: u / (1 + sp.exp(-u)),
        "logsigmoid": lambda u: -sp.log(1 + sp.exp(-2 * u)),
        "elu": lambda u: sp.Piecewise((u, u > 0), (sp.Rational(1, 2) * (sp.exp(u) - 1), True)),
        "leaky": lambda u: sp.Piecewise((u, u > 0), (sp.Float(0.2, 53) * u, True)),
    }
    for name, f in math_of.items():
        c = reads_like_torch(getattr(module, name), [torch.tensor(POINT, dtype=torch.float64)])
        for e, p in zip(c.entries, POINT):
            assert e.cause is sg.Cause.AGREE, (name, e)
            want = sp.diff(f(sp.Rational(1, 1) * x).subs(sp.Float(1.5), sp.Rational(3, 2)), x).subs(x, sp.Rational(p))
            if name == "gelu":
                want = sp.diff((sp.Rational(3, 2) * x) * (1 + sp.erf(sp.Rational(3, 2) * x / sp.sqrt(2))) / 2, x).subs(
                    x, sp.Rational(p))
            assert abs(sp.N(e.grad_symbolic - want, 60)) <= sp.Float("1e-45") * max(1, abs(sp.N(want, 60))), (name, p)


# ---------------------------------------------------------------- the exact rows against sympy.diff


SMOOTH = {"gelu": (), "gelu_tanh": (), "silu": (), "logsigmoid": (), "elu": (0.5,), "leaky_relu": (0.2,),
          "hardtanh": (-0.5, 0.5)}


@pytest.mark.parametrize("name", list(SMOOTH))
@pytest.mark.parametrize("at", [Fraction(3, 8), Fraction(-5, 4), Fraction(7, 2), Fraction(-1, 16)])
def test_exact_rule_is_the_derivative_of_the_mathematics(name: str, at: Fraction) -> None:
    """OPS[name] (value, torch's backward formula in exact arithmetic) against the mathematics'
    written-out SymPy function and its sympy.diff, at points off the kinks."""
    cls = getattr(act, name)
    x = sp.Symbol("x", real=True)
    params = [sp.Float(p, 53) for p in SMOOTH[name]]
    math = cls(x, *params).written_out()
    op = OPS[name]
    with ex.working_precision(ex.START_PREC):
        a = (ex.Q(at.numerator, at.denominator),)
        value = op.value(a, SMOOTH[name])
        (slope,) = op.partials(a, value, SMOOTH[name])
        want_value = sp.N(math.subs(x, sp.Rational(at.numerator, at.denominator)), 60)
        want_slope = sp.N(sp.diff(math, x).subs(x, sp.Rational(at.numerator, at.denominator)), 60)
        assert abs(sp.N(ex.to_sympy(value) - want_value, 60)) < sp.Float("1e-45"), (name, at)
        assert abs(sp.N(ex.to_sympy(slope) - want_slope, 60)) < sp.Float("1e-45"), (name, at)
        # the SymPy node's own derivative (fdiff) is the same
        node_slope = sp.N(sp.diff(cls(x, *params), x).subs(x, sp.Rational(at.numerator, at.denominator)), 60)
        assert abs(node_slope - want_slope) < sp.Float("1e-45"), (name, at)


@pytest.mark.parametrize("at", [0.0, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994, -7.25, 1e16 + 2])
def test_round_value_is_torchs(at: float) -> None:
    """torch.round: half to even, -0.0 kept; the exact op gives the same number."""
    with ex.working_precision(ex.START_PREC):
        mine = ex.to_float(OPS["round_even"].value((ex.from_float(at),), None))
    theirs = float(torch.round(torch.tensor(at, dtype=torch.float64)))
    assert mine == theirs and math.copysign(1, mine) == math.copysign(1, theirs)


@pytest.mark.parametrize(("x", "y"), [(0.0, 0.0), (0.0, -1.0), (0.0, 2.0), (1.0, -1.0), (-1.0, 0.0), (0.5, 3.0)])
def test_xlogy_is_torchs_with_its_masks(x: float, y: float) -> None:
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    out = torch.xlogy(tx, ty)
    gx, gy = torch.autograd.grad(out, [tx, ty])
    op = OPS["xlogy"]
    with ex.working_precision(ex.START_PREC):
        a = (ex.from_float(x), ex.from_float(y))
        v = op.value(a, None)
        mine = [ex.to_float(v), *(ex.to_float(p) for p in op.partials(a, v, None))]
    for m, t in zip(mine, [float(out.detach()), float(gx), float(gy)]):
        assert (math.isnan(m) and math.isnan(t)) or m == pytest.approx(t, rel=1e-15), (x, y, mine)


# ---------------------------------------------------------------- verdicts per element


def _verdicts(fn: Any, values: list[list[float]]) -> tuple[list[sg.Cause], sg.Comparison]:
    c = reads_like_torch(fn, [torch.tensor(v, dtype=torch.float64) for v in values])
    return [e.cause for e in c.entries], c


K, J, A_, C = sg.Cause.KINK, sg.Cause.JUMP, sg.Cause.AGREE, sg.Cause.CONTROL_FLOW


@pytest.mark.parametrize(("name", "values", "causes", "torch_at_kink", "sides"), [
    # leaky_relu(0.2): a kink at 0, torch's gradient there 0.2 (its left piece)
    ("leaky", [[0.0, -1.0, 2.0]], [K, A_, A_], 0.2, (0.2, 1.0)),
    ("leaky_default", [[0.0, 1e-300]], [K, A_], 0.01, (0.01, 1.0)),
    # elu(alpha=0.5): a kink at 0, torch's gradient alpha; alpha = 1 has none
    ("elu", [[0.0, -0.5]], [K, A_], 0.5, (0.5, 1.0)),
    ("elu_default", [[0.0, -0.5]], [A_, A_], 1.0, None),
    # hardtanh(-0.5, 0.5): kinks at both corners, torch's gradient 0 at each (clamp's is 1)
    ("hardtanh", [[-0.5, 0.5, 0.25, 1.0]], [K, K, A_, A_], 0.0, None),
    # relu6(4x): corners at x = 0 and x = 1.5
    ("relu6", [[0.0, 1.5, 1.0]], [K, K, A_], 0.0, None),
    # (x > 0) * x: continuous, a kink at 0; gradient 0 there (the mask is 0)
    ("mask_times", [[0.0, 0.5, -0.5]], [K, A_, A_], 0.0, (0.0, 1.0)),
    ("mask_to", [[0.0, 0.5]], [K, A_], 0.0, (0.0, 1.0)),
    # (x >= 0).float()*x + x: slopes 1 and 2, torch takes 2 (the mask holds at 0)
    ("mask_float", [[0.0, -2.0]], [K, A_], 2.0, (1.0, 2.0)),
    # (x < 0.5).double() + x: a jump at 0.5
    ("mask_double", [[0.5, 0.25, 0.75]], [J, A_, A_], 1.0, None),
    ("step", [[0.0, 1.0, -1.0, 0.5]], [J, J, J, A_], 1.0, None),
    # round: jumps at the half-integers only
    ("round_", [[2.5, 2.25, -0.5, 3.0]], [J, A_, J, A_], None, None),
])
def test_kinks_and_jumps_are_per_element(module: Any, name: str, values: list[list[float]], causes: list[sg.Cause],
                                         torch_at_kink: float | None, sides: tuple[float, float] | None) -> None:
    got, c = _verdicts(getattr(module, name), values)
    assert got == causes, (name, c.entries)
    first = c.entries[0]
    if torch_at_kink is not None:
        assert first.grad_autograd == torch_at_kink
    if sides is not None:
        assert first.one_sided is not None
        assert tuple(float(s) for s in first.one_sided) == sides


def test_a_kink_finding_names_torchs_convention(module: Any) -> None:
    _, c = _verdicts(module.leaky, [[0.0, 1.0]])
    e = c.entries[0]
    assert "leaky_relu" in e.explanation + e.hint or "negative_slope" in e.explanation + e.hint, e.explanation
    _, c = _verdicts(module.hardtanh, [[0.5, 0.0]])
    assert "hardtanh" in c.entries[0].explanation + c.entries[0].hint


def test_xlogy_at_zero_is_a_domain_where_y_is_not_positive(module: Any) -> None:
    """x*log(y) at x = 0: torch's 0 is the limit for y > 0 (agree, d/dy = 0); at y = 0 the
    mathematics has no value (log 0), whatever torch returns (0, its gradients 0 and NaN)."""
    got, c = _verdicts(module.xlogy, [[0.0, 0.0, 0.5], [2.0, 0.0, 1.0]])
    by = {str(e.wrt): e.cause for e in c.entries}
    assert got[:3] == [A_, sg.Cause.DOMAIN, A_]  # d/dx: log 2, at y = 0 none, log 1 = 0
    assert by[str(c.entries[3].wrt)] is A_  # d/dy at x = 0, y = 2: 0
    assert c.entries[4].cause is sg.Cause.DOMAIN


def test_python_max_of_0d_tensors_is_control_flow_at_a_tie(scalars: Any) -> None:
    """Python's max(x, y) asks `y > x` in Python: control flow. Beside a tie it agrees; at a tie the
    branch that ran (x, the first) is not the function's derivative, and the verdict says so."""
    t = lambda v: torch.tensor(v, dtype=torch.float64)
    c = reads_like_torch(scalars.python_max, [t(1.0), t(2.0)])
    assert [e.cause for e in c.entries] == [A_, A_]
    assert [e.grad_autograd for e in c.entries] == [1.0, 4.0]
    c = reads_like_torch(scalars.python_max, [t(1.0), t(1.0)])
    assert [e.cause for e in c.entries] == [C, C]
    c = reads_like_torch(scalars.python_min, [t(2.0), t(3.0)])
    assert [e.cause for e in c.entries] == [A_, A_]


def test_comparisons_of_0d_tensors_are_steps_not_branches(scalars: Any) -> None:
    t = lambda v: torch.tensor(v, dtype=torch.float64)
    assert [e.cause for e in reads_like_torch(scalars.mask_times, [t(0.0)]).entries] == [K]
    assert [e.cause for e in reads_like_torch(scalars.mask_times, [t(0.5)]).entries] == [A_]
    assert [e.cause for e in reads_like_torch(scalars.mask_double, [t(0.0)]).entries] == [J]
    assert [e.cause for e in reads_like_torch(scalars.mask_double, [t(-3.0)]).entries] == [A_]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_tensor_of_values_with_a_gradient_is_a_graph_break(scalars: Any) -> None:
    """torch.tensor([x, y]) copies the values into a new leaf: torch's gradient misses that part
    (d/dx of x**2 + y**2 + x is 2x + 1 = 3, torch's 1); a graph break at that line, in words of
    torch.tensor (not of .item())."""
    x, y = torch.tensor(1.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    traced = sg.trace(scalars.new_leaf, x, y)
    assert traced.mode == "source" and traced.fidelity.ok
    c = traced.compare()
    xl, yl = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    grads = torch.autograd.grad(scalars.new_leaf(xl, yl), [xl, yl], allow_unused=True)
    assert [float(g) if g is not None else 0.0 for g in grads] == [1.0, 0.0]  # torch's own: only `+ x`
    assert [e.cause for e in c.entries] == [sg.Cause.GRAPH_BREAK] * 2
    assert [float(e.grad_symbolic) for e in c.entries] == [3.0, 4.0]
    assert [e.grad_autograd for e in c.entries] == [1.0, 0.0]
    first = c.entries[0]
    assert "torch.tensor" in first.explanation and ".item()" not in first.explanation
    assert first.source.line == scalars.new_leaf.__code__.co_firstlineno
    v, w = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 4.0], dtype=torch.float64)
    c = sg.trace(scalars.new_leaf_tensor, v, w).compare()
    # (t * v).sum() with t = (v.sum(), w.sum()) is v0*(v0 + v1) + v1*(w0 + w1): torch's gradient is t, (3, 7)
    assert [e.cause for e in c.entries] == [sg.Cause.GRAPH_BREAK] * 4
    assert [e.grad_autograd for e in c.entries] == [3.0, 7.0, 0.0, 0.0]
    assert [float(e.grad_symbolic) for e in c.entries] == [2 * 1.0 + 2.0, 1.0 + 3.0 + 4.0, 2.0, 2.0]
    assert {e.source.line for e in c.entries} == {scalars.new_leaf_tensor.__code__.co_firstlineno + 1}


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(("name", "args", "kwargs", "words"), [
    ("torch.nn.functional.gelu", [sp.Symbol("x")], {"approximate": "sigmoid"}, "approximate='tanh'"),
    ("torch.nn.functional.leaky_relu", [sp.Symbol("x"), sp.Symbol("s")], {}, "`negative_slope` a Python number"),
    ("torch.nn.functional.elu", [sp.Symbol("x")], {"inplace": True}, "inplace=True"),
    ("torch.nn.functional.hardtanh", [sp.Symbol("x")], {"min_val": math.inf}, "finite `min_val`"),
    ("torch.nn.functional.relu6", [sp.Symbol("x")], {"beta": 1}, "F.relu6(input, inplace=...)"),
    ("torch.round", [sp.Symbol("x")], {"decimals": 2}, "with decimals is not read"),
    ("torch.inverse", [sp.MatrixSymbol("M", 2, 3)], {}, "inverts a square matrix"),
    ("torch.square", [sp.Symbol("x"), sp.Symbol("y")], {}, "`torch.square` is read with 1 tensor argument"),
    ("max", [sp.MatrixSymbol("v", 2, 1), sp.MatrixSymbol("w", 2, 1)], {}, "Python's `max` is read of two or more numbers"),
    ("sum", [sp.MatrixSymbol("M", 2, 3)], {}, "Python's `sum` of a 2 x 3 tensor adds its rows"),
    ("Tensor.to", [sp.Symbol("x"), "cuda"], {}, "a cast to a dtype only"),
])
def test_refusals_name_what_they_refuse(name: str, args: list[Any], kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(UnsupportedNodeError) as err:
        tn.SPELLINGS[name].build(args, kwargs)
    assert words in str(err.value) and "Fix:" in str(err.value)


def test_a_generator_sum_refuses_what_it_does_not_read(tmp_path: Any) -> None:
    mod = load_module("import torch\n\ndef f(x):\n    return sum(t for t in x if t > 0)\n", tmp_path, "user_gen_if")
    with pytest.raises(sg.TraceError, match="Python's `sum` is read of a generator with one `for name in ...` and no `if`"):
        sg.trace(mod.f, torch.tensor([1.0, -2.0], dtype=torch.float64))


def test_every_new_spelling_is_in_the_table_and_the_page() -> None:
    from symgrad.show.supported import supported_markdown

    page = supported_markdown()
    for name in ("torch.nn.functional.gelu", "torch.nn.functional.silu", "torch.nn.functional.logsigmoid",
                 "torch.nn.functional.elu", "torch.nn.functional.leaky_relu", "torch.nn.functional.hardtanh",
                 "torch.nn.functional.relu6", "torch.round", "torch.xlogy", "torch.square", "torch.inverse",
                 "torch.linalg.inv", "torch.gt", "torch.ne", "Tensor.double", "sum", "max", "min"):
        assert name in tn.SPELLINGS, name
        assert f"`{name}`" in page, name


def test_second_derivatives_of_the_fused_rows(tmp_path: Any) -> None:
    """order=2: the path written as one SymPy expression keeps each fused node (and its parameters);
    the second derivative is sympy's of the mathematics, torch's double backward beside it."""
    mod = load_module("import torch\nimport torch.nn.functional as F\n\n"
                      "def f(x):\n    return F.gelu(x) * F.silu(x) + F.logsigmoid(x) + F.elu(x, alpha=0.5) + torch.xlogy(x, x * x)\n",
                      tmp_path, "user_activations_order2")
    x = sp.Symbol("x", real=True)
    math = (x * (1 + sp.erf(x / sp.sqrt(2))) / 2 * x / (1 + sp.exp(-x)) - sp.log(1 + sp.exp(-x))
            + sp.Rational(1, 2) * (sp.exp(x) - 1) + x * sp.log(x * x))
    for at in (-0.75, 1.25):
        (e,) = sg.compare(mod.f, at={"x": torch.tensor(at, dtype=torch.float64)}, order=2).entries
        t = torch.tensor(at, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(mod.f(t), t, create_graph=True)
        (h,) = torch.autograd.grad(g, t)
        assert e.cause is sg.Cause.AGREE and e.grad_autograd == float(h)
        if at > 0:  # (the elu piece for x <= 0 is another function; at 1.25 the x > 0 piece is x)
            math_at = math - sp.Rational(1, 2) * (sp.exp(x) - 1) + x
        else:
            math_at = math
        want = sp.N(sp.diff(math_at, x, 2).subs(x, sp.Rational(at)), 60)
        assert abs(sp.N(e.grad_symbolic - want, 60)) < sp.Float("1e-40") * max(1, abs(want))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_path_mode_reads_torch_tensor_and_stack_of_recorded_values(tmp_path: Any) -> None:
    """The recorder read the list given to torch.tensor / torch.stack as constants: the new leaf of
    torch.tensor([x, y]) was a constant of the mathematics too, a false agree (d/dx of x**2 + y**2
    + x is 3, torch's 1). Each value in the list is its own recorded value now: a graph break for
    torch.tensor, and torch.stack keeps the gradient (and agrees)."""
    mod = load_module("import torch\n\ndef _h(x):\n    try:\n        return x * 1.0\n    except ValueError:\n        return x\n\n"
                      "def f(x, y):\n    return (torch.tensor([x, y]) ** 2).sum() + _h(x)\n\n"
                      "def g(x, y):\n    return (torch.stack([x, y]) ** 2).sum() + _h(x)\n", tmp_path, "user_path_tensor")
    traced = sg.trace(mod.f, 1.0, 2.0)
    assert traced.mode == "path"  # the helper's `try` is read by recording a run only
    c = traced.compare()
    assert [e.cause for e in c.entries] == [sg.Cause.GRAPH_BREAK] * 2
    assert [float(e.grad_symbolic) for e in c.entries] == [3.0, 4.0]
    assert [e.grad_autograd for e in c.entries] == [1.0, 0.0]
    traced = sg.trace(mod.g, 1.0, 2.0)
    assert traced.mode == "path"
    c = traced.compare()
    assert [e.cause for e in c.entries] == [sg.Cause.AGREE] * 2 and [e.grad_autograd for e in c.entries] == [3.0, 4.0]
