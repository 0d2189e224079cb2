"""Scalar rules on tensors, read from torch code (issue 20, items 1 and 2): relu, tanh, sigmoid,
clamp, abs, maximum/minimum, softplus, detach, sqrt, a tensor exponent, `torch.where` on a
comparison of tensors and a comparison used as numbers. Each is read in source mode; its
translation's forward value and gradient equal the user's torch code bit for bit (the fidelity
check, and torch's autograd of the user's function here), in float64 and float32; the exact
values equal the scalar rule applied element by element (SymPy, exactly); and every verdict is
per element: a tie, a trap or a domain edge placed in one element reaches exactly the entries
that element decides."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import sympy as sp
import torch

import symgrad as sg
from user_code import load_module, reads_like_torch

SOURCE = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    def relu(W, X): return torch.relu(X @ W).sum()
    def relu_method(W, X): return (X @ W).relu().sum()
    def relu_f(W, X): return F.relu(X @ W).mean()
    def tanh(W, X): return torch.tanh(X @ W).sum()
    def sigmoid(W, X): return torch.sigmoid(X @ W).sum()
    def clamp(W, X): return (X @ W).clamp(min=0).sum()
    def clamp_both(W, X): return torch.clamp(X @ W, min=-0.5, max=1.0).sum()
    def absolute(W, X): return torch.abs(X @ W).sum()
    def maximum(W, X): return torch.maximum(X @ W, torch.zeros_like(X @ W)).sum()
    def minimum(W, X): return torch.minimum(X @ W, W.sum() * torch.ones_like(X @ W)).sum()
    def softplus(W, X): return F.softplus(X @ W).sum()
    def detached(W, X): return ((X @ W).detach() * (X @ W)).sum()
    def cosine(W, X): return torch.cos(X @ W).sum()
    def where_sqrt(v): return torch.where(v > 0, torch.sqrt(v), 0.0).sum()
    def where_log(v): return torch.where(v > 0, torch.log(v), v).sum()
    def where_two(v, u): return torch.where(v > u, v * u, u - v).sum()
    def masked(v): return (v * (v > 0)).sum()
    def square_root(v): return torch.sqrt(v).sum()
    def power(v, u): return (v ** u).sum()
    def row_max(W, b): return torch.maximum(W, b).sum()
''')

W = [[1.0, 0.0], [0.0, 1.0], [0.5, -2.0]]
X = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.25]]
V = [0.5, 1.5, -1.0, 2.0]
U = [2.0, 3.0, -2.0, 0.5]

POINTS: dict[str, tuple[Any, ...]] = {
    "relu": (W, X), "relu_method": (W, X), "relu_f": (W, X), "tanh": (W, X), "sigmoid": (W, X), "clamp": (W, X),
    "clamp_both": (W, X), "absolute": (W, X), "maximum": (W, X), "minimum": (W, X), "softplus": (W, X),
    "detached": (W, X), "cosine": (W, X), "where_sqrt": (V,), "where_log": (V,), "where_two": (V, U), "masked": (V,),
    "square_root": ([0.5, 1.5, 4.0, 2.0],), "power": ([0.5, 1.5, 4.0, 2.0], U), "row_max": (W, [0.25, 0.5]),
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("tensor_elementwise"), "user_tensor_elementwise")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_each_rule_on_tensors_is_read_and_reproduces_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    fn = getattr(module, name)
    tensors = [torch.tensor(v, dtype=dtype) for v in POINTS[name]]
    c = reads_like_torch(fn, tensors)
    # the exact executed derivative is torch's formula in exact arithmetic: torch's float is it,
    # rounded, within the dtype's accumulated rounding (an independent check of the exact side)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for e in c.entries:
        if e.grad_executed is not None and e.grad_executed.is_finite and e.grad_autograd == e.grad_autograd:
            assert abs(float(e.grad_executed) - e.grad_autograd) <= rtol * max(1.0, abs(e.grad_autograd)), e.wrt


def exact_gradient(f: Any, shapes: list[tuple[int, int]], values: list[Any]) -> list[sp.Basic]:
    """d f / d (every element of every input), exactly, from the scalar rule written element by
    element in SymPy (ground truth independent of symgrad's lowering and exact engine)."""
    mats = [sp.Matrix(r, c, lambda i, j, k=k: sp.Symbol(f"m{k}_{i}_{j}", real=True)) for k, (r, c) in enumerate(shapes)]
    expr = f(*mats)
    point = {}
    for m, v in zip(mats, values):
        flat = [sp.nsimplify(x) for row in (v if isinstance(v[0], list) else [[t] for t in v]) for x in row]
        point.update(zip(list(m), flat))
    return [sp.diff(expr, s).subs(point) for m in mats for s in m]


EXACT = {
    "tanh": lambda W_, X_: sum((X_ * W_).applyfunc(sp.tanh)),
    "sigmoid": lambda W_, X_: sum((X_ * W_).applyfunc(lambda t: 1 / (1 + sp.exp(-t)))),
    "cosine": lambda W_, X_: sum((X_ * W_).applyfunc(sp.cos)),
    "softplus": lambda W_, X_: sum((X_ * W_).applyfunc(lambda t: sp.log(1 + sp.exp(t)))),
}


@pytest.mark.parametrize("name", list(EXACT))
def test_exact_values_are_the_scalar_rule_element_by_element(module: Any, name: str) -> None:
    fn = getattr(module, name)
    tensors = [torch.tensor(v, dtype=torch.float64) for v in POINTS[name]]
    c = sg.trace(fn, *tensors).compare()
    truth = exact_gradient(EXACT[name], [(3, 2), (2, 3)], list(POINTS[name]))
    w_entries = [e for e in c.entries if str(e.wrt).startswith("W")]
    assert len(w_entries) == 6
    for e, t in zip(w_entries, truth[:6]):
        assert e.grad_symbolic is not None
        assert abs(sp.N(e.grad_symbolic - t, 40)) < sp.Float("1e-30")


def causes(c: Any) -> dict[str, str]:
    return {str(e.wrt): e.cause.id for e in c.entries}


def test_a_relu_tie_in_one_element_is_a_kink_on_the_entries_it_decides(module: Any) -> None:
    # X @ W has exactly one zero: element (0, 1) = 1*0 + 0*1 + 2*0 with W[:, 1] = (0, 1, 0).
    Wt = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.0]], dtype=torch.float64)
    Xt = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.25]], dtype=torch.float64)
    assert (Xt @ Wt)[0, 1] == 0 and ((Xt @ Wt) == 0).sum() == 1
    c = sg.compare(module.relu, at={"W": Wt, "X": Xt}, wrt=["W"])
    got = causes(c)
    # the tie decides W[k, 1] through X[0, k]: a kink where X[0, k] != 0 (k = 0, 2); X[0, 1] = 0
    assert got == {"W[0, 0]": "agree", "W[0, 1]": "kink", "W[1, 0]": "agree", "W[1, 1]": "agree",
                   "W[2, 0]": "agree", "W[2, 1]": "kink"}
    kink = next(e for e in c.entries if str(e.wrt) == "W[0, 1]")
    assert kink.grad_executed == 0  # torch: relu'(0) = 0 (the other row's unit is negative)
    assert kink.one_sided is not None and sorted(kink.one_sided) == [0, 1]
    # named in the user's code, with the element on the corner
    assert "`torch.relu(X @ W)`" in kink.explanation and "element [0, 1] of its argument" in kink.explanation


