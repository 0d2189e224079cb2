# symgrad: lowered from  softmax(1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # softmax(1, x, y, z)
    out = torch.softmax(torch.stack([x, y, z]), 0)[1]
    return out
