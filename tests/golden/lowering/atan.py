# symgrad: lowered from  atan(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # atan(x)
    out = torch.atan(x)
    return out
