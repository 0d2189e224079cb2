"""One step of gradient descent on the quadratic loss, computed exactly.

Near w, a loss is approximately linear: L(w + d) ~ L(w) + grad . d. Gradient descent takes
d = -eta*grad, so the first-order prediction of the decrease is eta*||grad||**2, which is
positive: a small enough step downhill lowers the loss. Here the loss of example 06 is checked
exactly: symgrad gives the gradient [[-7], [-10]] at w = [[1], [-1]] (so the step increases both
components of w), SymPy computes the loss before and after the step with rationals, and the
actual decrease is compared with the prediction.

The loss is quadratic, so the prediction misses by exactly the second-order term
eta**2/2 * ||X*grad||**2: for a small eta the ratio is close to 1, and for a large one the
"step downhill" goes up.

Run: python examples/10_gradient_descent_step.py
"""

import sympy as sp

import symgrad as sg

X = sp.MatrixSymbol("X", 2, 2)
w = sp.MatrixSymbol("w", 2, 1)
y = sp.MatrixSymbol("y", 2, 1)
loss = sp.Rational(1, 2) * ((X * w - y).T * (X * w - y))

comparison = sg.compare(loss, at={X: [[1.0, 2.0], [3.0, 4.0]], w: [[1.0], [-1.0]], y: [[0.0], [1.0]]}, wrt=[w])
print(comparison)

point = comparison.point  # the exact values, as SymPy matrices
grad = sp.Matrix([e.grad_symbolic for e in comparison.entries])


def loss_at(w_value: sp.Matrix) -> sp.Rational:
    """The loss at w_value, exactly (a 1x1 matrix, taken as its one entry)."""
    return loss.subs({X: point[X], y: point[y], w: w_value}).doit()[0, 0]


eta = sp.Rational(1, 100)
w_new = point[w] - eta * grad
before, after = loss_at(point[w]), loss_at(w_new)
decrease = before - after
predicted = eta * (grad.T * grad)[0, 0]

print(f"gradient: {grad.tolist()}")
print(f"step with eta = {eta}: w = {point[w].tolist()} -> {w_new.tolist()}")
rows = [
    ("loss before", before),
    ("loss after", after),
    ("actual decrease", decrease),
    ("predicted, eta*||grad||**2", predicted),
    ("ratio actual / predicted", decrease / predicted),
]
for label, value in rows:
    print(f"  {label:<27} {value!s:<8} = {float(value):.6g}")
second_order = eta**2 / 2 * ((point[X] * grad).T * (point[X] * grad))[0, 0]
assert predicted - decrease == second_order
print(f"predicted - actual is exactly eta**2/2 * ||X*grad||**2 = {second_order}")
print()
print("other step sizes:")
print(f"  {'eta':<6} {'actual decrease':<16} {'predicted':<10} ratio")
for eta in [sp.Rational(1, 10), sp.Rational(1, 100), sp.Rational(1, 1000)]:
    decrease = loss_at(point[w]) - loss_at(point[w] - eta * grad)
    predicted = eta * (grad.T * grad)[0, 0]
    print(f"  {eta!s:<6} {decrease!s:<16} {predicted!s:<10} {float(decrease / predicted):.6f}")
print("eta = 1/10 overshoots: the loss goes up. The first-order prediction only holds for small steps.")
