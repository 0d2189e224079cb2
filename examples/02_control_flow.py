"""Gradients through Python control flow: D2L's while/if function.

    b = 2 * a
    while abs(b) < 1000:
        b = 2 * b
    c = b if b > 0 else 100 * b

For a fixed a the program is linear in a, c = k * a, so autograd's gradient is k. At an ordinary
point all three derivatives agree. At a = 0.48828125 = 125/256, b reaches exactly 1000 and the
loop stops on its threshold: just below that point the loop doubles once more, so the function
jumps from 2000 to 1000 and has no derivative there, while autograd still reports 2048.

Run: python examples/02_control_flow.py
"""

import sympy as sp
from sympy.codegen.ast import Assignment, CodeBlock, While

import symgrad as sg

a, b, c = sp.symbols("a b c")

f = sg.Program(
    inputs=[a],
    body=CodeBlock(
        Assignment(b, 2 * a),
        While(sp.Abs(b) < 1000, CodeBlock(Assignment(b, 2 * b))),
        Assignment(c, sp.Piecewise((b, b > 0), (100 * b, True))),
    ),
    output=c,
)

print("An ordinary point (the one D2L's random draw gave):")
print(sg.compare(f, at={a: 1.5409961082440433}))
print()
print("The loop's threshold:")
print(sg.compare(f, at={a: 0.48828125}))
