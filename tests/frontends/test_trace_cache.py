"""What a reading at a new point takes from an earlier reading of the same function
(`frontends/trace_cache.py`), and the fidelity check's two backward passes made by one call of
torch's engine (`trace._backward_both`).

Kept: the translation, the program it lowered to, whether that has a loop, and the names each code
object reads. None of it may answer for another function, closure, global, dtype or point. Oracles:
torch itself (the user's function run by hand, bit for bit) and the derivative written out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

import symgrad as sg
from symgrad.frontends import trace as reading
from symgrad.frontends import trace_cache

from tests.user_code import load_module


def by_hand(fn: Any, *values: torch.Tensor) -> tuple[float, list[float]]:
    """torch's own value and gradient of fn (of its sum) at fresh leaves of `values` (0 where none reaches a leaf)."""
    leaves = [v.detach().clone().requires_grad_(True) for v in values]
    with torch.enable_grad():
        out = fn(*leaves)
        grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    return float(out.detach().sum()), [0.0 if g is None else float(e) for g, t in zip(grads, leaves)
                                       for e in (t.reshape(-1) * 0 if g is None else g.reshape(-1))]


def make_scaled(k: float) -> Any:
    def scaled(x):  # noqa: ANN001, ANN202 - the same code object for every k, another closure cell
        return torch.sin(x) * k
    return scaled


def test_the_same_code_with_another_closure_cell_is_read_again() -> None:
    """Two closures of one code object: each reading holds its own constant (k cos x), never the other's."""
    two, three = make_scaled(2.0), make_scaled(3.0)
    assert two.__code__ is three.__code__
    x = 0.7
    a, b = sg.trace(two, x), sg.trace(three, x)
    assert a.program is not b.program and a.fidelity.run.lowered is not b.fidelity.run.lowered
    for fn, k, traced in ((two, 2.0, a), (three, 3.0, b)):
        (e,) = traced.compare().entries
        _, (g,) = by_hand(fn, torch.tensor(x, dtype=torch.float64))
        assert e.grad_autograd == g == traced.fidelity.grad_user[0]
        assert float(e.grad_symbolic) == pytest.approx(k * math.cos(x), rel=1e-15)


def test_a_global_that_comes_to_shadow_a_builtin_reads_the_function_again(tmp_path: Path) -> None:
    """`abs(x)` read as Python's abs; then the module defines its own `abs` (triple): the
    function is read again, with the new one (the key looks names up in the globals at each call)."""
    mod = load_module("import torch\n\ndef triple(v):\n    return v * 3\n\ndef f(x):\n    return abs(x) * 2\n", tmp_path)
    x = torch.tensor(-0.5, dtype=torch.float64)
    first = sg.trace(mod.f, x)
    (e,) = first.compare().entries
    assert first.mode == "source" and e.grad_autograd == by_hand(mod.f, x)[1][0] == -2.0
    mod.abs = mod.triple
    again = sg.trace(mod.f, x)
    (e,) = again.compare().entries
    assert again.mode == "source" and again.program is not first.program
    assert e.grad_autograd == by_hand(mod.f, x)[1][0] == 6.0 and float(e.grad_symbolic) == 6.0


def test_the_lowered_program_is_kept_with_its_translation_per_dtype(tmp_path: Path) -> None:
    """At a new point the translation and its lowered program are the ones read before; another
    dtype is another translation and program, each in its own dtype, each torch's own bits."""
    mod = load_module("import torch\n\ndef f(W, b):\n    return torch.tanh(W * 3.0 + b).sum() / 4\n", tmp_path)
    reading.clear_cache()
    g = torch.Generator().manual_seed(3)
    W, b = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)
    first = sg.trace(mod.f, W, b)
    again = sg.trace(mod.f, W + 0.125, b)
    assert again.program is first.program and again.fidelity.run.lowered is first.fidelity.run.lowered
    assert again.fidelity.grad_user == again.fidelity.grad_translated == by_hand(mod.f, W + 0.125, b)[1]
    single = sg.trace(mod.f, W.float(), b.float())
    assert single.dtype == "float32" and single.fidelity.run.lowered is not first.fidelity.run.lowered
    assert single.fidelity.run.lowered.dtype == "float32"
    assert single.fidelity.grad_user == single.fidelity.grad_translated == by_hand(mod.f, W.float(), b.float())[1]
    expected = [3 * (1 - math.tanh(3 * float(W[i, j]) + float(b[j])) ** 2) / 4 for i in range(3) for j in range(2)]
    assert list(first.fidelity.grad_user[:6]) == pytest.approx(expected, rel=1e-14)
    key = next(iter(trace_cache._ENTRIES))
    assert trace_cache._ENTRIES[key].lowered is first.fidelity.run.lowered
    reading.clear_cache()
    assert sg.trace(mod.f, W, b).fidelity.run.lowered is not first.fidelity.run.lowered  # lowered again


