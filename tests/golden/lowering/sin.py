# symgrad: lowered from  sin(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sin(x)
    out = torch.sin(x)
    return out
