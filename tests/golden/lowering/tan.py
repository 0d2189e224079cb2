# symgrad: lowered from  tan(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # tan(x)
    out = torch.tan(x)
    return out