def test_sqrt_at_zero_in_one_element_is_domain_on_that_entry_only(module: Any) -> None:
    c = sg.compare(module.square_root, at={"v": torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)})
    assert [e.cause.id for e in c.entries] == ["agree", "domain", "agree"]
    assert c.entries[0].grad_symbolic is not None
    assert abs(float(c.entries[0].grad_symbolic) - 0.5 / 0.5 ** 0.5) < 1e-15
    assert c.entries[2].grad_autograd == pytest.approx(0.5 / 2 ** 0.5, rel=1e-15)


def test_a_nan_trap_in_one_element_of_a_where(module: Any) -> None:
    # at v = -1 the untaken sqrt is nan and torch's backward multiplies its nan slope by 0;
    # at v = 0 the function has a corner from the right (a vertical tangent); elsewhere smooth
    v = torch.tensor([0.5, 0.0, -1.0, 2.0], dtype=torch.float64)
    c = sg.compare(module.where_sqrt, at={"v": v})
    got = [e.cause.id for e in c.entries]
    assert got[0] == "agree" and got[3] == "agree"
    assert got[2] == "nan-trap"
    assert c.entries[2].grad_executed == 0 and c.entries[2].grad_symbolic == 0
    assert c.entries[2].grad_autograd != c.entries[2].grad_autograd  # nan, as torch gives
    assert got[1] in ("kink", "domain")  # no derivative at the edge of sqrt's domain
    assert c.entries[1].grad_symbolic is None
    assert "`v[1] > 0`" in c.entries[1].explanation  # the element on the threshold
    # each entry's trap is said of its own element: sqrt(-1) is nan in element [2] (the first
    # trapped element, [1], has an infinite slope, and is entry 1's)
    assert "gradient nan in element [2]" in c.entries[2].explanation
    assert "element [1]" not in c.entries[2].explanation
    assert torch.sqrt(v)[2].isnan()


