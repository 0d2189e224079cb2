# symgrad: lowered from  3*to_float32(x**2)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # x**2
    x_pow_2 = x ** 2
    # to_float32(x**2)
    x_pow_2_float32 = x_pow_2.to(torch.float32)
    # 3*to_float32(x**2)
    out = 3 * x_pow_2_float32
    return out
