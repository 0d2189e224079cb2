# symgrad: lowered from  asin(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # asin(x)
    out = torch.asin(x)
    return out
