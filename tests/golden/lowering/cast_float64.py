# symgrad: lowered from  3*to_float64(x**2)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**2
    x_pow_2 = x ** 2
    # to_float64(x**2)
    x_pow_2_float64 = x_pow_2.to(torch.float64)
    # 3*to_float64(x**2)
    out = 3 * x_pow_2_float64
    return out
