"""ReLU three ways: one function, three gradients at 0.

All three expressions are max(x, 0), whose slope is 0 just left of 0 and 1 just right of it, so
the mathematics has no derivative at 0. Each torch spelling picks its own value there:

- `Max(x, 0)` lowers to `torch.relu`, whose convention is 0;
- `Piecewise((x, x >= 0), (0, True))` with `branches="where"` takes the `x` branch at 0: 1;
- `(x + Abs(x))/2` uses `abs'(0) = 0`, so it gets (1 + 0)/2 = 1/2.

Run: python examples/04_relu_three_ways.py
"""

import sympy as sp

import symgrad as sg

x = sp.Symbol("x")

ways = [
    ("torch.relu", sp.Max(x, 0), "if"),
    ("torch.where", sp.Piecewise((x, x >= 0), (0, True)), "where"),
    ("through abs", (x + sp.Abs(x)) / 2, "if"),
]

comparisons = [(name, sg.compare(expr, at={x: 0.0}, branches=branches)) for name, expr, branches in ways]

print(f"{'way':<12} {'expression':<36} {'one-sided':<10} {'executed':<9} {'autograd':<9} cause")
for name, comparison in comparisons:
    e = comparison.entries[0]
    left, right = e.one_sided
    print(f"{name:<12} {comparison.source:<36} {f'({left}, {right})':<10} {str(e.grad_executed):<9} "
          f"{e.grad_autograd!r:<9} {e.cause.id}")

for name, comparison in comparisons:
    print()
    print(f"--- {name}")
    print(comparison)
