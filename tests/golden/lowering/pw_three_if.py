# symgrad: lowered from  Piecewise((x**2, x < -1), (sin(x), x < 1), (2*x, True))   (x real; float64; branches="if")
import math
import torch


def f(x):
    # Piecewise((x**2, x < -1), (sin(x), x < 1), (2*x, True))
    if x < -1:
        # x**2
        out = x ** 2
    elif x < 1:
        # sin(x)
        out = torch.sin(x)
    else:
        # 2*x
        out = 2 * x
    return out
