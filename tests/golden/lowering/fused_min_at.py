# symgrad: lowered from  min_at(x, y)   (x, y real; float64; branches="if")
import math
import torch


def f(x, y):
    # min_at(x, y)
    out = torch.min(torch.stack([x, y]), 0).values
    return out
