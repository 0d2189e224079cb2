# symgrad: lowered from  1/sqrt(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sqrt(x)
    sqrt_x = torch.sqrt(x)
    # 1/sqrt(x)
    out = 1 / sqrt_x
    return out
