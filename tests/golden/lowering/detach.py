# symgrad: lowered from  x*detach(x**2)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**2
    x_pow_2 = x ** 2
    # detach(x**2): a constant from here on; the derivative does not flow through
    x_pow_2_detached = x_pow_2.detach()
    # x*detach(x**2)
    out = x * x_pow_2_detached
    return out
