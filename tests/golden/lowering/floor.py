# symgrad: lowered from  floor(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # floor(x)
    out = torch.floor(x)  # gradient 0 everywhere
    return out
