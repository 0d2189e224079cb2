# symgrad: lowered from  sqrt(x**2)   (x real; float64; branches="if")
# SymPy rewrote it for real symbols as  Abs(x)
import math
import torch


def f(x):
    # Abs(x)
    out = torch.abs(x)  # torch: abs'(0) = 0
    return out
