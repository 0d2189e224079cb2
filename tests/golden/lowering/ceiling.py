# symgrad: lowered from  ceiling(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # ceiling(x)
    out = torch.ceil(x)  # gradient 0 everywhere
    return out
