"""The fidelity check's leaf tensors (`trace._tensor`) are what `torch.from_numpy(a).to(dtype,
copy=True)` and `torch.tensor(v, dtype)` make: the same bits (-0.0, subnormals), dtype, shape,
strides (a Fortran-ordered point stays so), memory of their own, requiring grad. A traced
function's gradient is torch's own at such a point."""

from __future__ import annotations

import math
import struct

import numpy as np
import torch
from hypothesis import given, settings, strategies as st

import symgrad as sg
from symgrad.frontends import trace

DOUBLES = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([-0.0, 5e-324, -2.2250738585072014e-308]))


def _old(value: object, rank1: bool, dtype: str) -> torch.Tensor:
    dt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    t = torch.from_numpy(value).to(dt, copy=True) if isinstance(value, np.ndarray) else torch.tensor(value, dtype=dt)
    return (t.reshape(-1) if rank1 else t).requires_grad_(True)


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
    assert a.requires_grad and b.requires_grad and a.is_leaf and b.is_leaf
    assert a.detach().numpy().tobytes() == b.detach().numpy().tobytes()


@settings(max_examples=200, deadline=None)
@given(DOUBLES, st.sampled_from(["float64", "float32"]))
def test_a_scalar_leaf_is_torch_tensors(v: float, dtype: str) -> None:
    if dtype == "float32" and abs(v) > 3.4e38:
        return  # (torch.tensor rounds it to inf; no finite point of float32)
    _same(trace._tensor(v, False, dtype), _old(v, False, dtype))
    assert struct.pack("<d", trace._tensor(v, False, "float64").item()) == struct.pack("<d", v)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.data(), st.sampled_from(["float64", "float32"]),
       st.sampled_from(["C", "F"]), st.booleans())
def test_an_array_leaf_is_torchs_copy(rows: int, cols: int, data: st.DataObject, dtype: str, order: str,
                                      rank1: bool) -> None:
    values = data.draw(st.lists(st.floats(-1e30, 1e30, allow_nan=False), min_size=rows * cols, max_size=rows * cols))
    a = np.array(np.array(values, dtype=np.float64).reshape(rows, cols), order=order)
    if rank1:
        a = np.array(a.reshape(-1, 1))
    got = trace._tensor(a, rank1, dtype)
    _same(got, _old(a, rank1, dtype))
    assert not np.shares_memory(got.detach().numpy(), a)  # its own memory: the user's array is never written


def _loss(w: torch.Tensor, x: float) -> torch.Tensor:
    return (torch.sin(w.T) * x).sum() * x


def test_a_fortran_ordered_point_reads_as_torch_does() -> None:
    w = np.asfortranarray(np.array([[0.5, -0.0], [1e-310, 2.0], [3.0, -4.0]]))
    c = sg.compare(_loss, at=(torch.from_numpy(w), 0.7))
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(wt, 0.7), wt)
    assert c.ok
    by = {str(e.wrt): e for e in c.entries}
    for i in range(3):
        for j in range(2):
            e = by[f"w[{i}, {j}]"]
            assert e.grad_autograd == g[i, j].item()
            assert math.isclose(float(e.grad_symbolic), math.cos(w[i, j]) * 0.7 * 0.7, rel_tol=1e-15, abs_tol=1e-300)
