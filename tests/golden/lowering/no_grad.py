# symgrad: lowered from  x + no_grad(x**2)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # no_grad(x**2): computed without recording the autograd graph
    with torch.no_grad():
        # x**2
        x_pow_2 = x ** 2
    # x + no_grad(x**2)
    out = x + x_pow_2
    return out
