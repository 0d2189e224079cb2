# symgrad: lowered from  Matrix([ [     x0*x1], [x1 + x2**2]])   (x0, x1, x2 real; float64; branches="if")
import math
import torch


def f(x0, x1, x2):
    # x0*x1
    x0_x1 = x0 * x1
    # x2**2
    x2_pow_2 = x2 ** 2
    # x1 + x2**2
    x1_plus_x2_pow_2 = x1 + x2_pow_2
    # Matrix([ [ x0*x1], [x1 + x2**2]])
    out = torch.stack([x0_x1, x1_plus_x2_pow_2]).reshape(2, 1)
    return out
