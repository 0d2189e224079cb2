# symgrad: lowered from  erf(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # erf(x)
    out = torch.erf(x)
    return out
