# symgrad: lowered from  (1 - cos(x))/x**2   (x real; float64; branches="if")
import math
import torch


def f(x):
    # cos(x)
    cos_x = torch.cos(x)
    # 1 - cos(x)
    one_minus_cos_x = 1 - cos_x
    # x**2
    x_pow_2 = x ** 2
    # (1 - cos(x))/x**2
    out = one_minus_cos_x / x_pow_2
    return out
