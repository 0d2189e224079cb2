# symgrad: lowered from  acos(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # acos(x)
    out = torch.acos(x)
    return out
