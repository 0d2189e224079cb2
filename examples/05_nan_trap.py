"""The NaN trap of `torch.where`, and the double-where fix.

`torch.where(x > 0, torch.sqrt(x), 0)` computes sqrt(x) for every input, also where the other
branch is kept. At x = -1 the forward value is fine (0), but the backward pass multiplies sqrt's
gradient there (nan) by 0, and 0 * nan is nan.

The fix keeps the unused branch's input inside sqrt's domain:

    safe = torch.where(x > 0, x, 1)
    y = torch.where(x > 0, torch.sqrt(safe), 0)

Written as one SymPy expression, SymPy would simplify the inner Piecewise away (it has the same
condition as the outer one), so the fix is a program with two statements.

Run: python examples/05_nan_trap.py
"""

import sympy as sp
from sympy.codegen.ast import Assignment, CodeBlock

import symgrad as sg

x, safe, y = sp.symbols("x safe y")

trap = sp.Piecewise((sp.sqrt(x), x > 0), (0, True))
print("The trap:")
print(sg.compare(trap, at={x: -1.0}, branches="where"))

fixed = sg.Program(
    inputs=[x],
    body=CodeBlock(
        Assignment(safe, sp.Piecewise((x, x > 0), (1, True))),
        Assignment(y, sp.Piecewise((sp.sqrt(safe), x > 0), (0, True))),
    ),
    output=y,
)
print()
print("The double-where fix:")
print(sg.compare(fixed, at={x: -1.0}, branches="where"))
print()
print("and inside the domain it still has sqrt's slope:")
print(sg.compare(fixed, at={x: 4.0}, branches="where").entries[0].grad_autograd)
