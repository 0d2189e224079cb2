# symgrad: lowered from  x - 2*y + 3   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # 2*y
    two_y = 2 * y
    # x - 2*y + 3
    out = x - two_y + 3
    return out
