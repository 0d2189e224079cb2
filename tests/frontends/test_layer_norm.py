"""`F.layer_norm(x, (C,), weight, bias, eps)` and `nn.LayerNorm(C)` (issue 20: D2L's normalisation
and attention chapters), read as torch computes them: each row (a vector's one row) normalised
with its mean and *biased* variance, eps inside the square root, then times w plus b.

Ground truth: torch itself, bit for bit (the fidelity check, and every entry's autograd value
against `torch.autograd.grad` of the user's own function), in float64 and float32; and
`sympy.diff` of (x - mean)/sqrt(var + eps)*w + b written out here, at the exact rational point
(both exact sides). A row of equal values (variance 0) is inside the smooth function (eps > 0).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from torch import nn

import symgrad as sg

DTYPES = [torch.float64, torch.float32]
torch.manual_seed(21)
WEIGHTS = torch.randn(3, 4, dtype=torch.float64)


def exact(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v))


def affine(x, w, b):
    return (F.layer_norm(x, (4,), w, b, 1e-5) * WEIGHTS.to(x.dtype)).sum()


def plain(x):
    return torch.tanh(F.layer_norm(x, (x.shape[-1],), eps=1e-3)).sum()


def weight_only(x, w):
    return (F.layer_norm(x, [4], weight=w) ** 2 * WEIGHTS.to(x.dtype)).sum()


def vector(v, w, b):
    return (F.layer_norm(v, v.shape, w, b) * WEIGHTS[0].to(v.dtype)).sum()


def normed(rows: list[list[sp.Basic]], w: Any, b: Any, eps: sp.Rational) -> list[list[sp.Expr]]:
    out = []
    for row in rows:
        mean = sp.Add(*row) / len(row)
        var = sp.Add(*[(u - mean) ** 2 for u in row]) / len(row)
        out.append([(u - mean) / sp.sqrt(var + eps) * (w[j] if w else 1) + (b[j] if b else 0) for j, u in enumerate(row)])
    return out


def check(fn: Any, inputs: dict[str, torch.Tensor], math: Any) -> sg.Comparison:
    args = list(inputs.values())
    t = sg.trace(fn, *args)
    assert t.mode == "source" and t.fidelity.ok, t.fidelity.detail
    c = t.compare()
    assert "torch.nn.functional.layer_norm(" in c.lowered.source
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves)
    assert [e.grad_autograd for e in c.entries] == [float(v) for g in grads for v in g.reshape(-1)]
    syms = {name: [[sp.Symbol(f"{name}[{i}, {j}]" if a.dim() == 2 else f"{name}[{j}, 0]", real=True)
                    for j in range(a.shape[-1])] for i in range(a.shape[0] if a.dim() == 2 else 1)]
            for name, a in inputs.items()}
    flat = [s for rows in syms.values() for r in rows for s in r]
    values = [exact(float(v)) for a in args for v in a.to(torch.float64).reshape(-1)]
    at = dict(zip(flat, values))
    f = math(syms)
    assert [str(e.wrt) for e in c.entries] == [str(s) for s in flat]
    for e, s in zip(c.entries, flat):
        truth = sp.diff(f, s).subs(at).evalf(40)
        for side in (e.grad_symbolic, e.grad_executed):
            got = sp.sympify(str(side)).evalf(40)
            assert abs(got - truth) <= sp.Float("1e-25") * max(1, abs(truth)), (str(s), side, truth)
    return c


def weighted(rows: list[list[sp.Expr]], dtype: torch.dtype, k: int = 0) -> sp.Expr:
    w = WEIGHTS.to(dtype)
    return sum(v * exact(float(w[i + k, j])) for i, r in enumerate(rows) for j, v in enumerate(r))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm_with_weight_and_bias_is_torchs_call(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    x, w, b = torch.randn(3, 4, dtype=dtype), torch.randn(4, dtype=dtype), torch.randn(4, dtype=dtype)
    x[1] = 0.75  # a row of equal values: variance 0, inside the smooth function (eps > 0)
    E = exact(float(torch.tensor(1e-5, dtype=torch.float64)))
    c = check(affine, {"x": x, "w": w, "b": b},
              lambda s: weighted(normed(s["x"], s["w"][0], s["b"][0], E), dtype))
    assert c.ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm_without_affine_and_with_weight_only(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    x, w = torch.randn(3, 4, dtype=dtype), torch.randn(4, dtype=dtype)
    c = check(plain, {"x": x}, lambda s: sum(sp.tanh(v) for r in normed(s["x"], None, None, exact(1e-3)) for v in r))
    assert c.ok
    E = exact(1e-5)
    c = check(weight_only, {"x": x, "w": w},
              lambda s: weighted([[v ** 2 for v in r] for r in normed(s["x"], s["w"][0], None, E)], dtype))
    assert c.ok


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm_of_a_vector(dtype: torch.dtype) -> None:
    torch.manual_seed(3)
    v, w, b = torch.randn(4, dtype=dtype), torch.randn(4, dtype=dtype), torch.randn(4, dtype=dtype)
    c = check(vector, {"v": v, "w": w, "b": b},
              lambda s: weighted(normed(s["v"], s["w"][0], s["b"][0], exact(1e-5)), dtype))
    assert c.ok and ".reshape(4, 1)" in c.lowered.source


class Block(nn.Module):
    def __init__(self, affine: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4, elementwise_affine=affine)

    def forward(self, x):
        return torch.tanh(self.norm(self.fc(x))).sum()


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
def test_nn_layer_norm_as_a_module_attribute_is_torchs(affine: bool) -> None:
    torch.manual_seed(4)
    model = Block(affine).double()
    if affine:
        with torch.no_grad():
            model.norm.weight.normal_()
            model.norm.bias.normal_()
    x = torch.randn(5, 3, dtype=torch.float64)
    c = sg.compare(model, x)
    assert c.ok, c
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(model(x), list(params.values()))
    by_name = {name: g.reshape(-1).tolist() for name, g in zip(params, grads)}
    got: dict[str, list[float]] = {}
    for e in c.entries:
        got.setdefault(str(e.wrt).split("[")[0], []).append(e.grad_autograd)
    assert {k.replace(".", "_"): v for k, v in by_name.items()} == {k.replace(".", "_"): v for k, v in got.items()}
    assert any("norm" in str(e.wrt) for e in c.entries) is affine


GLOBAL_NORM = nn.LayerNorm(4, elementwise_affine=False).double()


def with_global(x):
    return (GLOBAL_NORM(x) * WEIGHTS.to(x.dtype)).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_global_layer_norm_without_parameters_is_read(dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    x = torch.randn(3, 4, dtype=dtype)
    c = check(with_global, {"x": x}, lambda s: weighted(normed(s["x"], None, None, exact(1e-5)), dtype))
    assert c.ok


def whole_matrix(x):
    return F.layer_norm(x, x.shape).sum()


def rank3(x):
    return F.layer_norm(x.reshape(2, 3, 2), (2,)).sum()


def no_eps(x):
    return F.layer_norm(x, (3,), eps=0.0).sum()


def short_weight(x, w):
    return F.layer_norm(x, (3,), w).sum()


@pytest.mark.parametrize("fn, shapes, words", [
    (whole_matrix, [(4, 3)], "the input has shape (4, 3) and normalized_shape is (4, 3)"),
    (rank3, [(4, 3)], "3 dimensions"),
    (no_eps, [(4, 3)], "`F.layer_norm(..., eps=0.0)`: symgrad reads eps as a constant number > 0"),
    (short_weight, [(4, 3), (2,)], "`F.layer_norm`'s weight must be a tensor of shape (3,)"),
], ids=["whole-matrix", "rank-3", "eps-0", "weight-shape"])
def test_what_symgrad_does_not_read_is_a_sentence(fn: Any, shapes: list[tuple[int, ...]], words: str) -> None:
    with pytest.raises(sg.TraceError) as err:
        sg.trace(fn, *[torch.randn(*s, dtype=torch.float64) for s in shapes])
    assert words in str(err.value) and "Fix:" in str(err.value), str(err.value)
