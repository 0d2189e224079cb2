"""The catalogue of matrix cases, shared by the tests of every layer: each a SymPy function of
matrices, a point, and hand-written torch code as the oracle (`tests/verdict/test_matrices.py`
compares them; `tests/sides/test_lowering.py` holds a golden program for each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp
import torch

from symgrad import elementwise

X = sp.MatrixSymbol("X", 2, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 2, 1)
o = sp.MatrixSymbol("o", 3, 1)
A = sp.MatrixSymbol("A", 2, 2)
x0, x1, x2 = sp.symbols("x0 x1 x2")

X_VAL = [[1.0, 2.0], [3.0, 4.0]]
A_VAL = [[2.0, 1.0], [0.5, 3.0]]


@dataclass(frozen=True)
class MatrixCase:
    name: str
    expr: Any
    at: dict[Any, Any]
    torch_fn: Any  # hand-written torch code, the oracle for autograd and the executed side
    explicit: Any = None  # the function on explicit element-symbol matrices, where doit() cannot


LOSS = sp.Rational(1, 2) * ((X * w - y).T * (X * w - y))
naive_ce = -sp.log(sp.exp(o[1, 0]) / (sp.exp(o[0, 0]) + sp.exp(o[1, 0]) + sp.exp(o[2, 0])))
m = sp.Max(o[0, 0], o[1, 0], o[2, 0])
lse_ce = sp.log(sp.exp(o[0, 0] - m) + sp.exp(o[1, 0] - m) + sp.exp(o[2, 0] - m)) + m - o[1, 0]

MATRIX_CASES = [
    MatrixCase("mat_quadratic_loss", LOSS, {X: X_VAL, w: [[1.0], [-1.0]], y: [[0.0], [1.0]]},
               lambda X, w, y: (0.5 * (X @ w - y).T @ (X @ w - y))[0, 0]),
    MatrixCase("mat_trace_inverse", sp.Trace((A + sp.Identity(2)).inverse()), {A: A_VAL},
               lambda A: torch.trace(torch.linalg.inv(A + torch.eye(2, dtype=torch.float64))),
               lambda m: (m["A"] + sp.eye(2)).inv().trace()),
    MatrixCase("mat_det_pow", sp.Determinant(A**2), {A: A_VAL}, lambda A: torch.linalg.det(torch.linalg.matrix_power(A, 2))),
    # scalar rules on every element (issue 20): a kink, a fused op, n matrices broadcast, a where
    MatrixCase("mat_relu_each", sp.Trace(A * (A - X).applyfunc(lambda t: sp.Max(t, 0))), {A: A_VAL, X: X_VAL},
               lambda A, X: torch.trace(A @ torch.relu(A - X)),
               lambda m: (m["A"] * (m["A"] - m["X"]).applyfunc(lambda t: sp.Max(t, 0))).trace()),
    MatrixCase("mat_elementwise_broadcast", sp.Trace(elementwise(lambda a, b: a * sp.tanh(b) + b, A, w.T)), {A: A_VAL, w: [[0.5], [-1.0]]},
               lambda A, w: torch.trace(A * torch.tanh(w.T) + w.T),
               lambda m: sp.Matrix(2, 2, lambda i, j: m["A"][i, j] * sp.tanh(m["w"][j, 0]) + m["w"][j, 0]).trace()),
    MatrixCase("mat_elementwise_where", sp.Trace(elementwise(lambda a: sp.Piecewise((sp.sqrt(a), a > 1), (a**2, True)), A)), {A: A_VAL},
               lambda A: torch.trace(torch.where(A > 1, torch.sqrt(A), A ** 2)),
               lambda m: sp.Matrix(2, 2, lambda i, j: sp.Piecewise((sp.sqrt(m["A"][i, j]), m["A"][i, j] > 1), (m["A"][i, j]**2, True))).trace()),
    MatrixCase("mat_hadamard_exp", sp.Trace(sp.HadamardProduct(A, A.applyfunc(sp.exp))), {A: A_VAL},
               lambda A: torch.trace(A * torch.exp(A))),
    MatrixCase("mat_hadamard_square", sp.Trace(A * sp.HadamardProduct(A, A)), {A: A_VAL},
               lambda A: torch.trace(A @ (A ** 2)), lambda m: (m["A"] * m["A"].applyfunc(lambda t: t**2)).trace()),
    MatrixCase("mat_ones_zeros", sp.OneMatrix(1, 2) * (A + sp.ZeroMatrix(2, 2)) * sp.OneMatrix(2, 1), {A: A_VAL},
               lambda A: (torch.ones(1, 2, dtype=torch.float64) @ A @ torch.ones(2, 1, dtype=torch.float64))[0, 0],
               lambda m: (sp.ones(1, 2) * m["A"] * sp.ones(2, 1))[0, 0]),
    MatrixCase("mat_cross_entropy_naive", naive_ce, {o: [[1.0], [2.0], [0.5]]},
               lambda o: -torch.log(torch.exp(o[1, 0]) / torch.exp(o).sum())),
    MatrixCase("mat_cross_entropy_lse", lse_ce, {o: [[1.0], [2.0], [0.5]]},
               lambda o: torch.logsumexp(o[:, 0], 0) - o[1, 0]),
]


JACOBIAN = MatrixCase("mat_jacobian_output", sp.ImmutableMatrix([x0 * x1, x1 + x2**2]),
                      {x0: 1.0, x1: 2.0, x2: 3.0}, None)
# Every case with a golden program (the coverage test in tests/sides/test_lowering.py reads this list).
ALL_MATRIX_CASES = [*MATRIX_CASES, JACOBIAN]
