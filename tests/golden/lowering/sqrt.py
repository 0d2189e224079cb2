# symgrad: lowered from  sqrt(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sqrt(x)
    out = torch.sqrt(x)
    return out
