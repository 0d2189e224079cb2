# symgrad: lowered from  exp(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # exp(x)
    out = torch.exp(x)
    return out
