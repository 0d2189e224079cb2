"""Path mode (a recorded run, for code without source) reads the indices of `torch.argmax`,
`v.argmax(dim=)` and `torch.argmax(M, dim=1, keepdim=True)` as source mode does (issue 22): integer
data, the comparisons torch made, so that a value they select is the right piece away from a tie
and a branch on its threshold at one.

Ground truth: torch itself (`torch.autograd.grad` of the user's function, bit for bit, float64 and
float32), SymPy (the derivative of the piece the argmax selects, written out here), and the source
reader's verdict of the same function (defined in this file), which must match the recorded run's.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad import Cause

DTYPES = [torch.float64, torch.float32]


def select_by_argmax(x, y, z):
    v = torch.stack([x * 2, y, torch.sin(z)])
    i = torch.argmax(v)
    return v[i] * x


def method_argmax_and_max(x, y, z):
    v = torch.stack([x * 2, y, torch.sin(z)])
    i = v.argmax()
    return v[i] + v.max()


def gather_rows(x, y, z):
    M = torch.stack([torch.stack([x, y]), torch.stack([z, x * y])])
    i = M.argmax(dim=1)
    return M.gather(1, i.unsqueeze(1)).sum()


def keepdim_gather(x, y, z):
    M = torch.stack([torch.stack([x, y]), torch.stack([z, x * y])])
    i = torch.argmax(M, dim=1, keepdim=True)
    return torch.gather(M, 1, i).sum()


def one_hot_weights(x, y, z):
    M = torch.stack([torch.stack([x, y, z]), torch.stack([z, x, y * y])])
    i = M.argmax(dim=1)
    return (F.one_hot(i, 3).to(M.dtype) * M).sum()


def max_unpacked(x, y, z):
    M = torch.stack([torch.stack([x, y]), torch.stack([z, x * y])])
    v, i = M.max(dim=1)
    return v.sum() + M.gather(1, i.unsqueeze(1)).sum()


def max_values(x, y, z):
    M = torch.stack([torch.stack([x, y]), torch.stack([z, x * y])])
    return M.max(dim=1).values.sum()


def rows_by_range(x, y, z):
    M = torch.stack([torch.stack([x, y]), torch.stack([z, x * y])])
    i = M.argmax(dim=1)
    return M[range(2), i].sum()


def recorded(fn: Any) -> Any:
    """The same function without source: symgrad can only record a run of it (path mode)."""
    ns: dict[str, Any] = {"torch": torch, "F": F}
    exec(textwrap.dedent(inspect.getsource(fn)), ns)
    return ns[fn.__name__]


def math_of(fn: Any, point: dict[str, float]) -> list[sp.Expr]:
    """The derivative of the piece the argmax picks at the point (off every tie), by SymPy."""
    x, y, z = (sp.Symbol(n, real=True) for n in "xyz")
    at = {x: sp.nsimplify(point["x"]), y: sp.nsimplify(point["y"]), z: sp.nsimplify(point["z"])}

    def first(vals: list[sp.Expr]) -> sp.Expr:
        nums = [float(v.subs(at)) for v in vals]
        return vals[nums.index(max(nums))]

    if fn is select_by_argmax:
        f = first([2 * x, y, sp.sin(z)]) * x
    elif fn is method_argmax_and_max:
        f = 2 * first([2 * x, y, sp.sin(z)])
    elif fn in (gather_rows, keepdim_gather, max_values, rows_by_range):
        f = first([x, y]) + first([z, x * y])
    elif fn is max_unpacked:
        f = 2 * (first([x, y]) + first([z, x * y]))
    else:
        f = first([x, y, z]) + first([z, x, y * y])
    return [sp.diff(f, s).subs(at) for s in (x, y, z)]


POINT = {"x": 0.5, "y": 2.0, "z": 1.5}  # no ties anywhere


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [select_by_argmax, method_argmax_and_max, gather_rows, keepdim_gather, one_hot_weights,
                                max_unpacked, max_values, rows_by_range])
def test_the_recorded_run_reads_an_argmax_as_the_source_reader_does(fn: Any, dtype: torch.dtype) -> None:
    args = [torch.tensor(POINT[n], dtype=dtype) for n in "xyz"]
    path = sg.trace(recorded(fn), *args)
    assert path.mode == "path"
    c = path.compare()
    assert c.ok and c.cause is Cause.AGREE
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves, allow_unused=True)
    assert [e.grad_autograd for e in c.entries] == [0.0 if g is None else float(g) for g in grads]
    for e, truth in zip(c.entries, math_of(fn, POINT)):
        assert sp.sympify(str(e.grad_symbolic)) == truth and sp.sympify(str(e.grad_executed)) == truth
    source = sg.trace(fn, *args).compare()
    assert [str(e.grad_symbolic) for e in source.entries] == [str(e.grad_symbolic) for e in c.entries]


@pytest.mark.parametrize("fn, point", [
    (gather_rows, {"x": 0.5, "y": 2.0, "z": 1.0}),  # row 1: z == x*y, a tie
    (select_by_argmax, {"x": 1.0, "y": 2.0, "z": 0.5}),  # 2x == y
    (max_unpacked, {"x": 2.0, "y": 2.0, "z": 0.5}),  # row 0: x == y
], ids=["gather-tie", "argmax-tie", "max-dim-tie"])
def test_at_a_tie_the_recorded_run_names_the_threshold_as_source_mode_does(fn: Any, point: dict[str, float]) -> None:
    args = [torch.tensor(point[n], dtype=torch.float64) for n in "xyz"]
    c = sg.trace(recorded(fn), *args).compare()
    source = sg.trace(fn, *args).compare()
    assert c.cause is not Cause.AGREE and c.cause is source.cause
    assert [e.cause for e in c.entries] == [e.cause for e in source.entries]
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(fn(*leaves), leaves, allow_unused=True)
    assert [e.grad_autograd for e in c.entries] == [0.0 if g is None else float(g) for g in grads]


def compared_with_a_label(x, y, z):
    v = torch.stack([x, y, z])
    i = torch.argmax(v)
    return (i == 1).float() * x + v[i]


def test_an_index_used_as_a_number_is_the_source_readers_sentence() -> None:
    args = [torch.tensor(v, dtype=torch.float64) for v in (0.5, 2.0, 1.0)]
    with pytest.raises(sg.TraceError) as err:
        sg.trace(recorded(compared_with_a_label), *args)
    text = str(err.value)
    assert "Path mode cannot record this run: The indices of `torch.argmax` are integer data" in text
    assert "Fix:" in text