def test_a_loop_is_still_guarded_when_the_reading_is_kept(tmp_path: Path) -> None:
    """Whether the program has a loop is kept with it: at a point where the loop does not end, the
    second reading says so as the first would (D2L's loop at 0 doubles 0 for ever)."""
    mod = load_module("import torch\n\ndef f(a):\n    b = a * 2\n    while b.norm() < 1000:\n        b = b * 2\n"
                      "    return b\n", tmp_path)
    reading.clear_cache()
    t = sg.trace(mod.f, 0.3)
    assert t.compare().entries[0].grad_autograd == by_hand(mod.f, torch.tensor(0.3, dtype=torch.float64))[1][0]
    with pytest.raises(sg.LoopLimitError) as err:
        sg.trace(mod.f, 0.0)
    assert "does not end" in str(err.value)


def several_inputs(x, y, z):  # noqa: ANN001, ANN201 - z reaches nothing: its gradient is torch's None, read as 0
    return torch.exp(x) * y + torch.sin(y * x) + 0 * torch.tanh(z).detach()


def matrix_output(W, v):  # noqa: ANN001, ANN201
    return torch.sigmoid(W * v) * W


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_both_runs_backward_passes_in_one_engine_call_are_torchs_own(dtype: torch.dtype) -> None:
    """The user's run and the translation's, differentiated by one engine call: each gradient is
    torch's own of that run alone, bit for bit (a scalar output and a matrix output, an input no
    path reaches)."""
    x, y, z = (torch.tensor(v, dtype=dtype) for v in (0.3, -1.25, 2.0))
    t = sg.trace(several_inputs, x, y, z)
    assert t.fidelity.ok and t.mode == "source"
    assert t.fidelity.grad_user == t.fidelity.grad_translated == by_hand(several_inputs, x, y, z)[1]
    assert t.fidelity.grad_user[2] == 0.0
    g = torch.Generator().manual_seed(5)
    W, v = torch.randn(3, 2, generator=g).to(dtype), torch.randn(2, generator=g).to(dtype)
    m = sg.trace(matrix_output, W, v)
    assert m.fidelity.ok and m.fidelity.grad_user == m.fidelity.grad_translated == by_hand(matrix_output, W, v)[1]
    (e,) = [e for e in sg.trace(several_inputs, x, y, z).compare().entries if e.wrt.name == "x"]
    exact = math.exp(float(x)) * float(y) + math.cos(float(y) * float(x)) * float(y)
    assert float(e.grad_symbolic) == pytest.approx(exact, rel=1e-6 if dtype == torch.float32 else 1e-15)


def test_a_user_default_dtype_other_than_the_compared_one_runs_each_backward_on_its_own() -> None:
    """The user's default dtype float32, the compared dtype float64: the translation's backward
    runs with float64 as the default, the user's with the user's (two engine calls); the
    gradients are still torch's own, and the default dtype is the user's again after."""
    x, y, z = (torch.tensor(v, dtype=torch.float64) for v in (0.3, -1.25, 2.0))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        t = sg.trace(several_inputs, x, y, z)
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(previous)
    assert t.fidelity.ok and t.fidelity.grad_user == t.fidelity.grad_translated == by_hand(several_inputs, x, y, z)[1]


def exp_then_in_place(x):  # noqa: ANN001, ANN201 - exp's backward reads its result, changed in place
    y = torch.exp(x)
    z = y * 2
    y.mul_(3)
    return z.sum()


def test_an_error_of_your_runs_backward_is_said_of_your_run() -> None:
    """torch refuses the user's backward (a saved value changed in place); the translation's own
    backward is still made and recorded (2 e^x): the check says which run had no gradient."""
    x = torch.tensor([0.5, 1.0], dtype=torch.float64)
    with pytest.raises(sg.TraceError) as err:
        sg.trace(exp_then_in_place, x)
    fidelity = err.value.fidelity
    assert fidelity.grad_user is None
    assert list(fidelity.grad_translated) == [2 * math.exp(0.5), 2 * math.exp(1.0)]
    assert "the gradient is none (no gradient) in your function but (3.2974425414002564, 5.43656365691809) in the " \
           "translation" in str(err.value)
    leaf = x.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(exp_then_in_place(leaf), leaf)
