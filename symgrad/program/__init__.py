"""Layer 2, program: what a function is, and exact numbers.

Holds `Program` and the normal form every input is brought to (`program`), symgrad's own SymPy
functions such as `detach` (`primitives`), THE rule table that says how each SymPy node lowers and
what is known about it (`rules`), the torch primitives it lowers to with their exact values and
torch's backward formulas (`ops`), the exact engine on python-flint (`exact`), and walks of deep
inputs that never recurse (`deep`). May import `symgrad.base` only.
"""
