# symgrad: lowered from  cdist(0, 1, 1, 2, 1, x, y, z)   (x, y, z real; float64; branches="if")
import math
import torch


def f(x, y, z):
    # cdist(0, 1, 1, 2, 1, x, y, z)
    out = torch.cdist(torch.stack([x]).reshape(1, 1), torch.stack([y, z]).reshape(2, 1))[0, 1]
    return out
