"""`read_point` gives each input as the tensor of the compared dtype holds it: in float64 the
floats themselves (no tensor made: -0.0, subnormals and the last bit kept), in float32 rounded
as torch rounds them; the matrix is the caller's own copy."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch
from hypothesis import given, settings, strategies as st

from symgrad.sides.lowering import lower
from symgrad.verdict.point import read_point

x = sp.Symbol("x", real=True)
A = sp.MatrixSymbol("A", 2, 2)
FLOATS = st.one_of(st.floats(-1e30, 1e30, allow_nan=False), st.sampled_from([-0.0, 5e-324, 0.1, 1 / 3]))


@settings(max_examples=100, deadline=None)
@given(FLOATS, st.lists(FLOATS, min_size=4, max_size=4), st.sampled_from(["float64", "float32"]))
def test_a_point_is_what_the_tensor_of_the_dtype_holds(xv: float, av: list[float], dtype: str) -> None:
    lowered = lower(sp.Add(x, sp.Trace(A)), dtype=dtype)  # type: ignore[arg-type]
    given_a = np.array(av, dtype=np.float64).reshape(2, 2)
    values = dict(zip([s.name for s in lowered.symbols], read_point(lowered, {x: xv, A: given_a}, dtype)))
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    want_x = torch.tensor(xv, dtype=torch_dtype).item()
    assert values["x"] == want_x and math.copysign(1, values["x"]) == math.copysign(1, want_x)
    want_a = torch.tensor(given_a, dtype=torch_dtype).to(torch.float64).numpy()
    assert values["A"].tobytes() == want_a.tobytes()
    assert values["A"] is not given_a and not np.shares_memory(values["A"], given_a)
