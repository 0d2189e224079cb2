# symgrad: lowered from  cos(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # cos(x)
    out = torch.cos(x)
    return out
