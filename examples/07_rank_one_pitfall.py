"""The rank-1 pitfall: a weight vector without its column axis.

The quadratic loss of example 06 declares w as a (2, 1) column. In PyTorch it is easy to make
w a rank-1 tensor of shape (2,) instead: then X @ w has shape (2,), and subtracting the (2, 1)
column y broadcasts the residual to a (2, 2) matrix. Every entry of that matrix is a number, the
sum of squares is a number, backward() runs, and the loss is a different function, with a
different gradient. Nothing raises.

symgrad refuses the rank-1 value with a ShapeError that says why. Below the error, the same
mistake in plain torch: the (2, 2) residual, the wrong loss and gradient next to the right ones.

Run: python examples/07_rank_one_pitfall.py
"""

import sympy as sp
import torch

import symgrad as sg

X = sp.MatrixSymbol("X", 2, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 2, 1)
loss = sp.Rational(1, 2) * ((X * w - y).T * (X * w - y))

X_t = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
y_t = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
w_rank1 = torch.tensor([1.0, -1.0], dtype=torch.float64)

print("symgrad, given w as a rank-1 tensor of shape", tuple(w_rank1.shape))
try:
    sg.compare(loss, at={X: X_t, w: w_rank1, y: y_t})
except sg.ShapeError as error:
    print(f"{type(error).__name__}: {error}")
print()

print("What torch computes with it (D2L's loss, 0.5 * torch.sum((X @ w - y) ** 2)):")
for name, w_value in [("rank-1 w, shape (2,)", w_rank1), ("column w, shape (2, 1)", w_rank1.reshape(-1, 1))]:
    w_t = w_value.clone().requires_grad_(True)
    residual = X_t @ w_t - y_t
    loss_t = 0.5 * torch.sum(residual**2)
    loss_t.backward()
    print(f"  {name}:")
    print(f"    residual X @ w - y has shape {tuple(residual.shape)}: {residual.tolist()}")
    print(f"    loss {loss_t.item()}, gradient {w_t.grad.tolist()}")
print()

print("The fix symgrad suggests, w.reshape(-1, 1), and its three sides agree on the right gradient:")
comparison = sg.compare(loss, at={X: X_t, w: w_rank1.reshape(-1, 1), y: y_t}, wrt=[w])
for entry in comparison.entries:
    print(f"  d loss / d {entry.wrt}: symbolic {entry.grad_symbolic}, executed {entry.grad_executed}, "
          f"autograd {entry.grad_autograd} ({entry.cause.id})")
