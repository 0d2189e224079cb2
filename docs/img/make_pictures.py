"""Make the pictures the README shows: `python docs/img/make_pictures.py` (needs matplotlib)."""

from pathlib import Path

import sympy as sp

import symgrad as sg

HERE = Path(__file__).parent
x, y = sp.symbols("x y")

# 1-D: a NaN trap left of 0 and a kink at 0 (f, the three derivatives, bands by cause).
sg.sweep(sp.Piecewise((sp.sqrt(x), x > 0), (0, True)), over={x: (-2, 2)}, n=201,
         branches="where").plot(str(HERE / "sweep-1d.png"))
# 2-D: the cause map of Max(x, y) (a kink on the diagonal) beside autograd's error.
sg.sweep(sp.Max(x, y), over={x: (-1, 1), y: (-1, 1)}, n=41).plot(str(HERE / "sweep-2d.png"))
