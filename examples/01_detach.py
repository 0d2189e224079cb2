"""Detaching computation: D2L's `u = y.detach()` as a symgrad program.

    y = x * x
    u = y.detach()
    z = u * x

The mathematics is z = x**3, so dz/dx = 3*x**2 = 12 at x = 2. The program treats u as a constant
(4 at x = 2), so what runs has derivative u = 4, and that is what autograd reports.

Run: python examples/01_detach.py
"""

import sympy as sp
from sympy.codegen.ast import Assignment, CodeBlock

import symgrad as sg

x, y, u, z = sp.symbols("x y u z")

program = sg.Program(
    inputs=[x],
    body=CodeBlock(
        Assignment(y, x * x),
        Assignment(u, sg.detach(y)),
        Assignment(z, u * x),
    ),
    output=z,
)

comparison = sg.compare(program, at={x: 2.0})
print(comparison)

entry = comparison.entries[0]
print()
print(f"mathematics: {entry.grad_symbolic}, the program that ran: {entry.grad_executed}, "
      f"autograd: {entry.grad_autograd}")
