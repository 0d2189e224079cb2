# symgrad: lowered from  sin(x)**2 + sin(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sin(x)
    sin_x = torch.sin(x)
    # sin(x)**2
    sin_x_pow_2 = sin_x ** 2
    # sin(x)**2 + sin(x)
    out = sin_x_pow_2 + sin_x
    return out
