"""The chapter's worked example 1 as a derivation: the backward pass of the quadratic loss.

    L(w) = (1/2) * ||X*w - y||**2,   X = [[1, 2], [3, 4]],  y = [[0], [1]],  w = [[1], [-1]]

On paper, with the residual r = X*w - y and L = (1/2)*r.T*r, the chain rule run backward gives

    dL/dr = r = [[-1], [-2]]          dL/dw = X.T*(dL/dr) = X.T*r = [[-7], [-10]]

symgrad writes out the backward pass of the torch program that actually ran: one line per step,
each adjoint in matrix notation, its exact value, and torch's own adjoint of the same tensor
beside it (captured with a hook on that tensor during a real `backward()`). SymPy writes the
transposed residual as w.T*X.T - y.T, so the program computes r twice, once as a row: each copy
receives half of dL/dr = r, and the halves meet again at w, X.T*(r/2) + X.T*(r/2) = X.T*r.

Run: python examples/12_quadratic_loss_derivation.py
"""

import sympy as sp

import symgrad as sg

X = sp.MatrixSymbol("X", 2, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 2, 1)

loss = sp.Rational(1, 2) * ((X * w - y).T * (X * w - y))
at = {X: [[1.0, 2.0], [3.0, 4.0]], w: [[1.0], [-1.0]], y: [[0.0], [1.0]]}

comparison = sg.compare(loss, at=at, wrt=[w])
print(comparison.derivation())

steps = {record.node: record for record in comparison.backward}
residual = steps["X*w - y"]  # r, computed as a column
row = steps["w.T*X.T - y.T"]  # r.T, computed a second time as a row
gradient = steps["w"]

print("the chapter's numbers, read from the records:")
print("  r = X*w - y =", residual.value.tolist())
# dL/dr collects both copies of r: the column's adjoint and the row's, transposed back
dL_dr = residual.adjoint_exact + row.adjoint_exact.T
print("  dL/dr = r =", dL_dr.tolist(), "(the column's half", residual.adjoint_exact.tolist(),
      "plus the row's half, transposed)")
print("  dL/dw = X.T*r =", gradient.adjoint_exact.tolist())
X_value = comparison.point[X]
assert dL_dr == residual.value
assert gradient.adjoint_exact == X_value.T * residual.value == sp.Matrix([[-7], [-10]])
print()
print("each step checked against torch's own adjoint of the same tensor:")
for record in comparison.backward:
    if record.on_graph:
        agree = "agrees" if not record.parts else "PARTS"
        print(f"  {record.name}: exact {record.adjoint_exact.tolist() if hasattr(record.adjoint_exact, 'tolist') else record.adjoint_exact}, "
              f"torch {record.adjoint_autograd.tolist() if hasattr(record.adjoint_autograd, 'tolist') else record.adjoint_autograd}: {agree}")
print("first line where torch's backward pass parts from the exact one:", comparison.parting)
