# symgrad: lowered from  var(1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # var(1, x, y, z)
    out = torch.var(torch.stack([x, y, z]), correction=1)
    return out
