# symgrad: lowered from  expm1(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # expm1(x)
    out = torch.expm1(x)
    return out
