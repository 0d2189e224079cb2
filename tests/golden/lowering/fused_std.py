# symgrad: lowered from  std(1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # std(1, x, y, z)
    out = torch.std(torch.stack([x, y, z]), correction=1)
    return out
