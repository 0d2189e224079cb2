"""The quadratic loss of linear regression, written with matrices: its gradient three ways.

D2L's worked example: the loss (1/2)*||X*w - y||**2, written as the 1x1 matrix

    (1/2) * (X*w - y).T * (X*w - y)

with X = [[1, 2], [3, 4]], y = [[0], [1]] and w = [[1], [-1]]. The matrix-calculus result is
grad_w = X.T*(X*w - y); here the residual X*w - y is [[-1], [-2]], so the gradient is
[[-7], [-10]]. symgrad checks it element by element: SymPy's exact derivative, the exact
derivative of the generated torch program, and autograd. The 1x1 matrix is used as a scalar,
which is what `[0, 0]` on the last line of the generated program does.

Run: python examples/06_quadratic_loss.py
"""

import sympy as sp

import symgrad as sg

X = sp.MatrixSymbol("X", 2, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 2, 1)

loss = sp.Rational(1, 2) * ((X * w - y).T * (X * w - y))
at = {X: [[1.0, 2.0], [3.0, 4.0]], w: [[1.0], [-1.0]], y: [[0.0], [1.0]]}

comparison = sg.compare(loss, at=at, wrt=[w])
print(comparison)

derivative = comparison.entries[0].derivative
print("SymPy's matrix-calculus form of the gradient:", derivative)
# comparison.point holds the exact values the tensors held, as SymPy matrices
print("evaluated exactly at the point:", derivative.subs(comparison.point).doit().tolist())
print()
print("element by element (symbolic, executed, autograd):")
for entry in comparison.entries:
    print(f"  d loss / d {entry.wrt}: {entry.grad_symbolic}, {entry.grad_executed}, {entry.grad_autograd}")