def test_each_trapped_element_names_itself(module: Any) -> None:
    # two traps in one where: sqrt(0) has slope inf (element [1]), sqrt(-1) slope nan (element [3])
    v = torch.tensor([0.5, 0.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    c = sg.compare(module.where_sqrt, at={"v": v.detach()})
    (torch_grad,) = torch.autograd.grad(module.where_sqrt(v), v)
    assert torch_grad[1].isnan() and torch_grad[3].isnan()
    assert "gradient inf in element [1]" in c.entries[1].explanation
    assert "gradient nan in element [3]" in c.entries[3].explanation
    assert "element [1]" not in c.entries[3].explanation


def test_a_jump_to_infinity_in_one_element_of_a_where(module: Any) -> None:
    # where(v > 0, log(v), v) at v[2] = 0: the function is 0 from the left and -inf from the right
    # (a jump), the program ran the piece `v` (slope 1), and torch's backward multiplies log's
    # infinite slope by 0 (nan); the one-sided runs of one element of a vector input (this raised
    # an AttributeError: the side's slope was the whole input's gradient, not the element's)
    v = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    c = sg.compare(module.where_log, at={"v": v.detach()})
    assert [(e.cause.id, tuple(a.id for a in e.also)) for e in c.entries] == [
        ("agree", ()), ("agree", ()), ("jump", ("nan-trap",))]
    assert [e.grad_executed for e in c.entries] == [2, 1, 1]  # 1/v, then the piece v twice
    assert c.entries[2].grad_symbolic is None
    (torch_grad,) = torch.autograd.grad(module.where_log(v), v)
    assert [e.grad_autograd for e in c.entries[:2]] == torch_grad[:2].tolist()
    assert torch_grad[2].isnan() and c.entries[2].grad_autograd != c.entries[2].grad_autograd
    assert "element [2]" in c.entries[2].explanation and "-inf just right" in c.entries[2].explanation


def test_a_comparison_used_as_numbers_is_a_step_with_no_slope(module: Any) -> None:
    c = sg.compare(module.masked, at={"v": torch.tensor([0.5, 0.0, -1.0, 2.0], dtype=torch.float64)})
    assert [e.cause.id for e in c.entries] == ["agree", "kink", "agree", "agree"]
    assert [e.grad_executed for e in c.entries] == [1, 0, 0, 1]


def test_a_comparison_of_tensors_is_a_mask_and_a_condition_of_none(tmp_path: Path) -> None:
    from symgrad.frontends import torch_names as tn
    A = sp.MatrixSymbol("A", 2, 1)
    mask = tn.compare(sp.StrictGreaterThan, A, sp.Integer(0))
    assert tn.is_mask(mask) and mask.shape == (2, 1)
    assert tn.as_numbers(mask).function.expr == sp.Piecewise((1, mask.function.expr), (0, True))
    mod = load_module("import torch\n\ndef f(v):\n    if v > 0:\n        return v.sum()\n    return -v.sum()\n", tmp_path)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert "Fix:" in str(err.value) and "if v > 0:" in str(err.value)


def test_item_of_a_tensor_of_several_elements_is_a_sentence(tmp_path: Path) -> None:
    mod = load_module("import torch\n\ndef f(v):\n    return v * v.item()\n", tmp_path)
    with pytest.raises(sg.SymgradError) as err:
        sg.trace(mod.f, torch.tensor([1.0, 2.0], dtype=torch.float64))
    text = str(err.value)
    assert "`.item()` of a tensor of 2 elements" in text and "Fix:" in text


def test_the_generated_program_is_one_torch_call_per_op(module: Any) -> None:
    traced = sg.trace(module.where_sqrt, torch.tensor(V, dtype=torch.float64))
    source = traced.compare().lowered.source
    assert "torch.sqrt(v)" in source
    assert "torch.where(v > 0, " in source
    assert source.count("torch.") <= 4  # sqrt, where, the sum; no per-element stack
