"""An autograd graph break: a value that went through `.item()`.

`x * item(x)` is x**2 for the mathematics (derivative 6 at x = 3). In the program, `x.item()`
turns the tensor into a Python number and `torch.tensor(...)` makes a new leaf from it, with no
history: autograd sees x times a constant 3 and reports 3.

Run: python examples/03_graph_break.py
"""

import sympy as sp

import symgrad as sg

x = sp.Symbol("x")

print(sg.compare(x * sg.item(x), at={x: 3.0}))
print()
print("The fix: keep the value a tensor (call .item() only after backward()).")
print(sg.compare(x * x, at={x: 3.0}))
