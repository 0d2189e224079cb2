# symgrad: lowered from  Abs(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # Abs(x)
    out = torch.abs(x)  # torch: abs'(0) = 0
    return out
