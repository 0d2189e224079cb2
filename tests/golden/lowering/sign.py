# symgrad: lowered from  sign(x)   (x real; float64; branches="if")
import math
import torch


def f(x):
    # sign(x)
    out = torch.sign(x)  # gradient 0 everywhere
    return out
