"""Every spelling of a row the table has is read (issue 22, item 3, in part): the inverse
trigonometric and hyperbolic functions under both names, atan2, and the function spellings of
the operators (torch.add, subtract, multiply, div, pow, neg, mm, mv, det). Each is read in source
mode, and its translation's forward value and gradient equal the user's torch code bit for bit
(the fidelity check), in float64 and float32; the gradient is also checked against torch here."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch

import symgrad as sg
from user_code import load_module

SOURCE = textwrap.dedent('''
    import torch

    def f_cosh(x): return torch.cosh(x) * x
    def f_sinh(x): return x.sinh() + 1
    def f_arcsin(x): return torch.arcsin(x)
    def f_asin(x): return x.asin()
    def f_acos(x): return x.acos() * 2
    def f_arccos(x): return torch.arccos(x)
    def f_arctan(x): return torch.arctan(x * 3)
    def f_atan(x): return x.atan()
    def f_atan2(x, y): return torch.atan2(x, y)
    def f_arctan2(x, y): return torch.arctan2(y, x)
    def f_add(x, y): return torch.add(x, y) * x
    def f_sub(x, y): return torch.subtract(x, y) ** 2
    def f_mul(x, y): return torch.multiply(x, y) + x.mul(y)
    def f_div(x, y): return torch.div(x, y) + torch.divide(y, x)
    def f_pow(x): return torch.pow(x, 3) + x.pow(2)
    def f_neg(x): return torch.neg(x) * x + torch.negative(x)
    def f_mm(A, B): return torch.mm(A, B).sum()
    def f_mv(A, v): return torch.mv(A, v).sum()
    def f_det(A): return torch.linalg.det(A) + torch.det(A)
    def f_alpha(x, y): return torch.add(x, y, alpha=2)
''')

POINTS: dict[str, tuple[Any, ...]] = {
    "f_cosh": (0.7,), "f_sinh": (0.7,), "f_arcsin": (0.3,), "f_asin": (-0.6,), "f_acos": (0.3,), "f_arccos": (-0.2,),
    "f_arctan": (0.3,), "f_atan": (-2.0,), "f_atan2": (0.3, -0.5), "f_arctan2": (0.3, -0.5), "f_add": (0.3, 0.5),
    "f_sub": (0.3, 0.5), "f_mul": (0.3, 0.5), "f_div": (0.3, 0.5), "f_pow": (0.7,), "f_neg": (0.7,),
    "f_mm": ([[1.0, 2.0], [3.0, 4.0]], [[0.5, 1.0], [-1.0, 2.0]]), "f_mv": ([[1.0, 2.0], [3.0, 4.0]], [0.5, -1.0]),
    "f_det": ([[2.0, 1.0], [0.5, 3.0]],),
}


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(SOURCE, tmp_path_factory.mktemp("spellings"), "user_spellings")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(POINTS))
def test_each_spelling_is_read_and_reproduces_torch(module: Any, name: str, dtype: torch.dtype) -> None:
    fn = getattr(module, name)
    tensors = [torch.tensor(v, dtype=dtype) for v in POINTS[name]]
    traced = sg.trace(fn, *tensors)
    assert traced.mode == "source", traced.reason
    assert traced.fidelity.ok
    c = traced.compare()
    assert c.dtype == ("float64" if dtype == torch.float64 else "float32")
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    grads = torch.autograd.grad(fn(*leaves), leaves)
    expected = [float(v) for g in grads for v in g.reshape(-1)]
    assert [e.grad_autograd for e in c.entries] == expected
    assert c.cause.id in ("agree", "rounding")  # smooth at these points


def test_a_keyword_that_changes_the_operation_is_a_sentence(module: Any) -> None:
    with pytest.raises(sg.TraceError) as info:
        sg.trace(module.f_alpha, 0.3, 0.5)
    text = str(info.value)
    assert "user_spellings.py:23" in text and "torch.add(x, y, alpha=2)" in text
    assert "`torch.add` is read with 2 tensor arguments and no keywords; this call has 2 arguments, alpha=" in text
    assert "Fix: write the operator itself, or drop the keyword." in text
