# symgrad: lowered from  max_at(x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # max_at(x, y, z)
    out = torch.max(torch.stack([x, y, z]), 0).values
    return out
